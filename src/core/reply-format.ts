/**
 * Writing replies, as a server does. Apart from reply.ts, which a client needs for reading them,
 * so that a client (a one-message `send`) does not load this.
 */
import type { SmtpError } from "./errors.ts";
import { MAX_REPLY_LINE, octetLength } from "./limits.ts";
import { leadingEnhanced } from "./reply.ts";

/** C0 controls other than HT, and DEL: never sent in reply text, whatever a hook put in a message. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/g;

/**
 * A reply ready for the wire: "NNN-" on every line but the last, the enhanced code repeated on
 * each line (RFC 2034 §3 asks for that), CRLF endings, and no line over 512 octets
 * (RFC 5321 §4.5.3.1.5): longer text is wrapped at spaces where it can be.
 */
export function formatReply(
  code: number,
  enhanced: string | undefined,
  text: string | readonly string[],
): string {
  if (!Number.isInteger(code) || code < 200 || code > 599) throw new RangeError(`not a reply code: ${code}`);
  if (enhanced !== undefined) {
    // The parser's grammar for an enhanced code, with nothing after it.
    if (leadingEnhanced(enhanced)?.code !== enhanced || enhanced[0] !== String(code)[0]) {
      throw new RangeError(`enhanced code ${enhanced} does not fit reply code ${code}`);
    }
  }
  const given = typeof text === "string" ? [text] : text;
  const lines = given.flatMap((t) => t.split(/\r\n|\r|\n/)).map((t) => t.replace(CONTROL, " "));
  const prefix = enhanced === undefined ? "" : `${enhanced} `;
  const budget = MAX_REPLY_LINE - 2 - 4 - prefix.length;
  const wrapped = lines.flatMap((line) => wrapOctets(line, budget));
  if (wrapped.length === 0) wrapped.push("");
  const last = wrapped.length - 1;
  let out = "";
  wrapped.forEach((line, i) => {
    const body = `${prefix}${line}`.trimEnd();
    if (i === last) out += body === "" ? `${code}\r\n` : `${code} ${body}\r\n`;
    else out += `${code}-${body}\r\n`;
  });
  return out;
}

/** Splits `line` into pieces of at most `budget` UTF-8 octets, at spaces where possible, never inside a character. */
function wrapOctets(line: string, budget: number): string[] {
  const pieces: string[] = [];
  let rest = line;
  while (octetLength(rest) > budget) {
    let octets = 0;
    let cut = 0;
    for (const ch of rest) {
      const size = octetLength(ch);
      if (octets + size > budget) break;
      octets += size;
      cut += ch.length;
    }
    const space = rest.lastIndexOf(" ", cut);
    if (space > 0) {
      pieces.push(rest.slice(0, space));
      rest = rest.slice(space + 1);
    } else {
      pieces.push(rest.slice(0, cut));
      rest = rest.slice(cut);
    }
  }
  pieces.push(rest);
  return pieces;
}

/** The wire form of an SmtpError; its message may hold several lines. */
export function formatSmtpError(error: SmtpError): string {
  return formatReply(error.code, error.enhanced, error.message);
}
