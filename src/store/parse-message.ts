import PostalMime, { type Attachment } from "postal-mime";
import { headerSectionBytes, headerValue, parseHeaderFields } from "./header-section.ts";

/**
 * The full MIME reading of a stored message, done with postal-mime only when someone asks for the
 * message (the API) or for body-derived fields (the indexer), never while the SMTP client waits.
 */

/** Mailpit's snippet length. */
export const SNIPPET_LENGTH = 250;
/**
 * Free-text search reads at most this much decoded body per message: enough for any real body,
 * while a 25 MiB attachment-like text part cannot make every search slow.
 */
export const SEARCH_TEXT_LIMIT = 256 * 1024;
/** postal-mime's own defaults are generous; a hostile message nests far less before we give up. */
const MAX_NESTING_DEPTH = 64;

export interface MessagePart {
  /**
   * Position in the message's list of non-body parts, from "1": stable for a given raw message, so
   * the ID in a listing addresses the same part when downloaded. (Mailpit uses enmime's MIME path
   * instead; clients treat PartID as opaque.)
   */
  partId: string;
  fileName: string;
  contentType: string;
  contentId: string;
  /** Inline parts are shown inside the HTML (multipart/related, or disposition inline). */
  inline: boolean;
  content: Uint8Array;
}

export interface ParsedMessage {
  text: string;
  html: string;
  parts: MessagePart[];
}

export async function parseMessage(raw: Uint8Array): Promise<ParsedMessage> {
  const email = await PostalMime.parse(raw, {
    attachmentEncoding: "arraybuffer",
    maxNestingDepth: MAX_NESTING_DEPTH,
  });
  return {
    text: email.text ?? "",
    html: email.html ?? "",
    parts: email.attachments.map(toPart),
  };
}

function toPart(attachment: Attachment, index: number): MessagePart {
  const contentId = (attachment.contentId ?? "").replace(/^<|>$/g, "");
  const inline =
    attachment.disposition !== "attachment" &&
    (attachment.related === true || attachment.disposition === "inline");
  return {
    partId: String(index + 1),
    fileName: attachment.filename ?? "",
    contentType: attachment.mimeType,
    contentId,
    inline,
    content: contentBytes(attachment.content),
  };
}

function contentBytes(content: Attachment["content"]): Uint8Array {
  if (typeof content === "string") return new TextEncoder().encode(content);
  return content instanceof Uint8Array ? content : new Uint8Array(content);
}

/** The body-derived fields a listing and a free-text search need. */
export interface BodyIndex {
  attachments: number;
  inline: number;
  snippet: string;
  /** Lower-cased decoded text, HTML without tags, and part file names. */
  searchText: string;
}

export function indexBody(parsed: ParsedMessage): BodyIndex {
  const bodyText = parsed.text.length > 0 ? parsed.text : htmlToText(parsed.html);
  const names = parsed.parts.map((part) => part.fileName).filter((name) => name.length > 0);
  const searchSource = [bodyText.slice(0, SEARCH_TEXT_LIMIT), ...names].join(" ");
  return {
    attachments: parsed.parts.filter((part) => !part.inline).length,
    inline: parsed.parts.filter((part) => part.inline).length,
    snippet: snippetOf(bodyText),
    searchText: collapseWhitespace(searchSource).toLowerCase(),
  };
}

/**
 * The body index of a raw message. A plain UTF-8 or ASCII text message, the common case for
 * application mail and load tests, is read directly; anything else goes through postal-mime.
 */
export async function indexRaw(raw: Uint8Array): Promise<BodyIndex> {
  const text = plainTextBody(raw);
  if (text !== undefined) return indexBody({ text, html: "", parts: [] });
  return indexBody(await parseMessage(raw));
}

const PLAIN_CHARSETS = new Set(["utf-8", "utf8", "us-ascii", "ascii"]);
const IDENTITY_ENCODINGS = new Set(["7bit", "8bit", "binary"]);
const utf8 = new TextDecoder("utf-8");

/** The body of a single text/plain part needing no decoding, or undefined when MIME parsing is needed. */
export function plainTextBody(raw: Uint8Array): string | undefined {
  const section = headerSectionBytes(raw);
  const fields = parseHeaderFields(section);
  const contentType = headerValue(fields, "Content-Type");
  if (contentType !== undefined) {
    if ((contentType.split(";")[0] ?? "").trim().toLowerCase() !== "text/plain") return undefined;
    const charset = /charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1]?.toLowerCase();
    if (charset !== undefined && !PLAIN_CHARSETS.has(charset)) return undefined;
  }
  const encoding = headerValue(fields, "Content-Transfer-Encoding")?.trim().toLowerCase();
  if (encoding !== undefined && !IDENTITY_ENCODINGS.has(encoding)) return undefined;
  const start = bodyStart(raw, section.length);
  return start === undefined ? "" : utf8.decode(raw.subarray(start, start + SEARCH_TEXT_LIMIT));
}

/** Where the body begins after a header section of `headerLength` octets, if there is an empty line. */
function bodyStart(raw: Uint8Array, headerLength: number): number | undefined {
  const at = (offset: number) => raw[headerLength + offset];
  if (headerLength === 0) return at(0) === 0x0d ? 2 : 1;
  if (at(0) === 0x0d && at(1) === 0x0a && at(2) === 0x0d && at(3) === 0x0a) return headerLength + 4;
  if (at(0) === 0x0a && at(1) === 0x0a) return headerLength + 2;
  return undefined;
}

/** Mailpit's snippet: the body text on one line, cut at 250 characters with an ellipsis. */
export function snippetOf(text: string): string {
  // Only the head of a long body is needed; collapsing all of it would copy megabytes.
  const head = collapseWhitespace(text.slice(0, SNIPPET_LENGTH * 8));
  // Count characters, not UTF-16 units, so the cut never splits a surrogate pair.
  let characters = 0;
  let end = 0;
  for (const character of head) {
    if (characters === SNIPPET_LENGTH) break;
    characters++;
    end += character.length;
  }
  return end >= head.length ? head : `${head.slice(0, end).trimEnd()}...`;
}

function collapseWhitespace(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/** Good enough for a snippet and for search: drops head, scripts, styles and tags, decodes a few entities. */
export function htmlToText(html: string): string {
  const text = html
    .replace(/<(head|script|style)\b[\s\S]*?<\/\1\s*>/gi, " ")
    .replace(/<br\s*\/?>|<\/(p|div|tr|li|h[1-6])\s*>/gi, "\n")
    .replace(/<[^>]*>/g, " ");
  return decodeBasicEntities(text);
}

/** The few named entities mail HTML leans on; &amp; last, so "&amp;lt;" stays "&lt;". */
export function decodeBasicEntities(text: string): string {
  return text
    .replace(/&nbsp;/gi, " ")
    .replace(/&lt;/gi, "<")
    .replace(/&gt;/gi, ">")
    .replace(/&quot;/gi, '"')
    .replace(/&#39;|&apos;/gi, "'")
    .replace(/&amp;/gi, "&");
}
