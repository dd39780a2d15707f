/**
 * MailHog's message JSON (its API v2 and its v1 single-message routes), so that the test helpers
 * written for MailHog (the `mailhog` npm client, cypress-mailhog, ...) work against `serve`.
 *
 * MailHog does little parsing and its clients rely on that: a content is the raw header fields
 * (names as written, values undecoded) and the raw body, still in its transfer encoding; a
 * multipart body is split at its boundary into parts of the same shape, nested multiparts too.
 * The splitting follows MailHog's own (data/message.go): parts are trimmed of CR and LF at both
 * ends, and pieces without header fields (the preamble, the closing delimiter's rest) are dropped.
 * Unlike MailHog, a field that occurs twice keeps both values, and an address splits at its last
 * "@" rather than its first.
 */
import type { MessageSummary } from "../store/types.ts";
import { goTime } from "./mailpit-json.ts";

export interface MailHogPath {
  Relays: string[];
  Mailbox: string;
  Domain: string;
  Params: string;
}

export interface MailHogContent {
  Headers: Record<string, string[]>;
  Body: string;
  /** Octets of this content, its header section included. */
  Size: number;
  MIME: MailHogMime | null;
}

export interface MailHogMime {
  Parts: MailHogContent[];
}

export interface MailHogMessage {
  ID: string;
  From: MailHogPath;
  To: MailHogPath[];
  /** The whole message; its MIME is always null, the parts are in the message's MIME. */
  Content: MailHogContent;
  Created: string;
  MIME: MailHogMime | null;
  Raw: { From: string; To: string[]; Data: string; Helo: string };
}

/** MailHog's listing and search answer. */
export interface MailHogPage {
  total: number;
  count: number;
  start: number;
  items: MailHogMessage[];
}

export function toMailHogMessage(summary: MessageSummary, raw: Uint8Array): MailHogMessage {
  // Parsed as one character per octet, so that sizes are octets and invalid UTF-8 cannot move a
  // boundary; the text becomes UTF-8 only on the way out.
  const data = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("latin1");
  const content = contentOf(data);
  const { envelope } = summary;
  return {
    ID: summary.id,
    From: pathOf(envelope.mailFrom),
    To: envelope.rcptTo.map(pathOf),
    Content: output({ ...content, mime: undefined }),
    Created: goTime(summary.created),
    MIME: outputMime(content.mime),
    Raw: { From: envelope.mailFrom, To: envelope.rcptTo, Data: utf8(data), Helo: envelope.heloName ?? "" },
  };
}

/** A content as parsed: every string one character per octet. */
interface Octets {
  headers: [name: string, values: string[]][];
  body: string;
  size: number;
  mime: Octets[] | undefined;
}

function pathOf(address: string): MailHogPath {
  const at = address.lastIndexOf("@");
  return {
    Relays: [],
    Mailbox: at === -1 ? address : address.slice(0, at),
    Domain: at === -1 ? "" : address.slice(at + 1),
    Params: "",
  };
}

/** One content: the fields before the first empty line, the body after, the parts of a multipart. */
function contentOf(data: string): Octets {
  const split = data.indexOf("\r\n\r\n");
  if (split === -1) return { headers: [], body: data, size: data.length, mime: undefined };
  const fields = new Map<string, string[]>();
  let last: string[] | undefined;
  for (const line of data.slice(0, split).split("\r\n")) {
    if (last !== undefined && (line.startsWith(" ") || line.startsWith("\t"))) {
      // A folded line continues the field: MailHog joins it without the CRLF, keeping the blank.
      last[last.length - 1] += line;
      continue;
    }
    const colon = line.indexOf(": ");
    if (colon <= 0) continue;
    const name = line.slice(0, colon);
    last = fields.get(name) ?? [];
    if (last.length === 0) fields.set(name, last);
    last.push(line.slice(colon + 2));
  }
  const content: Octets = {
    headers: [...fields],
    body: data.slice(split + 4),
    size: data.length,
    mime: undefined,
  };
  content.mime = partsOf(content);
  return content;
}

function partsOf(content: Octets): Octets[] | undefined {
  const type = content.headers.find(([name]) => name.toLowerCase() === "content-type")?.[1][0] ?? "";
  if (!/^\s*multipart\//i.test(type)) return undefined;
  const boundary = boundaryOf(type);
  if (boundary === undefined) return undefined;
  const parts = content.body
    .split(`--${boundary}`)
    .map((piece) => contentOf(piece.replace(/^[\r\n]+|[\r\n]+$/g, "")))
    .filter((part) => part.headers.length > 0);
  return parts.length > 0 ? parts : undefined;
}

function boundaryOf(contentType: string): string | undefined {
  const match = /;\s*boundary\s*=\s*(?:"([^"]*)"|([^;\s]+))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  return boundary ? boundary : undefined;
}

function output(content: Octets): MailHogContent {
  const headers: Record<string, string[]> = {};
  for (const [name, values] of content.headers) headers[utf8(name)] = values.map(utf8);
  return { Headers: headers, Body: utf8(content.body), Size: content.size, MIME: outputMime(content.mime) };
}

function outputMime(parts: Octets[] | undefined): MailHogMime | null {
  return parts ? { Parts: parts.map(output) } : null;
}

function utf8(latin1: string): string {
  return Buffer.from(latin1, "latin1").toString("utf8");
}
