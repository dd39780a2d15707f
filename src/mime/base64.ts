import { Buffer } from "node:buffer";

/** RFC 2045 §6.8: encoded lines are at most 76 characters (CRLF not counted). */
export const BASE64_LINE_LENGTH = 76;

const CRLF = "\r\n";
const ALPHABET = /^[A-Za-z0-9+/]*={0,2}$/;
const WHITESPACE = /[ \t\r\n]+/g;

/** Thrown when base64 text is not what RFC 4648 §4 allows (after line breaks are removed). */
export class Base64Error extends Error {
  override name = "Base64Error";
}

/**
 * RFC 2045 §6.8 base64 in lines of `lineLength` characters joined by CRLF, with no CRLF after the
 * last line (the MIME framing adds that). `lineLength` 0 gives one unbroken line, which RFC 2047
 * encoded-words need.
 */
export function encodeBase64(bytes: Uint8Array, lineLength: number = BASE64_LINE_LENGTH): string {
  const flat = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  if (lineLength <= 0 || flat.length <= lineLength) return flat;
  const lines: string[] = [];
  for (let i = 0; i < flat.length; i += lineLength) lines.push(flat.slice(i, i + lineLength));
  return lines.join(CRLF);
}

/**
 * Decodes base64 text, ignoring line breaks and other white space between characters. Anything
 * else outside the alphabet, misplaced padding or a length that does not fit in whole bytes is an
 * error: a decoder that skips garbage would hide the encoder bugs the tests are looking for.
 */
export function decodeBase64(text: string): Uint8Array {
  const compact = text.replace(WHITESPACE, "");
  if (!ALPHABET.test(compact)) throw new Base64Error("base64 text holds a character outside the alphabet");
  const unpadded = compact.replace(/=+$/, "");
  if (unpadded.length % 4 === 1) throw new Base64Error("base64 text ends in a partial byte");
  if (compact.length !== unpadded.length && compact.length % 4 !== 0) {
    throw new Base64Error("base64 padding does not complete a 4-character group");
  }
  return new Uint8Array(Buffer.from(unpadded, "base64"));
}
