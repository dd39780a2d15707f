import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { BASE64_LINE_LENGTH, Base64Error, decodeBase64, encodeBase64 } from "../../src/mime/base64.ts";

const RUNS = { numRuns: 200 };
const bytes = fc.uint8Array({ maxLength: 1500 });

describe("encodeBase64", () => {
  test("RFC 4648 §10 test vectors", () => {
    const vectors: [string, string][] = [
      ["", ""],
      ["f", "Zg=="],
      ["fo", "Zm8="],
      ["foo", "Zm9v"],
      ["foob", "Zm9vYg=="],
      ["fooba", "Zm9vYmE="],
      ["foobar", "Zm9vYmFy"],
    ];
    for (const [plain, encoded] of vectors) {
      expect(encodeBase64(new TextEncoder().encode(plain))).toBe(encoded);
      expect(new TextDecoder().decode(decodeBase64(encoded))).toBe(plain);
    }
  });

  test("breaks after 76 characters with CRLF and nothing after the last line", () => {
    const encoded = encodeBase64(new Uint8Array(120).fill(0xff));
    const lines = encoded.split("\r\n");
    expect(lines.map((l) => l.length)).toEqual([76, 76, 8]);
    expect(encoded.endsWith("\r\n")).toBe(false);
  });

  test("line length 0 gives one unbroken line", () => {
    expect(encodeBase64(new Uint8Array(300), 0)).not.toContain("\r\n");
  });

  test("encodes a view at its own offset, not the whole underlying buffer", () => {
    const view = new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4);
    expect(encodeBase64(view)).toBe("AQID");
  });

  test("property: decode(encode(x)) = x, lines ≤ 76, only base64 characters and CRLF", () => {
    fc.assert(
      fc.property(bytes, (input) => {
        const encoded = encodeBase64(input);
        expect(decodeBase64(encoded)).toEqual(input);
        for (const line of encoded.split("\r\n")) {
          expect(line.length).toBeLessThanOrEqual(BASE64_LINE_LENGTH);
          expect(line).toMatch(/^[A-Za-z0-9+/=]*$/);
        }
      }),
      RUNS,
    );
  });

  test("property: Buffer decodes our output to the same bytes", () => {
    fc.assert(
      fc.property(bytes, (input) => {
        expect(new Uint8Array(Buffer.from(encodeBase64(input), "base64"))).toEqual(input);
      }),
      RUNS,
    );
  });
});

describe("decodeBase64", () => {
  test("ignores CRLF, LF, spaces and tabs between characters", () => {
    expect(new TextDecoder().decode(decodeBase64("Zm9v\r\nYmFy\n Zm9v\tYg==\r\n"))).toBe("foobarfoob");
  });

  test("accepts missing padding", () => {
    expect(new TextDecoder().decode(decodeBase64("Zm9vYg"))).toBe("foob");
  });

  test("rejects characters outside the alphabet, a partial byte, and stray padding", () => {
    for (const bad of ["Zm9v!", "Zm9vY", "Zm=9v", "Zm9vYg=", "Z===", "Zm9v_-"]) {
      expect(() => decodeBase64(bad)).toThrow(Base64Error);
    }
  });
});
