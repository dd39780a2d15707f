import { describe, expect, test } from "bun:test";
import { chooseSaslMechanism, createSaslClient, SaslError } from "../../src/core/auth-client.ts";

const tim = { username: "tim", password: "tanstaaftanstaaf" };
const fromBase64 = (s: string) => Buffer.from(s, "base64").toString("utf8");

describe("PLAIN", () => {
  test("initial response is authzid NUL user NUL password, masked", () => {
    const c = createSaslClient("plain", tim);
    expect(c.mechanism).toBe("PLAIN");
    expect(c.initialResponse).toEqual({ text: "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", secret: true });
  });
  test("carries an authorization identity and UTF-8", () => {
    const c = createSaslClient("PLAIN", { username: "ana", password: "mật khẩu", authzid: "boss" });
    expect(fromBase64(c.initialResponse?.text ?? "")).toBe("boss\0ana\0mật khẩu");
  });
  test("answers an empty challenge with the same response", () => {
    const c = createSaslClient("PLAIN", tim);
    expect(c.respond("")).toEqual(c.initialResponse as NonNullable<typeof c.initialResponse>);
  });
  test("refuses a NUL in the password", () => {
    expect(() => createSaslClient("PLAIN", { username: "a", password: "x\0y" })).toThrow(SaslError);
  });
});

describe("LOGIN", () => {
  test("user name then masked password, whatever the prompts", () => {
    const c = createSaslClient("LOGIN", tim);
    expect(c.initialResponse).toBeUndefined();
    expect(c.respond("VXNlcm5hbWU6")).toEqual({ text: "dGlt", secret: false });
    expect(c.respond("UGFzc3dvcmQ6")).toEqual({ text: "dGFuc3RhYWZ0YW5zdGFhZg==", secret: true });
    expect(() => c.respond("VXNlcm5hbWU6")).toThrow(SaslError);
  });
  test("a challenge that is not base64 is an error", () => {
    expect(() => createSaslClient("LOGIN", tim).respond("not base64!")).toThrow(SaslError);
  });
});

describe("CRAM-MD5", () => {
  test("RFC 2195 §2 example", () => {
    const c = createSaslClient("CRAM-MD5", tim);
    const r = c.respond("PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
    expect(r).toEqual({ text: "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw", secret: true });
    expect(fromBase64(r.text)).toBe("tim b913a602c7eda7a495b4e6e7334d3890");
  });
  test("a second challenge is an error", () => {
    const c = createSaslClient("CRAM-MD5", tim);
    c.respond("PDE+");
    expect(() => c.respond("PDE+")).toThrow(SaslError);
  });
});

describe("XOAUTH2", () => {
  test("bearer token in the initial response; empty answer to an error challenge", () => {
    const c = createSaslClient("XOAUTH2", {
      username: "someuser@example.com",
      password: "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg",
    });
    expect(fromBase64(c.initialResponse?.text ?? "")).toBe(
      "user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01",
    );
    expect(c.initialResponse?.secret).toBe(true);
    expect(c.respond("eyJzdGF0dXMiOiI0MDEifQ==")).toEqual({ text: "", secret: false });
  });
});

describe("mechanism choice", () => {
  test("unknown mechanisms are refused with the list we speak", () => {
    expect(() => createSaslClient("GSSAPI", tim)).toThrow(/PLAIN, LOGIN, CRAM-MD5, XOAUTH2/);
  });
  test("over TLS PLAIN first; in clear text CRAM-MD5 first; XOAUTH2 never by default", () => {
    expect(chooseSaslMechanism(["LOGIN", "CRAM-MD5", "PLAIN"], true)).toBe("PLAIN");
    expect(chooseSaslMechanism(["login", "cram-md5", "plain"], false)).toBe("CRAM-MD5");
    expect(chooseSaslMechanism(["LOGIN"], true)).toBe("LOGIN");
    expect(chooseSaslMechanism(["XOAUTH2", "GSSAPI"], true)).toBeUndefined();
  });
});
