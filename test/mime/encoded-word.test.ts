import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  decodeEncodedWords,
  encodePhrase,
  encodeUnstructured,
  encodeWords,
  MAX_ENCODED_WORD,
  MAX_ENCODED_WORD_LINE,
} from "../../src/mime/encoded-word.ts";
import { foldHeader, unfoldHeader } from "../../src/mime/header-fold.ts";

const RUNS = { numRuns: 200 };
const ENCODED_WORD = /=\?UTF-8\?([BQ])\?([^?]*)\?=/g;

const samples = [
  "Xin chào thế giới",
  "Nguyễn Thị Minh Khai",
  "😀",
  "🎉👩‍👩‍👧‍👦",
  "漢字かなカナ한국어",
  "Ελληνικά",
  " ",
  "  ",
  "\t",
  "=?",
  "?=",
  "=?UTF-8?Q?x?=",
  "_",
  "a",
  "Re:",
  '"',
  "(",
  ",",
];
/** Unicode text, and text built from the pieces RFC 2047 has rules for. */
const text = fc.oneof(
  fc.string({ unit: "binary", maxLength: 120 }),
  fc.string({ unit: "grapheme", maxLength: 120 }),
  fc.string({ maxLength: 120 }),
  fc.array(fc.constantFrom(...samples), { maxLength: 30 }).map((a) => a.join("")),
);

/** The octets inside one encoded-word, which must be whole UTF-8 characters (RFC 2047 §5 last rule). */
function wordOctets(encoding: string, encoded: string): Uint8Array {
  if (encoding === "B") return new Uint8Array(Buffer.from(encoded, "base64"));
  const latin = encoded
    .replace(/_/g, " ")
    .replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
  return new Uint8Array(Buffer.from(latin, "latin1"));
}

function checkWords(encoded: string, qAllowed: RegExp): void {
  expect(encoded).toMatch(/^[\x20-\x7e]*$/);
  for (const m of encoded.matchAll(ENCODED_WORD)) {
    expect(m[0].length).toBeLessThanOrEqual(MAX_ENCODED_WORD);
    if (m[1] === "Q") expect(m[2]).toMatch(qAllowed);
    // fatal: throws if a word ends in the middle of a character.
    new TextDecoder("utf-8", { fatal: true }).decode(wordOctets(m[1]!, m[2]!));
  }
}

describe("encodeUnstructured", () => {
  test("leaves printable ASCII words alone", () => {
    expect(encodeUnstructured("Re: [smtpkit] Build #42 (ok), 100% done!")).toBe(
      "Re: [smtpkit] Build #42 (ok), 100% done!",
    );
  });

  test("encodes only the run of words that needs it, with the spaces inside the run", () => {
    expect(encodeUnstructured("Grüße aus Köln")).toBe("=?UTF-8?B?R3LDvMOfZQ==?= aus =?UTF-8?B?S8O2bG4=?=");
    // "Zoë Åsa" is one run: the space between them is inside the word, as decoders drop the one between words.
    expect(encodeUnstructured("Hi Zoë Åsa ok")).toBe("Hi =?UTF-8?B?Wm/DqyDDhXNh?= ok");
  });

  test("picks B for CJK, Q for mostly ASCII", () => {
    expect(encodeUnstructured("漢字かなカナ")).toMatch(/^=\?UTF-8\?B\?/);
    expect(encodeUnstructured("Donaudampfschifffahrtsgesellschaftskapitän")).toMatch(/^=\?UTF-8\?Q\?/);
  });

  test("splits a long run into several words of at most 75, never inside a character", () => {
    const encoded = encodeUnstructured("Tiếng Việt có dấu ".repeat(10));
    expect(encoded.split(" ").length).toBeGreaterThan(2);
    checkWords(encoded, /^[\x21-\x7e]*$/);
    expect(decodeEncodedWords(encoded)).toBe("Tiếng Việt có dấu ".repeat(10));
  });

  test("leading, trailing and repeated spaces and tabs survive inside encoded-words", () => {
    for (const s of [" a", "a ", "a  b", "a\tb", " ", "   ", "x  y  z "]) {
      const encoded = encodeUnstructured(s);
      expect(encoded).not.toMatch(/^ | $| {2}|\t/);
      expect(decodeEncodedWords(encoded)).toBe(s);
    }
  });

  test("text that looks like an encoded-word is encoded, so it reads as written", () => {
    const s = "=?UTF-8?Q?not_encoded?=";
    expect(encodeUnstructured(s)).not.toBe(s);
    expect(decodeEncodedWords(encodeUnstructured(s))).toBe(s);
  });

  test("a word too long to fold within 998 octets is encoded so it can be split", () => {
    const long = "x".repeat(2000);
    expect(encodeUnstructured(`see ${"y".repeat(900)}`)).toBe(`see ${"y".repeat(900)}`);
    const encoded = encodeUnstructured(`see ${long}`);
    expect(encoded.startsWith("see =?UTF-8?")).toBe(true);
    expect(decodeEncodedWords(encoded)).toBe(`see ${long}`);
  });

  test("property: decodes back exactly; 7-bit; words ≤ 75 holding whole characters", () => {
    fc.assert(
      fc.property(text, (s) => {
        const encoded = encodeUnstructured(s);
        checkWords(encoded, /^[\x21-\x3e\x40-\x7e]*$/);
        expect(decodeEncodedWords(encoded)).toBe(s);
      }),
      RUNS,
    );
  });

  test("property: folded as Subject, lines ≤ 76 and unfolding restores the value", () => {
    fc.assert(
      fc.property(text, (s) => {
        const encoded = encodeUnstructured(s);
        const folded = foldHeader("Subject", encoded, MAX_ENCODED_WORD_LINE);
        for (const line of folded.split("\r\n"))
          expect(line.length).toBeLessThanOrEqual(MAX_ENCODED_WORD_LINE);
        expect(decodeEncodedWords(unfoldHeader(folded).slice("Subject: ".length))).toBe(s);
      }),
      RUNS,
    );
  });

  test("property: ASCII text with single spaces between words is left exactly as it is", () => {
    const word = fc.string({
      unit: fc.constantFrom(..."abcXYZ019!#.,:;()[]<>@\"'/\\"),
      minLength: 1,
      maxLength: 12,
    });
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 12 }), (words) => {
        const s = words.join(" ");
        expect(encodeUnstructured(s)).toBe(s);
      }),
      RUNS,
    );
  });
});

describe("encodeWords", () => {
  test("B or Q, whichever is shorter (Q on a tie)", () => {
    const qLength = (s: string) =>
      [...Buffer.from(s)].reduce(
        (n, b) =>
          n + (b === 0x20 || (b > 0x20 && b < 0x7f && !"=?_".includes(String.fromCharCode(b))) ? 1 : 3),
        0,
      );
    for (const s of [
      "Nguyễn",
      "naïve café",
      "日本語のテキスト",
      "a b c d é",
      "Schrödinger",
      "Donaudampfschifffahrtskapitän",
    ]) {
      const [word, ...rest] = encodeWords(s, "text");
      expect(rest).toEqual([]);
      const b = Buffer.from(s).toString("base64").length;
      const q = qLength(s);
      expect(word).toMatch(b < q ? /^=\?UTF-8\?B\?/ : /^=\?UTF-8\?Q\?/);
      expect(word!.length - "=?UTF-8?X??=".length).toBe(Math.min(b, q));
    }
  });
});

describe("encodePhrase", () => {
  test("atoms stay, other ASCII is one quoted-string", () => {
    expect(encodePhrase("Ana Nguyen")).toBe("Ana Nguyen");
    expect(encodePhrase("Quoted, Name")).toBe('"Quoted, Name"');
    expect(encodePhrase('Say "hi" \\ bye')).toBe('"Say \\"hi\\" \\\\ bye"');
    expect(encodePhrase("John Q. Public")).toBe('"John Q. Public"');
  });

  test("non-ASCII words become encoded-words with the phrase's narrow Q alphabet", () => {
    expect(encodePhrase("Ana Nguyễn")).toBe("Ana =?UTF-8?B?Tmd1eeG7hW4=?=");
    const encoded = encodePhrase("Nguyễn, Ana (Sales)");
    checkWords(encoded, /^[A-Za-z0-9!*+\-/=_]*$/);
    expect(encoded).not.toMatch(/[",()]/);
  });

  test("property: 7-bit, words ≤ 75 with whole characters, Q limited to RFC 2047 §5(3)", () => {
    fc.assert(
      fc.property(text, (s) => {
        checkWords(encodePhrase(s), /^[A-Za-z0-9!*+\-/=_]*$/);
      }),
      RUNS,
    );
  });
});

describe("decodeEncodedWords", () => {
  test("RFC 2047 §8 examples", () => {
    const cases: [string, string][] = [
      ["(=?ISO-8859-1?Q?a?=)", "(a)"],
      ["(=?ISO-8859-1?Q?a?= b)", "(a b)"],
      ["(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"],
      ["(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"],
      ["(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)"],
      ["(=?ISO-8859-1?Q?a_b?=)", "(a b)"],
      ["(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"],
    ];
    for (const [input, decoded] of cases) expect(decodeEncodedWords(input)).toBe(decoded);
  });

  test("joins a character that another encoder split between two words", () => {
    // "é" is C3 A9; some encoders cut between the octets.
    expect(decodeEncodedWords("=?utf-8?Q?caf=C3?= =?utf-8?Q?=A9?=")).toBe("café");
  });

  test("lower-case b/q, a language suffix, and an unknown charset left as written", () => {
    expect(decodeEncodedWords("=?utf-8*vi?b?Tmfhu41j?=")).toBe("Ngọc");
    expect(decodeEncodedWords("a =?x-unknown?Q?zz?= b")).toBe("a =?x-unknown?Q?zz?= b");
  });
});
