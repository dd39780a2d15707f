/** UTF-8 helpers shared by the encoders, which must never split a character's octets. */

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8");

export function utf8Encode(text: string): Uint8Array {
  return encoder.encode(text);
}

export function utf8Decode(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** The UTF-8 octets of one code point, as `String.prototype.codePointAt` returns it. */
export function codePointOctets(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)];
  // A lone surrogate is not a character; TextEncoder writes U+FFFD for it, and so do we.
  if (cp >= 0xd800 && cp <= 0xdfff) return [0xef, 0xbf, 0xbd];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
}

export { isAscii } from "../core/chars.ts";

type EncodingLabel = ConstructorParameters<typeof TextDecoder>[0];

/**
 * Decodes octets in a charset a message names, or gives undefined when the runtime does not know
 * it. The label comes from outside, so the cast only moves the check to TextDecoder, which throws.
 */
export function decodeCharset(label: string, bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder(label as EncodingLabel).decode(bytes);
  } catch {
    return undefined;
  }
}
