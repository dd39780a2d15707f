import { createHash } from "node:crypto";
import {
  canonicalHeaderName,
  headerSectionBytes,
  headerValue,
  parseHeaderFields,
} from "../store/header-section.ts";
import type { MessagePart, ParsedMessage } from "../store/parse-message.ts";
import type { Mailbox, MessagePage, MessageSummary } from "../store/types.ts";

/**
 * The JSON shapes of Mailpit's API v1 (server/apiv1 and internal/storage/structs.go in
 * axllent/mailpit), built from the store's own types so that Mailpit clients work unchanged.
 */

export interface MailpitAddress {
  Name: string;
  Address: string;
}

export interface MailpitMessageSummary {
  ID: string;
  MessageID: string;
  Read: boolean;
  From: MailpitAddress;
  To: MailpitAddress[];
  Cc: MailpitAddress[];
  Bcc: MailpitAddress[];
  ReplyTo: MailpitAddress[];
  Subject: string;
  Created: string;
  Username: string;
  Tags: string[];
  Size: number;
  Attachments: number;
  Snippet: string;
}

export interface MailpitMessagesSummary {
  total: number;
  unread: number;
  /** Legacy, still sent by Mailpit: the number of messages in this page. */
  count: number;
  messages_count: number;
  messages_unread: number;
  start: number;
  tags: string[];
  messages: MailpitMessageSummary[];
}

export interface MailpitAttachment {
  PartID: string;
  FileName: string;
  ContentType: string;
  ContentID: string;
  Size: number;
  Checksums: { MD5: string; SHA1: string; SHA256: string };
}

export interface MailpitMessage {
  ID: string;
  MessageID: string;
  From: MailpitAddress;
  To: MailpitAddress[];
  Cc: MailpitAddress[];
  Bcc: MailpitAddress[];
  ReplyTo: MailpitAddress[];
  ReturnPath: string;
  Subject: string;
  ListUnsubscribe: { Header: string; Links: string[]; Errors: string; HeaderPost: string };
  Date: string;
  Tags: string[];
  Username: string;
  Text: string;
  HTML: string;
  Size: number;
  Inline: MailpitAttachment[];
  Attachments: MailpitAttachment[];
}

function address(mailbox: Mailbox | null): MailpitAddress {
  return { Name: mailbox?.name ?? "", Address: mailbox?.address ?? "" };
}

const addresses = (mailboxes: readonly Mailbox[]): MailpitAddress[] => mailboxes.map(address);

/** Go's RFC3339Nano as Mailpit prints times: no fractional part when it is zero, trailing zeros trimmed. */
export function goTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/\.(\d*?)0*Z$/, (_, digits: string) => (digits ? `.${digits}Z` : "Z"));
}

export function toMailpitSummary(summary: MessageSummary): MailpitMessageSummary {
  return {
    ID: summary.id,
    MessageID: summary.messageId,
    Read: summary.read,
    From: address(summary.from),
    To: addresses(summary.to),
    Cc: addresses(summary.cc),
    Bcc: addresses(summary.bcc),
    ReplyTo: addresses(summary.replyTo),
    Subject: summary.subject,
    Created: goTime(summary.created),
    Username: summary.envelope.authUser ?? "",
    Tags: summary.tags,
    Size: summary.size,
    Attachments: summary.attachments,
    Snippet: summary.snippet,
  };
}

/** `tags`: every tag in the mailbox, as Mailpit lists them beside a page. */
export function toMailpitPage(page: MessagePage, tags: string[]): MailpitMessagesSummary {
  return {
    total: page.total,
    unread: page.unread,
    count: page.messages.length,
    messages_count: page.matched,
    messages_unread: page.matchedUnread,
    start: page.start,
    tags,
    messages: page.messages.map(toMailpitSummary),
  };
}

export function toMailpitAttachment(part: MessagePart): MailpitAttachment {
  const digest = (algorithm: string) => createHash(algorithm).update(part.content).digest("hex");
  return {
    PartID: part.partId,
    // Mailpit names a part without a file name by its Content-ID.
    FileName: part.fileName || part.contentId,
    ContentType: part.contentType,
    ContentID: part.contentId,
    Size: part.content.length,
    Checksums: { MD5: digest("md5"), SHA1: digest("sha1"), SHA256: digest("sha256") },
  };
}

export function toMailpitMessage(
  summary: MessageSummary,
  parsed: ParsedMessage,
  raw: Uint8Array,
): MailpitMessage {
  const fields = parseHeaderFields(headerSectionBytes(raw));
  const returnPath = stripAngles(headerValue(fields, "Return-Path") ?? "") || summary.envelope.mailFrom;
  const unsubscribe = headerValue(fields, "List-Unsubscribe");
  return {
    ID: summary.id,
    MessageID: summary.messageId,
    From: address(summary.from),
    To: addresses(summary.to),
    Cc: addresses(summary.cc),
    Bcc: addresses(summary.bcc),
    ReplyTo: addresses(summary.replyTo),
    ReturnPath: returnPath,
    Subject: summary.subject,
    ListUnsubscribe: {
      Header: unsubscribe ?? "",
      Links: unsubscribe ? unsubscribeLinks(unsubscribe) : [],
      Errors:
        unsubscribe && unsubscribeLinks(unsubscribe).length === 0
          ? "no <link> found in List-Unsubscribe"
          : "",
      HeaderPost: headerValue(fields, "List-Unsubscribe-Post") ?? "",
    },
    Date: goTime(summary.date ?? summary.created),
    Tags: summary.tags,
    Username: summary.envelope.authUser ?? "",
    Text: parsed.text,
    HTML: parsed.html,
    Size: summary.size,
    Inline: parsed.parts.filter((part) => part.inline).map(toMailpitAttachment),
    Attachments: parsed.parts.filter((part) => !part.inline).map(toMailpitAttachment),
  };
}

/** RFC 2369 §2: the header is a list of URLs in angle brackets. */
function unsubscribeLinks(value: string): string[] {
  return [...value.matchAll(/<([^>]+)>/g)]
    .map((match) => (match[1] ?? "").trim())
    .filter((link) => link.length > 0);
}

function stripAngles(value: string): string {
  return value.trim().replace(/^<(.*)>$/, "$1");
}

/**
 * Mailpit's /headers: Go's mail.Header marshalled, so keys are canonicalised
 * ("Message-Id"), values unfolded but not decoded, and keys sorted.
 */
export function toMailpitHeaders(raw: Uint8Array): Record<string, string[]> {
  const grouped = new Map<string, string[]>();
  for (const field of parseHeaderFields(headerSectionBytes(raw))) {
    const key = canonicalHeaderName(field.name);
    const values = grouped.get(key);
    if (values) values.push(field.value);
    else grouped.set(key, [field.value]);
  }
  const sorted: Record<string, string[]> = {};
  for (const key of [...grouped.keys()].sort()) sorted[key] = grouped.get(key) ?? [];
  return sorted;
}
