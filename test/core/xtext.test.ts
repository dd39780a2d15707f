import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  decodeUtf8AddrXtext,
  decodeXtext,
  encodeUtf8AddrXtext,
  encodeXtext,
  isXtext,
} from "../../src/core/xtext.ts";

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

describe("utf-8-addr-xtext (RFC 6533 §3)", () => {
  test("encoding escapes non-QCHARs as \\x{HEX} code points", () => {
    expect(encodeUtf8AddrXtext("jörg@bücher.de")).toBe("j\\x{F6}rg@b\\x{FC}cher.de");
    expect(encodeUtf8AddrXtext("a+b=c\\d e")).toBe("a\\x{2B}b\\x{3D}c\\x{5C}d\\x{20}e");
    expect(encodeUtf8AddrXtext("😀")).toBe("\\x{1F600}");
  });

  test("decoding takes escapes and raw UTF-8 (unitext)", () => {
    expect(decodeUtf8AddrXtext("j\\x{f6}rg@x")).toBe("jörg@x");
    expect(decodeUtf8AddrXtext("jörg@x")).toBe("jörg@x");
  });

  test("malformed input throws", () => {
    expect(() => decodeUtf8AddrXtext("a\\x{}")).toThrow(/malformed escape/);
    expect(() => decodeUtf8AddrXtext("a\\x{D800}")).toThrow(/malformed escape/);
    expect(() => decodeUtf8AddrXtext("a\\x{110000}")).toThrow(/malformed escape/);
    expect(() => decodeUtf8AddrXtext("a\\b")).toThrow(/malformed escape/);
    expect(() => decodeUtf8AddrXtext("a+b")).toThrow(/must be written as/);
    expect(() => decodeUtf8AddrXtext("a b")).toThrow(/must be written as/);
  });

  test("property: decode(encode(s)) = s and the encoding is ASCII", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 40 }), (s) => {
        const encoded = encodeUtf8AddrXtext(s);
        expect(/^[\x21-\x7e]*$/.test(encoded)).toBe(true);
        expect(decodeUtf8AddrXtext(encoded)).toBe(s);
      }),
      { numRuns: 1000 },
    );
  });
});
