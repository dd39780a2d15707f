/**
 * The message `smtpkit sendmail` reads on standard input, made fit to send the way sendmail makes
 * it: input ends at a line with only "." unless -i, and the Date, From and Message-ID headers
 * that RFC 5322 §3.6 requires are added when missing (at the end of the header section, as
 * Postfix's cleanup does). Everything else is left byte for byte as it came.
 */
import { randomUUID } from "node:crypto";
import { formatAddress } from "../mime/address-header.ts";
import { formatDate } from "../mime/date.ts";
import { foldHeader } from "../mime/header-fold.ts";
import { headerValue, splitMessage } from "../mime/headers.ts";

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;

/**
 * The input up to (not including) the first line that holds only "." (sendmail's end of input
 * without -i), or all of it.
 */
export function cutAtDotLine(input: Uint8Array): Uint8Array {
  for (let start = 0; start < input.length; ) {
    const newline = input.indexOf(LF, start);
    const end = newline === -1 ? input.length : newline;
    const isDot =
      input[start] === DOT && (end === start + 1 || (end === start + 2 && input[start + 1] === CR));
    if (isDot) return input.subarray(0, start);
    if (newline === -1) break;
    start = newline + 1;
  }
  return input;
}

export interface MissingHeaders {
  /** The From header's mailbox: the sender, with the -F full name when given. */
  from: { address: string; name?: string };
  now: Date;
  /** Right-hand side of a new Message-ID. */
  messageIdDomain: string;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * The message with Date, From and Message-ID added where it has none. A message with no header
 * section at all (`echo hi | sendmail bob`) gets one, and an empty line before its body. New
 * lines end like the message's first line does.
 */
export function addMissingHeaders(message: Uint8Array, missing: MissingHeaders): Uint8Array {
  const parsed = splitMessage(message);
  const firstLineEnd = message.indexOf(LF);
  const eol =
    firstLineEnd > 0 && message[firstLineEnd - 1] === CR ? "\r\n" : firstLineEnd === -1 ? "\r\n" : "\n";
  const added: string[] = [];
  if (headerValue(parsed, "Date") === undefined) added.push(foldHeader("Date", formatDate(missing.now)));
  if (headerValue(parsed, "From") === undefined) added.push(foldHeader("From", formatAddress(missing.from)));
  if (headerValue(parsed, "Message-ID") === undefined) {
    const id = `<${randomUUID().replaceAll("-", "")}@${missing.messageIdDomain}>`;
    added.push(foldHeader("Message-ID", id));
  }
  if (added.length === 0) return message;

  const encoder = new TextEncoder();
  const lines = added.map((field) => field.replaceAll("\r\n", eol)).join(eol) + eol;
  const last = parsed.fields.at(-1);
  if (last === undefined) {
    // No header section: what came is all body.
    return concat([encoder.encode(lines + eol), message]);
  }
  const head = message.subarray(0, last.end);
  const rest = message.subarray(last.end);
  const headEndsLine = head[head.length - 1] === LF;
  // The header section ended without its empty line (the next line was not a field): supply one.
  const separator = last.end === parsed.bodyStart && rest.length > 0 ? eol : "";
  return concat([head, encoder.encode((headEndsLine ? "" : eol) + lines + separator), rest]);
}
