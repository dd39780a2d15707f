import { expect, test } from "bun:test";
import { isSaslMechanism, SASL_MECHANISMS } from "../../src/core/sasl-mechanisms.ts";

test("the client speaks PLAIN, LOGIN, CRAM-MD5 and XOAUTH2, by their exact names", () => {
  expect([...SASL_MECHANISMS]).toEqual(["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"]);
  for (const name of SASL_MECHANISMS) expect(isSaslMechanism(name)).toBe(true);
  expect(isSaslMechanism("plain")).toBe(false);
  expect(isSaslMechanism("GSSAPI")).toBe(false);
  expect(isSaslMechanism("")).toBe(false);
});
