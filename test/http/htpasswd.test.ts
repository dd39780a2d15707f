import { describe, expect, test } from "bun:test";
import { apr1 } from "../../src/http/apr1-md5.ts";
import { basicAuthorized, HtpasswdError, parseHtpasswd } from "../../src/http/htpasswd.ts";

// Lines made by Apache's htpasswd (apache2-utils): -B -C 5, -m and -s.
const FILE = [
  "# API users",
  "ann:$2y$05$kZcbjZ.fU76Iwrt.rFJAreK3RqiuNeZ3wXX5x9ztgrN/t4brD8yd.",
  "bob:$apr1$vOxRnAfX$zOOTszflLtFuwrnhuiSao1",
  "",
  "cid:{SHA}zS0S9kqB4FMhpTawEdnivgS+plA=",
].join("\n");

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

describe("htpasswd", () => {
  const users = parseHtpasswd(FILE, "users.htpasswd");

  test.each([
    ["bcrypt", "ann", "Ann pw ✓"],
    ["Apache MD5", "bob", "pässword"],
    ["SHA-1", "cid", "c1d"],
  ])(
    "%s: the right password lets in, a wrong one or another user's does not",
    async (_scheme, user, password) => {
      expect(await basicAuthorized(basic(user, password), users)).toBe(true);
      expect(await basicAuthorized(basic(user, `${password}x`), users)).toBe(false);
      expect(await basicAuthorized(basic("dan", password), users)).toBe(false);
    },
  );

  test("headers that are not Basic credentials let nobody in", async () => {
    for (const header of [null, "", "Bearer abc", "Basic", "Basic !!!", `Basic ${btoa("no-colon")}`]) {
      expect(await basicAuthorized(header, users)).toBe(false);
    }
  });

  test("apr1 gives htpasswd -m's hash, empty and long passwords included", () => {
    expect(apr1("pässword", "$apr1$vOxRnAfX$")).toBe("$apr1$vOxRnAfX$zOOTszflLtFuwrnhuiSao1");
    expect(apr1("", "$apr1$XISY2xw4$")).toBe("$apr1$XISY2xw4$n7wO8/VAXU1HfsKJg1XLQ0");
    expect(apr1("x".repeat(40), "$apr1$WlEJdg74$")).toBe("$apr1$WlEJdg74$Mm1Jdr7Lhlz5A4Zczb876.");
  });

  test.each([
    ["a line without a colon", "ann", "users.htpasswd:1: expected user:hash"],
    [
      "a plain-text password",
      "ann:secret",
      "users.htpasswd:1: the password must be hashed with bcrypt ($2y$, htpasswd -B), $apr1$ (htpasswd -m) or {SHA} (htpasswd -s)",
    ],
    [
      "no users at all",
      "# nobody\n",
      "users.htpasswd: no users; add one with htpasswd -B users.htpasswd NAME",
    ],
  ])("%s is refused, naming the file and line", (_name, text, message) => {
    expect(() => parseHtpasswd(text, "users.htpasswd")).toThrow(new HtpasswdError(message));
  });
});
