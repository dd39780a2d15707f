import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  everyUnit,
  isAlphanumeric,
  isAscii,
  isAtext,
  isBlank,
  isDigit,
  isFtext,
  isLetterDigitHyphen,
  isLineTerminator,
  isVisibleAscii,
  isWhiteSpace,
  someUnit,
  splitRuns,
} from "../../src/core/chars.ts";

/** Each class against the regex it replaces, for every UTF-16 code unit. */
const CLASSES: [string, (c: number) => boolean, RegExp][] = [
  ["isDigit", isDigit, /^\d$/],
  ["isAlphanumeric", isAlphanumeric, /^[A-Za-z0-9]$/],
  ["isLetterDigitHyphen", isLetterDigitHyphen, /^[A-Za-z0-9-]$/],
  ["isAtext", isAtext, /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]$/],
  ["isVisibleAscii", isVisibleAscii, /^[\x21-\x7e]$/],
  ["isFtext", isFtext, /^[\x21-\x39\x3b-\x7e]$/],
  ["isBlank", isBlank, /^[ \t]$/],
  ["isWhiteSpace", isWhiteSpace, /^\s$/],
];

describe("character classes", () => {
  for (const [name, isMember, regex] of CLASSES) {
    test(`${name} is ${regex.source} for every code unit`, () => {
      const differ: number[] = [];
      for (let c = 0; c <= 0xffff; c++) {
        if (isMember(c) !== regex.test(String.fromCharCode(c))) differ.push(c);
      }
      expect(differ).toEqual([]);
    });
  }

  test("isLineTerminator is what . does not match", () => {
    const differ: number[] = [];
    for (let c = 0; c <= 0xffff; c++) {
      if (isLineTerminator(c) !== !/./.test(String.fromCharCode(c))) differ.push(c);
    }
    expect(differ).toEqual([]);
  });

  test("isWhiteSpace is what trim() removes", () => {
    const differ: number[] = [];
    for (let c = 0; c <= 0xffff; c++) {
      if (isWhiteSpace(c) !== (String.fromCharCode(c).trim() === "")) differ.push(c);
    }
    expect(differ).toEqual([]);
  });
});

/** Strings rich in the characters the classes split on: ASCII, Unicode spaces, line terminators, surrogates. */
const mixed = fc.string({
  unit: fc.oneof(
    fc.constantFrom(
      " ",
      "\t",
      "\n",
      "\r",
      "\v",
      "\f",
      "\u00a0",
      "\u2028",
      "\u2029",
      "\u3000",
      "\ufeff",
      ":",
      "-",
    ),
    fc.constantFrom("a", "Z", "0", "é", "\u{1f600}", "\ud800", "\x00", "\x7f", "\x80"),
    fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
  ),
  maxLength: 30,
});

describe("string tests", () => {
  test("isAscii is the absence of [^\\x00-\\x7f]", () => {
    fc.assert(fc.property(mixed, (text) => isAscii(text) === !/[^\x00-\x7f]/.test(text)));
  });

  test("everyUnit and someUnit are a class's ^[...]*$ and [...]", () => {
    fc.assert(
      fc.property(mixed, (text) => {
        expect(everyUnit(text, isFtext)).toBe(/^[\x21-\x39\x3b-\x7e]*$/.test(text));
        expect(someUnit(text, isWhiteSpace)).toBe(/\s/.test(text));
      }),
    );
  });

  test("splitRuns is split(/x+/) and, keeping separators, split(/(x+)/)", () => {
    fc.assert(
      fc.property(mixed, (text) => {
        expect(splitRuns(text, isWhiteSpace)).toEqual(text.split(/\s+/));
        expect(splitRuns(text, isBlank)).toEqual(text.split(/[ \t]+/));
        expect(splitRuns(text, isBlank, true)).toEqual(text.split(/([ \t]+)/));
      }),
      { numRuns: 500 },
    );
    for (const text of ["", " ", "a", " a ", "a  b", "\t\t"]) {
      expect(splitRuns(text, isBlank, true)).toEqual(text.split(/([ \t]+)/));
    }
  });
});
