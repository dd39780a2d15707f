import { Buffer } from "node:buffer";

/** RFC 2045 §6.7 rule 5: encoded lines are at most 76 characters, a soft break's "=" included. */
export const QP_LINE_LENGTH = 76;

const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
const TAB = 0x09;
const EQUALS = 0x3d;
const HEX = "0123456789ABCDEF";

export interface QuotedPrintableOptions {
  /**
   * Encode CR and LF like any other octet. Without it, each CRLF in the input is a hard line
   * break (RFC 2045 §6.7 rule 4), which is what text wants; bare CR or LF are still encoded so
   * decoding gives back the exact bytes.
   */
  binary?: boolean;
}

/** RFC 2045 §6.7 rule 2: printable ASCII except "=" may stand for itself. */
function isLiteral(b: number): boolean {
  return (b >= 33 && b <= 60) || (b >= 62 && b <= 126);
}

/**
 * Quoted-printable (RFC 2045 §6.7) with CRLF line breaks. Trailing white space on a line, "=",
 * controls and every octet ≥ 128 become =XX; no line exceeds {@link QP_LINE_LENGTH}; an =XX
 * triple is never split by a soft line break. The result is pure ASCII.
 */
export function encodeQuotedPrintable(bytes: Uint8Array, options: QuotedPrintableOptions = {}): string {
  const text = options.binary !== true;
  const n = bytes.length;
  // Worst case: every octet as =XX, plus a 3-character soft break for every 72 characters.
  const out = new Uint8Array(n * 3 + Math.ceil((n * 3) / 72) * 3 + 3);
  let o = 0;
  let column = 0;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (text && b === CR && bytes[i + 1] === LF) {
      out[o++] = CR;
      out[o++] = LF;
      column = 0;
      i++;
      continue;
    }
    const atLineEnd = i + 1 === n || (text && bytes[i + 1] === CR && bytes[i + 2] === LF);
    const literal = isLiteral(b) || ((b === SPACE || b === TAB) && !atLineEnd);
    const width = literal ? 1 : 3;
    // The last token of a line may use all 76 columns; any other must leave room for the "=".
    const limit = atLineEnd ? QP_LINE_LENGTH : QP_LINE_LENGTH - 1;
    if (column + width > limit) {
      out[o++] = EQUALS;
      out[o++] = CR;
      out[o++] = LF;
      column = 0;
    }
    if (literal) {
      out[o++] = b;
    } else {
      out[o++] = EQUALS;
      out[o++] = HEX.charCodeAt(b >> 4);
      out[o++] = HEX.charCodeAt(b & 0x0f);
    }
    column += width;
  }
  return Buffer.from(out.buffer, 0, o).toString("latin1");
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

/**
 * Decodes quoted-printable text. Lines may end in CRLF or a bare LF; trailing white space that a
 * transport may have added is dropped (RFC 2045 §6.7 rule 3); a line ending in "=" joins the next.
 * Lower-case hex is accepted and an "=" not followed by two hex digits is kept as it is (the
 * robustness §6.7 note 1 recommends).
 */
export function decodeQuotedPrintable(text: string): Uint8Array {
  const input = Buffer.from(text, "latin1");
  // A bare LF line end becomes CRLF, so the output may be up to twice the input.
  const out = new Uint8Array(input.length * 2);
  let o = 0;
  let lineStart = 0;
  while (lineStart <= input.length) {
    let lineEnd = input.indexOf(LF, lineStart);
    const last = lineEnd === -1;
    if (last) lineEnd = input.length;
    let contentEnd = lineEnd;
    if (!last && contentEnd > lineStart && input[contentEnd - 1] === CR) contentEnd--;
    while (contentEnd > lineStart && (input[contentEnd - 1] === SPACE || input[contentEnd - 1] === TAB)) {
      contentEnd--;
    }
    let soft = false;
    if (contentEnd > lineStart && input[contentEnd - 1] === EQUALS) {
      soft = true;
      contentEnd--;
    }
    for (let i = lineStart; i < contentEnd; i++) {
      const b = input[i]!;
      if (b === EQUALS && i + 2 < contentEnd) {
        const hi = hexValue(input[i + 1]!);
        const lo = hexValue(input[i + 2]!);
        if (hi >= 0 && lo >= 0) {
          out[o++] = (hi << 4) | lo;
          i += 2;
          continue;
        }
      }
      out[o++] = b;
    }
    if (last) break;
    if (!soft) {
      out[o++] = CR;
      out[o++] = LF;
    }
    lineStart = lineEnd + 1;
  }
  return out.slice(0, o);
}
