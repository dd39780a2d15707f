import { unfoldHeader } from "./header-fold.ts";

/** One header field of a raw message: its name as written and where its bytes are. */
export interface RawHeaderField {
  name: string;
  /** Offset of the field's first byte in the message. */
  start: number;
  /** Offset just past the field's last line end (continuation lines included). */
  end: number;
}

/** A raw RFC 5322 message split into its header fields and body, without copying or changing a byte. */
export interface RawMessage {
  bytes: Uint8Array;
  fields: RawHeaderField[];
  /** Offset of the first body byte: past the blank line, or `bytes.length` when there is no body. */
  bodyStart: number;
}

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;
/** RFC 5322 §3.6.8 field-name, with the obsolete white space before the colon (§4.5). */
const FIELD_START = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:/;
const decoder = new TextDecoder("utf-8");
const latin1 = new TextDecoder("latin1");

/**
 * Splits a message into header fields and body. Lines may end in CRLF or a bare LF (as sendmail
 * input from cron often does). The header section ends at the first empty line, or at the first
 * line that is neither a field nor a continuation, in which case that line starts the body.
 */
export function splitMessage(bytes: Uint8Array): RawMessage {
  const fields: RawHeaderField[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    let lineEnd = bytes.indexOf(LF, pos);
    lineEnd = lineEnd === -1 ? bytes.length : lineEnd + 1;
    const first = bytes[pos]!;
    if (first === LF || (first === CR && bytes[pos + 1] === LF)) return { bytes, fields, bodyStart: lineEnd };
    const current = fields.at(-1);
    if ((first === SPACE || first === TAB) && current) {
      current.end = lineEnd;
    } else {
      // Field names are ASCII, so a latin1 view of the first bytes is enough to read one.
      const m = FIELD_START.exec(latin1.decode(bytes.subarray(pos, Math.min(lineEnd, pos + 1000))));
      if (!m) return { bytes, fields, bodyStart: pos };
      fields.push({ name: m[1]!, start: pos, end: lineEnd });
    }
    pos = lineEnd;
  }
  return { bytes, fields, bodyStart: bytes.length };
}

function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** The field's value, unfolded, decoded as UTF-8 (RFC 6532 allows it), without surrounding white space. */
export function fieldValue(message: RawMessage, field: RawHeaderField): string {
  const text = decoder.decode(message.bytes.subarray(field.start, field.end));
  return unfoldHeader(text.slice(text.indexOf(":") + 1))
    .replace(/\r?\n$/, "")
    .trim();
}

/** Every value of the fields called `name` (any case), in message order. */
export function headerValues(message: RawMessage, name: string): string[] {
  return message.fields.filter((f) => sameName(f.name, name)).map((f) => fieldValue(message, f));
}

/** The first value of the field called `name` (any case), or undefined. */
export function headerValue(message: RawMessage, name: string): string | undefined {
  return headerValues(message, name)[0];
}

/**
 * The message bytes without the fields called any of `names` (any case): everything else,
 * header order, line ends and body, is left exactly as it was. Used to drop Bcc (RFC 5322 §3.6.3).
 */
export function removeHeaders(message: RawMessage, ...names: string[]): Uint8Array {
  const drop = message.fields.filter((f) => names.some((n) => sameName(f.name, n)));
  if (drop.length === 0) return message.bytes;
  const size = message.bytes.length - drop.reduce((n, f) => n + f.end - f.start, 0);
  const out = new Uint8Array(size);
  let o = 0;
  let from = 0;
  for (const f of drop) {
    out.set(message.bytes.subarray(from, f.start), o);
    o += f.start - from;
    from = f.end;
  }
  out.set(message.bytes.subarray(from), o);
  return out;
}
