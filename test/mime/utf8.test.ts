import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { codePointOctets, decodeCharset, isAscii } from "../../src/mime/utf8.ts";

describe("codePointOctets", () => {
  test("property: the same octets as TextEncoder for every code point", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x10ffff }), (cp) => {
        expect(codePointOctets(cp)).toEqual([...new TextEncoder().encode(String.fromCodePoint(cp))]);
      }),
      { numRuns: 500 },
    );
  });
});

describe("decodeCharset", () => {
  test("known charsets decode; unknown ones give undefined", () => {
    expect(decodeCharset("iso-8859-1", new Uint8Array([0x63, 0xe9]))).toBe("cé");
    expect(decodeCharset("UTF-8", new Uint8Array([0xc3, 0xa9]))).toBe("é");
    expect(decodeCharset("x-no-such-charset", new Uint8Array([0x41]))).toBeUndefined();
  });
});

describe("isAscii", () => {
  test("controls are ASCII, anything above 0x7f is not", () => {
    expect(isAscii("\x00\x7f abc")).toBe(true);
    expect(isAscii("\x80")).toBe(false);
    expect(isAscii("é")).toBe(false);
  });
});
