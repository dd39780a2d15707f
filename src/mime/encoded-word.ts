import { Buffer } from "node:buffer";
import { everyUnit, isAtext, isVisibleAscii } from "../core/chars.ts";
import { MAX_TEXT_LINE } from "../core/limits.ts";
import { codePointOctets, decodeCharset } from "./utf8.ts";

/** RFC 2047 §2: an encoded-word is at most 75 characters, delimiters included. */
export const MAX_ENCODED_WORD = 75;
/** RFC 2047 §2: a header line that holds an encoded-word is at most 76 characters. */
export const MAX_ENCODED_WORD_LINE = 76;
/**
 * The longest word left as it is: folded onto its own line after one space it still fits the
 * RFC 5322 §2.1.1 limit of 998 octets (MAX_TEXT_LINE less CRLF). Longer runs of non-space text are
 * encoded, because encoded-words can be split anywhere and so folded.
 */
export const MAX_LITERAL_WORD = MAX_TEXT_LINE - 2 - 1;

const CHARSET = "UTF-8";
const OVERHEAD = `=?${CHARSET}?Q?`.length + "?=".length;
const MAX_ENCODED_TEXT = MAX_ENCODED_WORD - OVERHEAD;
/** B encoding writes 4 characters per 3 octets, in whole groups. */
const MAX_B_OCTETS = Math.floor(MAX_ENCODED_TEXT / 4) * 3;
const HEX = "0123456789ABCDEF";

/**
 * Where an encoded-word goes. RFC 2047 §5: in unstructured text (Subject, Comments, X- fields)
 * Q may leave most printable ASCII as it is; in a phrase (a display name) only letters, digits and
 * "!*+-/" may stand for themselves.
 */
export type WordContext = "text" | "phrase";

/** RFC 5322 §3.2.3 atom: one or more atext. */
function isAtom(word: string): boolean {
  return word !== "" && everyUnit(word, isAtext);
}

function isPrintableWord(word: string): boolean {
  return word !== "" && everyUnit(word, isVisibleAscii);
}

function isPrintableOrSpace(text: string): boolean {
  return everyUnit(text, (c) => c >= 0x20 && c <= 0x7e);
}

function qLiteral(b: number, context: WordContext): boolean {
  if (context === "phrase") {
    return (
      (b >= 0x30 && b <= 0x39) ||
      (b >= 0x41 && b <= 0x5a) ||
      (b >= 0x61 && b <= 0x7a) ||
      b === 0x21 ||
      b === 0x2a ||
      b === 0x2b ||
      b === 0x2d ||
      b === 0x2f
    );
  }
  return b >= 0x21 && b <= 0x7e && b !== 0x3d && b !== 0x3f && b !== 0x5f;
}

function qEncodeOctets(octets: number[], context: WordContext): string {
  let s = "";
  for (const b of octets) {
    if (b === 0x20) s += "_";
    else if (qLiteral(b, context)) s += String.fromCharCode(b);
    else s += `=${HEX[b >> 4]}${HEX[b & 0x0f]}`;
  }
  return s;
}

function qWords(text: string, context: WordContext): string[] {
  const words: string[] = [];
  let current = "";
  for (const ch of text) {
    const piece = qEncodeOctets(codePointOctets(ch.codePointAt(0)!), context);
    if (current.length + piece.length > MAX_ENCODED_TEXT) {
      words.push(`=?${CHARSET}?Q?${current}?=`);
      current = "";
    }
    current += piece;
  }
  words.push(`=?${CHARSET}?Q?${current}?=`);
  return words;
}

function bWords(text: string): string[] {
  const words: string[] = [];
  let current: number[] = [];
  const flush = () => words.push(`=?${CHARSET}?B?${Buffer.from(current).toString("base64")}?=`);
  for (const ch of text) {
    const octets = codePointOctets(ch.codePointAt(0)!);
    if (current.length + octets.length > MAX_B_OCTETS) {
      flush();
      current = [];
    }
    current.push(...octets);
  }
  flush();
  return words;
}

/**
 * Encodes non-empty text as RFC 2047 encoded-words, each at most {@link MAX_ENCODED_WORD} long
 * and each holding whole characters, in B or Q, whichever is shorter overall. Decoders drop the
 * white space between adjacent encoded-words, so the caller joins them with single spaces.
 */
export function encodeWords(text: string, context: WordContext): string[] {
  const q = qWords(text, context);
  const b = bWords(text);
  const length = (words: string[]) => words.reduce((n, w) => n + w.length + 1, 0);
  return length(b) < length(q) ? b : q;
}

/**
 * Leaves the words that can stand as they are and encodes each run of the others (with the
 * spaces between them, which decoders would otherwise drop) as encoded-words. Splitting on single
 * spaces makes an empty word of every extra space; such a word joins its neighbour's run, so
 * leading, trailing and repeated spaces all end up inside encoded-words and survive exactly.
 */
function encodeRuns(text: string, context: WordContext, literal: (word: string) => boolean): string {
  const words = text.split(" ");
  const encode = words.map((w) => w === "" || !literal(w));
  words.forEach((w, i) => {
    if (w !== "") return;
    if (i + 1 < words.length) encode[i + 1] = true;
    else if (i > 0) encode[i - 1] = true;
  });
  const out: string[] = [];
  let run: string[] = [];
  const flush = () => {
    if (run.length > 0) out.push(...encodeWords(run.join(" "), context));
    run = [];
  };
  words.forEach((w, i) => {
    if (encode[i]) {
      run.push(w);
    } else {
      flush();
      out.push(w);
    }
  });
  flush();
  return out.join(" ");
}

/** Some decoders find encoded-words anywhere, not only as whole words; text that looks like one is encoded. */
function looksEncoded(word: string): boolean {
  return word.includes("=?");
}

function plainTextWord(word: string): boolean {
  return isPrintableWord(word) && word.length <= MAX_LITERAL_WORD && !looksEncoded(word);
}

function atomWord(word: string): boolean {
  return isAtom(word) && word.length <= MAX_LITERAL_WORD && !looksEncoded(word);
}

/**
 * An unstructured header body (RFC 5322 §3.2.5, e.g. Subject): printable ASCII words stay, runs
 * of anything else become encoded-words. The result is 7-bit, breaks only at spaces, and decodes
 * to exactly `text`.
 */
export function encodeUnstructured(text: string): string {
  if (text === "") return "";
  // What encodeRuns would leave as it is, found without its bookkeeping and its first-run cost.
  if (text.split(" ").every(plainTextWord)) return text;
  return encodeRuns(text, "text", plainTextWord);
}

/**
 * A display name (RFC 5322 §3.2.5 phrase): atoms as they are, other printable ASCII as one
 * quoted-string, and anything beyond ASCII (or controls) with encoded-words, which may not appear
 * inside a quoted-string (RFC 2047 §5(3)).
 */
export function encodePhrase(name: string): string {
  if (name === "") return "";
  const words = name.split(" ");
  if (words.every(atomWord)) return name;
  if (isPrintableOrSpace(name) && !looksEncoded(name) && words.every((w) => w.length <= MAX_LITERAL_WORD)) {
    return `"${name.replace(/[\\"]/g, "\\$&")}"`;
  }
  return encodeRuns(name, "phrase", atomWord);
}

const ENCODED_WORD = /=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g;

function decodeQ(text: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "_") out.push(0x20);
    else if (c === "=" && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      out.push(Number.parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(c.charCodeAt(0) & 0xff);
  }
  return out;
}

interface Piece {
  raw: string;
  word?: { charset: string; octets: number[] };
}

/**
 * Decodes the RFC 2047 encoded-words in header text. White space between adjacent encoded-words
 * is dropped (§6.2); adjacent words in one charset are joined before decoding, so a character that
 * another encoder split between words still comes out whole. An unknown charset leaves the word
 * as it was written.
 */
export function decodeEncodedWords(text: string): string {
  const pieces: Piece[] = [];
  let last = 0;
  for (const m of text.matchAll(ENCODED_WORD)) {
    const [raw, rawCharset, encoding, encoded] = m;
    const start = m.index;
    const between = text.slice(last, start);
    const previous = pieces.at(-1);
    if (between !== "" && !(previous?.word && /^[ \t\r\n]+$/.test(between))) pieces.push({ raw: between });
    // RFC 2231 §5 lets the charset carry a language: "utf-8*en".
    const charset = rawCharset!.split("*")[0]!.toLowerCase();
    const octets = encoding!.toUpperCase() === "B" ? [...Buffer.from(encoded!, "base64")] : decodeQ(encoded!);
    pieces.push({ raw, word: { charset, octets } });
    last = start + raw.length;
  }
  if (last < text.length) pieces.push({ raw: text.slice(last) });

  let out = "";
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i]!;
    if (!piece.word) {
      out += piece.raw;
      continue;
    }
    const { charset } = piece.word;
    const octets = [...piece.word.octets];
    let raw = piece.raw;
    while (pieces[i + 1]?.word?.charset === charset) {
      const next = pieces[++i]!;
      octets.push(...next.word!.octets);
      raw += next.raw;
    }
    out += decodeCharset(charset, new Uint8Array(octets)) ?? raw;
  }
  return out;
}
