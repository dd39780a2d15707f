import { expect, test } from "bun:test";
import { isServerSaslMechanism, SERVER_SASL_MECHANISMS } from "../../src/core/auth-server.ts";
import { isSaslMechanism } from "../../src/core/sasl-mechanisms.ts";

test("the server speaks the same list less XOAUTH2", () => {
  expect([...SERVER_SASL_MECHANISMS]).toEqual(["PLAIN", "LOGIN", "CRAM-MD5"]);
  expect(SERVER_SASL_MECHANISMS.every((m) => isSaslMechanism(m))).toBe(true);
  expect(isServerSaslMechanism("CRAM-MD5")).toBe(true);
  expect(isServerSaslMechanism("XOAUTH2")).toBe(false);
  expect(isServerSaslMechanism("cram-md5")).toBe(false);
});
