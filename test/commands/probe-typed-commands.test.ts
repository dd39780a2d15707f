import { describe, expect, test } from "bun:test";
import {
  completeVerb,
  parseTypedAuth,
  unadvertisedUse,
  verbOf,
} from "../../src/commands/probe-typed-commands.ts";
import { type Capabilities, emptyCapabilities } from "../../src/core/capabilities.ts";

function caps(fields: Partial<Capabilities>): Capabilities {
  return { ...emptyCapabilities(), ...fields };
}

describe("completeVerb", () => {
  test("completes case-insensitively from the start of the line", () => {
    expect(completeVerb("star")).toEqual([["STARTTLS"], "star"]);
    expect(completeVerb("AUTH ")[0]).toEqual(["AUTH PLAIN", "AUTH LOGIN", "AUTH CRAM-MD5", "AUTH XOAUTH2"]);
    expect(completeVerb("r")[0]).toEqual(["RCPT TO:<", "RSET"]);
    expect(completeVerb("xyz")[0]).toEqual([]);
  });
});

describe("verbOf and parseTypedAuth", () => {
  test("the verb upper-cased, whatever the spacing", () => {
    expect(verbOf("  mail from:<a@b>")).toBe("MAIL");
  });

  test("AUTH with and without an initial response", () => {
    expect(parseTypedAuth("auth plain")).toEqual({ mechanism: "PLAIN" });
    expect(parseTypedAuth("AUTH PLAIN AGFsaWNlAHB3")).toEqual({
      mechanism: "PLAIN",
      initialResponse: "AGFsaWNlAHB3",
    });
    expect(parseTypedAuth("AUTH")).toBeUndefined();
    expect(parseTypedAuth("MAIL FROM:<>")).toBeUndefined();
  });
});

describe("unadvertisedUse", () => {
  test("plain RFC 5321 commands never need an advertisement", () => {
    for (const line of [
      "EHLO a",
      "HELO a",
      "MAIL FROM:<a@b>",
      "RCPT TO:<a@b>",
      "DATA",
      "RSET",
      "NOOP",
      "QUIT",
      "VRFY x",
    ]) {
      expect(unadvertisedUse(line, emptyCapabilities(), true)).toBeUndefined();
    }
  });

  test("STARTTLS, AUTH and BDAT need their extensions", () => {
    expect(unadvertisedUse("STARTTLS", emptyCapabilities(), true)).toBe(
      "the server did not advertise STARTTLS (RFC 3207)",
    );
    expect(unadvertisedUse("starttls", caps({ startTls: true }), true)).toBeUndefined();
    expect(unadvertisedUse("AUTH PLAIN", emptyCapabilities(), true)).toContain("AUTH");
    expect(unadvertisedUse("BDAT 10 LAST", emptyCapabilities(), true)).toContain("CHUNKING");
    expect(unadvertisedUse("BDAT 10 LAST", caps({ chunking: true }), true)).toBeUndefined();
  });

  test("AUTH with a mechanism the server does not offer", () => {
    expect(unadvertisedUse("AUTH CRAM-MD5", caps({ auth: ["PLAIN", "LOGIN"] }), true)).toBe(
      "the server offers AUTH PLAIN LOGIN, not CRAM-MD5",
    );
    expect(unadvertisedUse("AUTH login", caps({ auth: ["PLAIN", "LOGIN"] }), true)).toBeUndefined();
  });

  test("MAIL and RCPT parameters need their extensions", () => {
    const none = emptyCapabilities();
    expect(unadvertisedUse("MAIL FROM:<a@b> SIZE=100", none, true)).toContain("SIZE");
    expect(unadvertisedUse("MAIL FROM:<a@b> SIZE=100", caps({ size: 0 }), true)).toBeUndefined();
    expect(unadvertisedUse("MAIL FROM:<a@b> BODY=8BITMIME", none, true)).toContain("8BITMIME");
    expect(
      unadvertisedUse("MAIL FROM:<a@b> body=8bitmime", caps({ eightBitMime: true }), true),
    ).toBeUndefined();
    expect(unadvertisedUse("MAIL FROM:<a@b> BODY=BINARYMIME", none, true)).toContain("BINARYMIME");
    expect(unadvertisedUse("MAIL FROM:<a@b> SMTPUTF8", none, true)).toContain("SMTPUTF8");
    expect(unadvertisedUse("MAIL FROM:<a@b> RET=HDRS", none, true)).toContain("DSN");
    expect(unadvertisedUse("MAIL FROM:<a@b> AUTH=<>", none, true)).toContain("AUTH");
    expect(unadvertisedUse("RCPT TO:<a@b> NOTIFY=NEVER", none, true)).toContain("DSN");
    expect(unadvertisedUse("RCPT TO:<a@b> NOTIFY=NEVER", caps({ dsn: true }), true)).toBeUndefined();
  });

  test("a '>' inside a quoted local part is not the end of the path", () => {
    expect(unadvertisedUse('MAIL FROM:<"x>SIZE=1"@b> SMTPUTF8', emptyCapabilities(), true)).toContain(
      "SMTPUTF8",
    );
    expect(unadvertisedUse('MAIL FROM:<"x>SIZE=1"@b>', emptyCapabilities(), true)).toBeUndefined();
    expect(unadvertisedUse('MAIL FROM:<"x\\"> SIZE=1"@b>', emptyCapabilities(), true)).toBeUndefined();
  });

  test("before EHLO nothing is advertised, and the warning says so", () => {
    expect(unadvertisedUse("STARTTLS", emptyCapabilities(), false)).toBe(
      "nothing is advertised before EHLO, so STARTTLS is not offered yet (RFC 3207)",
    );
  });
});
