import { addressParser, decodeWords } from "postal-mime";
import {
  type HeaderField,
  headerSectionBytes,
  headerValue,
  headerValues,
  parseHeaderFields,
} from "./header-section.ts";
import { xTags } from "./tags.ts";
import type { Mailbox, StoredEnvelope } from "./types.ts";

/** The listing and search fields that come from the header section alone. */
export interface HeaderSummary {
  messageId: string;
  subject: string;
  from: Mailbox | null;
  to: Mailbox[];
  cc: Mailbox[];
  bcc: Mailbox[];
  replyTo: Mailbox[];
  date: number | null;
  /** From the X-Tags header (tags.ts). */
  tags: string[];
}

/** Reads the summary fields of a raw message from its header section only. */
export function summarizeHeaders(raw: Uint8Array, envelope: StoredEnvelope): HeaderSummary {
  const fields = parseHeaderFields(headerSectionBytes(raw));
  const to = addressesOf(fields, "To");
  const cc = addressesOf(fields, "Cc");
  return {
    messageId: stripAngles(headerValue(fields, "Message-ID") ?? ""),
    subject: decodeText(headerValue(fields, "Subject") ?? ""),
    from: fromOf(fields),
    to,
    cc,
    bcc: withHiddenRecipients(addressesOf(fields, "Bcc"), [...to, ...cc], envelope.rcptTo),
    replyTo: addressesOf(fields, "Reply-To"),
    date: dateOf(headerValue(fields, "Date")),
    tags: xTags(headerValue(fields, "X-Tags")),
  };
}

function fromOf(fields: readonly HeaderField[]): Mailbox | null {
  const value = headerValue(fields, "From");
  if (value === undefined) return null;
  const [first] = parseAddresses(value);
  // Mailpit shows an unparsable From as its text rather than hiding it.
  return first ?? { name: decodeText(value), address: "" };
}

function addressesOf(fields: readonly HeaderField[], name: string): Mailbox[] {
  return headerValues(fields, name).flatMap(parseAddresses);
}

/** An address list with groups flattened; never throws on malformed input. */
export function parseAddresses(value: string): Mailbox[] {
  try {
    return addressParser(value, { flatten: true })
      .filter((entry) => entry.address !== undefined)
      .map((entry) => ({ name: entry.name, address: entry.address ?? "" }));
  } catch {
    return [];
  }
}

/** An unstructured header value with RFC 2047 encoded words decoded. */
export function decodeText(value: string): string {
  try {
    return decodeWords(value);
  } catch {
    return value;
  }
}

/**
 * Recipients that were in the envelope but in no To or Cc header were blind copies: a catcher is
 * the one place that can show them, so they are added to Bcc.
 */
function withHiddenRecipients(
  bcc: Mailbox[],
  visible: readonly Mailbox[],
  rcptTo: readonly string[],
): Mailbox[] {
  const seen = new Set([...visible, ...bcc].map((mailbox) => mailbox.address.toLowerCase()));
  const out = [...bcc];
  for (const recipient of rcptTo) {
    const key = recipient.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ name: "", address: recipient });
  }
  return out;
}

function stripAngles(value: string): string {
  const trimmed = value.trim();
  return trimmed.startsWith("<") && trimmed.endsWith(">") ? trimmed.slice(1, -1).trim() : trimmed;
}

function dateOf(value: string | undefined): number | null {
  if (value === undefined) return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}
