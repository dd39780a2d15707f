import { describe, expect, test } from "bun:test";
import { networkError, SmtpClientError } from "../../src/client/errors.ts";
import { ProtocolError } from "../../src/core/errors.ts";
import { NetError } from "../../src/net/net-error.ts";

describe("networkError", () => {
  test("a NetError keeps its kind and whether it is temporary", () => {
    const cause = new NetError("tls-verify", "certificate has expired", "CERT_HAS_EXPIRED");
    const error = networkError("tls", cause);
    expect(error).toMatchObject({ kind: "network", stage: "tls", netKind: "tls-verify", temporary: false });
    expect(error.message).toBe("certificate has expired");
    expect(error.cause).toBe(cause);
    expect(networkError("connect", new NetError("refused", "refused"))).toMatchObject({
      netKind: "refused",
      temporary: true,
    });
  });

  test("a ProtocolError is a temporary protocol error", () => {
    expect(networkError("tls", new ProtocolError("bad reply"))).toMatchObject({
      kind: "protocol",
      stage: "tls",
      temporary: true,
    });
  });

  test("an SmtpClientError passes through; anything else counts as a reset connection", () => {
    const given = new SmtpClientError("timeout", "tls", "slow");
    expect(networkError("connect", given)).toBe(given);
    expect(networkError("connect", new Error("odd"))).toMatchObject({
      kind: "network",
      stage: "connect",
      netKind: "reset",
      message: "odd",
      temporary: true,
    });
    expect(networkError("connect", "a string").message).toBe("a string");
  });
});
