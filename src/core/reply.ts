import { isDigit } from "./chars.ts";
import { ProtocolError, SmtpError } from "./errors.ts";
import { MAX_REPLY_LINE_LENIENT } from "./limits.ts";

/**
 * A complete reply. `lines` holds each line's text after "NNN-" or "NNN "; an enhanced status
 * code (RFC 3463, class digit equal to the reply's first digit) is removed from every line that
 * starts with one and kept once in `enhanced`.
 */
export interface Reply {
  code: number;
  enhanced?: string;
  lines: string[];
}

export type ReplyClass = 2 | 3 | 4 | 5;

const LF = 0x0a;
const CR = 0x0d;
const decoder = new TextDecoder("utf-8");
const encoder = new TextEncoder();

/**
 * RFC 5321 §4.2: Reply-code ("2"-"5" and two digits), then "-" (more lines follow), " " or
 * nothing (last line); the text after the separator may hold anything.
 */
function isReplyLine(line: string): boolean {
  const c = line.charCodeAt(0);
  if (c < 0x32 || c > 0x35 || !isDigit(line.charCodeAt(1)) || !isDigit(line.charCodeAt(2))) return false;
  return line.length === 3 || line[3] === " " || line[3] === "-";
}

/** Where the run of digits starting at `start` ends. */
function digitsEnd(text: string, start: number): number {
  let end = start;
  while (isDigit(text.charCodeAt(end))) end++;
  return end;
}

/**
 * An enhanced code ("2", "4" or "5", then "." 1*3DIGIT twice) at the start of a line's text,
 * followed by spaces or the end: the code, and where the text after those spaces starts.
 */
export function leadingEnhanced(text: string): { code: string; end: number } | undefined {
  const c = text.charCodeAt(0);
  if ((c !== 0x32 && c !== 0x34 && c !== 0x35) || text[1] !== ".") return undefined;
  const subject = digitsEnd(text, 2);
  if (subject === 2 || subject > 5 || text[subject] !== ".") return undefined;
  const detail = digitsEnd(text, subject + 1);
  if (detail === subject + 1 || detail > subject + 4) return undefined;
  let end = detail;
  while (text[end] === " ") end++;
  if (end === detail && end < text.length) return undefined;
  return { code: text.slice(0, detail), end };
}

/**
 * Splits a byte stream from a server into replies, for any chunking of the input.
 * CRLF ends a line; a bare LF is accepted too (leniency towards broken servers is harmless on the
 * client side, unlike the server's DATA reader). Malformed input throws ProtocolError, after
 * which the parser stays failed: the stream cannot be resynchronised reliably.
 */
export class ReplyParser {
  /** Bytes of an unfinished line, in a buffer that grows by doubling so byte-by-byte input stays linear. */
  #partial: Uint8Array = new Uint8Array(0);
  #partialLength = 0;
  #code = 0;
  #enhanced: string | undefined;
  #lines: string[] = [];
  #failure: ProtocolError | undefined;

  /** True while part of a reply (a partial line or the first lines of a multi-line reply) is held. */
  get pending(): boolean {
    return this.#partialLength > 0 || this.#lines.length > 0;
  }

  push(chunk: Uint8Array | string): Reply[] {
    if (this.#failure !== undefined) throw this.#failure;
    const bytes = typeof chunk === "string" ? encoder.encode(chunk) : chunk;
    // The held partial line has no LF, so the search for one starts at the new bytes.
    const searchFrom = this.#partialLength;
    const data = searchFrom === 0 ? bytes : this.#append(bytes);
    const replies: Reply[] = [];
    let start = 0;
    try {
      for (let lf = data.indexOf(LF, searchFrom); lf >= 0; lf = data.indexOf(LF, start)) {
        const end = lf > start && data[lf - 1] === CR ? lf - 1 : lf;
        this.#checkLength(end - start);
        const reply = this.#line(decoder.decode(data.subarray(start, end)));
        if (reply !== undefined) replies.push(reply);
        start = lf + 1;
      }
      // A trailing CR may still be followed by its LF, so it does not count yet.
      const rest = data.length - start;
      this.#checkLength(data[data.length - 1] === CR ? rest - 1 : rest);
    } catch (error) {
      if (error instanceof ProtocolError) this.#failure = error;
      throw error;
    }
    this.#keep(data, start);
    return replies;
  }

  /** Appends to the partial line and returns a view of all of it. */
  #append(bytes: Uint8Array): Uint8Array {
    const needed = this.#partialLength + bytes.length;
    if (needed > this.#partial.length) {
      const grown = new Uint8Array(Math.max(needed, this.#partial.length * 2, 64));
      grown.set(this.#partial.subarray(0, this.#partialLength));
      this.#partial = grown;
    }
    this.#partial.set(bytes, this.#partialLength);
    this.#partialLength = needed;
    return this.#partial.subarray(0, needed);
  }

  /** Holds `data[start..]`, the unfinished line, for the next push. */
  #keep(data: Uint8Array, start: number): void {
    const rest = data.length - start;
    if (data.buffer === this.#partial.buffer) {
      this.#partial.copyWithin(0, start, data.length);
      this.#partialLength = rest;
      return;
    }
    this.#partialLength = 0;
    if (rest > 0) this.#append(data.subarray(start));
  }

  #checkLength(octets: number): void {
    if (octets > MAX_REPLY_LINE_LENIENT) {
      throw new ProtocolError(`reply line longer than ${MAX_REPLY_LINE_LENIENT} octets`);
    }
  }

  #line(line: string): Reply | undefined {
    if (!isReplyLine(line)) {
      throw new ProtocolError(`malformed reply line: ${JSON.stringify(line.slice(0, 80))}`);
    }
    const code = Number(line.slice(0, 3));
    if (this.#lines.length > 0 && code !== this.#code) {
      throw new ProtocolError(`reply code changed from ${this.#code} to ${code} inside a multi-line reply`);
    }
    this.#code = code;
    let text = line.slice(4);
    const enhanced = leadingEnhanced(text);
    if (enhanced !== undefined && text[0] === line[0]) {
      this.#enhanced ??= enhanced.code;
      text = text.slice(enhanced.end);
    }
    this.#lines.push(text);
    if (line[3] === "-") return undefined;
    const reply: Reply = { code, lines: this.#lines };
    if (this.#enhanced !== undefined) reply.enhanced = this.#enhanced;
    this.#lines = [];
    this.#enhanced = undefined;
    this.#code = 0;
    return reply;
  }
}

/** Parses one complete reply given as a string ("250-a\r\n250 b\r\n"); throws if it is not exactly one. */
export function parseReply(text: string): Reply {
  const parser = new ReplyParser();
  const replies = parser.push(text);
  const [reply] = replies;
  if (replies.length !== 1 || reply === undefined || parser.pending) {
    throw new ProtocolError(`expected exactly one complete reply, got ${replies.length}`);
  }
  return reply;
}

/** An SmtpError carrying a (negative) reply, for a client that rejects on 4xx/5xx. */
export function replyToError(reply: Reply): SmtpError {
  return new SmtpError(reply.code, reply.enhanced, replyMessage(reply));
}

/** The class digit of a reply code: 2 positive, 3 intermediate, 4 transient, 5 permanent. */
export function replyClass(code: number): ReplyClass {
  const cls = Math.floor(code / 100);
  if (!Number.isInteger(code) || cls < 2 || cls > 5) throw new RangeError(`not a reply code: ${code}`);
  return cls as ReplyClass;
}

/** 2xx or 3xx: the command was accepted (or its next step is awaited). */
export function isPositive(code: number): boolean {
  return code >= 200 && code < 400;
}

/** 4xx: try again later. */
export function isTransient(code: number): boolean {
  return code >= 400 && code < 500;
}

/** 5xx: do not repeat the same command. */
export function isPermanent(code: number): boolean {
  return code >= 500 && code < 600;
}

/** The reply's text on one line: its non-empty lines joined with single spaces. */
export function replyMessage(reply: Reply): string {
  return reply.lines
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .join(" ");
}
