import { describe, expect, test } from "bun:test";
import { connectionFlags } from "../../src/commands/connection-flags.ts";
import { UsageError } from "../../src/commands/exit-codes.ts";
import { queueRouteFromSend } from "../../src/commands/queue-send.ts";
import type { Account } from "../../src/config/accounts.ts";

const PIN = Array(32).fill("0F").join(":");

const account: Account = {
  name: "pinned",
  server: "mx.example.com",
  password: {},
  tlsFingerprint: PIN,
  isDefault: false,
};

describe("--tls-fingerprint", () => {
  test("taken in any case, with or without colons; the flag wins over the account", () => {
    expect(connectionFlags({ tlsFingerprint: "0f".repeat(32) }, undefined).fingerprint).toBe(PIN);
    expect(connectionFlags({}, account).fingerprint).toBe(PIN);
    const other = Array(32).fill("AA").join(":");
    expect(connectionFlags({ tlsFingerprint: other }, account).fingerprint).toBe(other);
  });

  test("kept in a queued route, so the worker pins the same certificate", () => {
    const route = queueRouteFromSend({ server: "mx.example.com", tlsFingerprint: PIN }, undefined);
    expect(route.tls?.fingerprint).toBe(PIN);
  });

  test("a value that is not a SHA-256 fingerprint, or one beside --insecure, is a usage error", () => {
    expect(() => connectionFlags({ tlsFingerprint: "abc" }, undefined)).toThrow(
      new UsageError(
        "--tls-fingerprint wants the certificate's SHA-256 fingerprint (64 hex digits, colons allowed), not 'abc'",
      ),
    );
    expect(() => connectionFlags({ tlsFingerprint: PIN, insecure: true }, undefined)).toThrow(
      new UsageError("give --tls-fingerprint or --insecure, not both"),
    );
  });
});
