import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  foldHeader,
  HeaderError,
  MAX_HEADER_LINE,
  MAX_HEADER_LINE_HARD,
  unfoldHeader,
} from "../../src/mime/header-fold.ts";

const RUNS = { numRuns: 200 };
const word = fc.string({ unit: "grapheme", minLength: 1, maxLength: 30 }).map((w) => w.replace(/[\s]/g, "x"));
const space = fc.constantFrom(" ", " ", " ", "  ", "\t", " \t");
/** Header values made of words and white space, with a few words longer than a line. */
const value = fc
  .array(
    fc.tuple(
      space,
      fc.oneof(
        { weight: 9, arbitrary: word },
        {
          weight: 1,
          arbitrary: fc.string({ minLength: 79, maxLength: 300 }).map((w) => w.replace(/\s/g, "y")),
        },
      ),
    ),
    {
      maxLength: 40,
    },
  )
  .map((pairs) =>
    pairs
      .map(([s, w]) => s + w)
      .join("")
      .trimStart(),
  );

describe("foldHeader", () => {
  test("a short header stays on one line", () => {
    expect(foldHeader("Subject", "hello world")).toBe("Subject: hello world");
  });

  test("folds before the white space that would pass 78", () => {
    const folded = foldHeader("To", Array.from({ length: 8 }, (_, i) => `user${i}@example.com`).join(", "));
    expect(folded).toBe(
      "To: user0@example.com, user1@example.com, user2@example.com,\r\n" +
        " user3@example.com, user4@example.com, user5@example.com, user6@example.com,\r\n" +
        " user7@example.com",
    );
  });

  test("a word longer than the line gets a line of its own, even right after the colon", () => {
    const long = "x".repeat(100);
    expect(foldHeader("Subject", `${long} end`)).toBe(`Subject:\r\n ${long}\r\n end`);
  });

  test("trailing white space is not folded onto a line of its own", () => {
    expect(foldHeader("X-Pad", `${"a".repeat(70)}          `)).toBe(`X-Pad: ${"a".repeat(70)}          `);
  });

  test("throws on a line break in the value, a bad name, or a word that cannot fit in 998", () => {
    expect(() => foldHeader("Subject", "a\r\nBcc: x@y")).toThrow(HeaderError);
    expect(() => foldHeader("Subject", "a\nb")).toThrow(HeaderError);
    expect(() => foldHeader("Bad Name", "x")).toThrow(HeaderError);
    expect(() => foldHeader("Bad:Name", "x")).toThrow(HeaderError);
    expect(() => foldHeader("", "x")).toThrow(HeaderError);
    expect(() => foldHeader("X", "y".repeat(MAX_HEADER_LINE_HARD))).toThrow(HeaderError);
    expect(foldHeader("X", "y".repeat(MAX_HEADER_LINE_HARD - 1)).split("\r\n")[1]!.length).toBe(
      MAX_HEADER_LINE_HARD,
    );
  });

  test("counts octets, not UTF-16 units", () => {
    const folded = foldHeader("Subject", "ệệệệệệệệệệ ệệệệệệệệệệ ệệệệệệệệệệ");
    for (const line of folded.split("\r\n"))
      expect(Buffer.byteLength(line)).toBeLessThanOrEqual(MAX_HEADER_LINE);
  });

  test("property: unfolding gives back `Name: value`; lines within 78 unless one word is longer", () => {
    fc.assert(
      fc.property(value, fc.constantFrom(MAX_HEADER_LINE, 76), (v, width) => {
        const folded = foldHeader("X-Test", v, width);
        expect(unfoldHeader(folded)).toBe(`X-Test: ${v}`);
        const lines = folded.split("\r\n");
        lines.forEach((line, i) => {
          if (i > 0) expect(line).toMatch(/^[ \t]+\S/);
          // Over the width only when one word, alone on its line, is longer than that.
          const content = line.replace(/[ \t]+$/, "");
          if (Buffer.byteLength(content) > width) expect(content.trim().split(/[ \t]+/).length).toBe(1);
          expect(Buffer.byteLength(line)).toBeLessThanOrEqual(MAX_HEADER_LINE_HARD);
        });
      }),
      RUNS,
    );
  });
});

describe("unfoldHeader", () => {
  test("removes CRLF and bare LF before white space only", () => {
    expect(unfoldHeader("a\r\n b\n\tc\r\nd")).toBe("a b\tc\r\nd");
  });
});
