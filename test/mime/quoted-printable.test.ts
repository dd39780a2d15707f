import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  decodeQuotedPrintable,
  encodeQuotedPrintable,
  QP_LINE_LENGTH,
} from "../../src/mime/quoted-printable.ts";

const RUNS = { numRuns: 200 };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const samples = [
  "Xin chào thế giới",
  "Nguyễn Thị",
  "😀🎉👩‍👩‍👧‍👦",
  "漢字かなカナ한국어",
  "=",
  " ",
  "\t",
  "\r\n",
  "\n",
  "\r",
  ".",
];
/** Unicode text in lines, with the awkward characters quoted-printable has rules for. */
const text = fc.oneof(
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.string({ unit: "grapheme", maxLength: 300 }),
  fc
    .array(fc.oneof(fc.constantFrom(...samples), fc.string({ maxLength: 90 })), { maxLength: 40 })
    .map((a) => a.join("")),
);
const bytes = fc.uint8Array({ maxLength: 1500 });

function qp(s: string, binary = false): string {
  return encodeQuotedPrintable(encoder.encode(s), { binary });
}

function checkShape(encoded: string): void {
  expect(encoded).toMatch(/^[\x20-\x7e\r\n\t]*$/);
  // Every line break is CRLF.
  expect(encoded.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
  for (const line of encoded.split("\r\n")) {
    expect(line.length).toBeLessThanOrEqual(QP_LINE_LENGTH);
    expect(line).not.toMatch(/[ \t]$/);
  }
}

describe("encodeQuotedPrintable", () => {
  test("encodes '=', non-ASCII and controls; leaves printable ASCII", () => {
    expect(qp("a=b")).toBe("a=3Db");
    expect(qp("Xin chào")).toBe("Xin ch=C3=A0o");
    expect(qp("a\x00b\x7f")).toBe("a=00b=7F");
    expect(qp("Hello, world! (ok) ~")).toBe("Hello, world! (ok) ~");
  });

  test("encodes white space at the end of a line, not inside it", () => {
    expect(qp("a b \r\nc\t")).toBe("a b=20\r\nc=09");
  });

  test("keeps CRLF as a hard line break and encodes bare CR and LF", () => {
    expect(qp("a\r\nb\nc\rd")).toBe("a\r\nb=0Ac=0Dd");
  });

  test("binary mode encodes CRLF too", () => {
    expect(qp("a\r\nb", true)).toBe("a=0D=0Ab");
  });

  test("a line of exactly 76 characters is not broken; 77 get a soft break", () => {
    expect(qp("x".repeat(76))).toBe("x".repeat(76));
    expect(qp("x".repeat(77))).toBe(`${"x".repeat(75)}=\r\nxx`);
  });

  test("never splits an =XX triple over a soft break", () => {
    const encoded = qp(`${"x".repeat(74)}é`);
    expect(encoded).toBe(`${"x".repeat(74)}=\r\n=C3=A9`);
  });

  test("white space before a soft break stays literal, as it is not at a line end", () => {
    const encoded = qp(`${"x".repeat(74)} yy`);
    expect(encoded).toBe(`${"x".repeat(74)} =\r\nyy`);
  });

  test("property: text decodes back exactly, in ASCII lines of at most 76", () => {
    fc.assert(
      fc.property(text, (s) => {
        const encoded = qp(s);
        checkShape(encoded);
        expect(decoder.decode(decodeQuotedPrintable(encoded))).toBe(s);
      }),
      RUNS,
    );
  });

  test("property: every CRLF of the text is a hard break, and no other break is", () => {
    fc.assert(
      fc.property(text, (s) => {
        const hard = qp(s)
          .split("\r\n")
          .slice(0, -1)
          .filter((line) => !line.endsWith("="));
        expect(hard.length).toBe(s.split("\r\n").length - 1);
      }),
      RUNS,
    );
  });

  test("property: arbitrary bytes decode back exactly, in text and binary mode", () => {
    fc.assert(
      fc.property(bytes, fc.boolean(), (input, binary) => {
        const encoded = encodeQuotedPrintable(input, { binary });
        checkShape(encoded);
        expect(decodeQuotedPrintable(encoded)).toEqual(input);
      }),
      RUNS,
    );
  });
});

describe("decodeQuotedPrintable", () => {
  test("joins soft breaks and keeps hard ones as CRLF", () => {
    expect(decoder.decode(decodeQuotedPrintable("ab=\r\ncd\r\nef"))).toBe("abcd\r\nef");
  });

  test("accepts bare LF line ends, lower-case hex and transport-added trailing white space", () => {
    expect(decoder.decode(decodeQuotedPrintable("a=c3=a9 \t\nb=  \nc"))).toBe("aé\r\nbc");
  });

  test("keeps an '=' that does not start an escape", () => {
    expect(decoder.decode(decodeQuotedPrintable("1=2 =G0 x="))).toBe("1=2 =G0 x");
  });
});
