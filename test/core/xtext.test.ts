import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeXtext, encodeXtext, isXtext } from "../../src/core/xtext.ts";

describe("xtext (RFC 3461 §4)", () => {
  test("xchars stand for themselves; +, =, space and controls are hex-escaped", () => {
    expect(encodeXtext("user@example.com")).toBe("user@example.com");
    expect(encodeXtext("a+b=c d")).toBe("a+2Bb+3Dc+20d");
    expect(encodeXtext("\r\n\0")).toBe("+0D+0A+00");
    expect(encodeXtext("~!")).toBe("~!");
  });

  test("non-ASCII is escaped octet by octet as UTF-8", () => {
    expect(encodeXtext("é")).toBe("+C3+A9");
    expect(decodeXtext("+C3+A9")).toBe("é");
  });

  test("decoding", () => {
    expect(decodeXtext("a+2Bb+3Dc+20d")).toBe("a+b=c d");
    expect(decodeXtext("")).toBe("");
    expect(decodeXtext("+2b")).toBe("+"); // lower-case hex tolerated
  });

  test("malformed xtext throws", () => {
    expect(() => decodeXtext("a+")).toThrow(/not followed by two hex digits/);
    expect(() => decodeXtext("a+2")).toThrow(/two hex digits/);
    expect(() => decodeXtext("a+GG")).toThrow(/two hex digits/);
    expect(() => decodeXtext("a=b")).toThrow(/must be written as \+XX/);
    expect(() => decodeXtext("a b")).toThrow(/must be written as \+XX/);
    expect(() => decodeXtext("a\0")).toThrow(/must be written as \+XX/);
    expect(() => decodeXtext("é")).toThrow(/must be written as \+XX/);
    expect(() => decodeXtext("+FF")).toThrow(/not UTF-8/);
  });

  test("isXtext", () => {
    expect(isXtext("a+2Bb")).toBe(true);
    expect(isXtext("a+2b")).toBe(false);
    expect(isXtext("a=b")).toBe(false);
  });

  test("property: decode(encode(s)) = s, and the encoding is well-formed xtext", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 100 }), (s) => {
        fc.pre(s.isWellFormed());
        const encoded = encodeXtext(s);
        expect(isXtext(encoded)).toBe(true);
        expect(decodeXtext(encoded)).toBe(s);
      }),
      { numRuns: 1000 },
    );
  });
});
