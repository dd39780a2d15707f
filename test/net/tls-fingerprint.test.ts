import { expect, test } from "bun:test";
import { normalizeFingerprint } from "../../src/net/tls-fingerprint.ts";

const HEX = "0123456789abcdef".repeat(4);
const COLONS =
  "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF";

test("64 hex digits, with or without colons, in any case, become openssl's AA:BB:... form", () => {
  expect(normalizeFingerprint(HEX)).toBe(COLONS);
  expect(normalizeFingerprint(COLONS.toLowerCase())).toBe(COLONS);
  expect(normalizeFingerprint(`  ${COLONS}  `)).toBe(COLONS);
});

test("anything else is not a SHA-256 fingerprint", () => {
  for (const text of ["", HEX.slice(2), `${HEX}00`, `${HEX.slice(1)}g`, "SHA256:abc", "AA:BB"]) {
    expect(normalizeFingerprint(text)).toBeUndefined();
  }
});
