/**
 * Delivery status notifications (RFC 3464): a multipart/report (RFC 6522) with a text part for
 * people, a message/delivery-status part for programs, and the original message or its header
 * (RFC 3461 §4.3 RET). Pure: the worker decides who is notified and queues what this builds,
 * sent from the null reverse-path "<>" so that no notification is ever sent about it in turn
 * (RFC 5321 §4.5.5, RFC 3461 §6.2).
 */
import { randomBytes } from "node:crypto";
import { formatMailbox, type Path } from "../core/address.ts";
import type { Envelope } from "../core/envelope.ts";
import { emptyMailParams, emptyRcptParams, type MailParams, type RcptParams } from "../core/esmtp-params.ts";
import { encodeUtf8AddrXtext } from "../core/xtext.ts";
import { formatDate } from "../mime/date.ts";
import { foldHeader } from "../mime/header-fold.ts";
import { splitMessage } from "../mime/headers.ts";
import { encodeQuotedPrintable } from "../mime/quoted-printable.ts";
import type { ReplyRecord } from "./types.ts";

/** RFC 3464 §2.3.3 action-value; "delivered"/"relayed" are for success notices. */
export type DsnAction = "failed" | "delayed" | "delivered" | "relayed" | "expanded";

export interface DsnRecipient {
  path: Path;
  params: RcptParams;
  action: DsnAction;
  /** RFC 3463 status, e.g. "5.1.1". */
  status: string;
  reply?: ReplyRecord;
  /** Why, when there was no reply (connection refused, DNS...). */
  error?: string;
  remoteMta?: string;
  lastAttempt?: number;
  /** For "delayed": when the queue gives up. */
  willRetryUntil?: number;
}

export interface DsnInput {
  /** Our host name: Reporting-MTA and the From address's domain. */
  reportingMta: string;
  queueId: string;
  arrival: number;
  now: number;
  original: { from: Path; mailParams: MailParams; raw: Uint8Array };
  recipients: DsnRecipient[];
}

/**
 * The original goes back whole when RET=FULL and it is at most this big, or without RET when it
 * is at most DEFAULT_RETURN_LIMIT (Postfix's bounce_size_limit); otherwise only its header.
 */
export const FULL_RETURN_LIMIT = 10 * 1024 * 1024;
export const DEFAULT_RETURN_LIMIT = 50_000;

/** RFC 3461 §4.1: without NOTIFY, failures are reported and delays may be; NEVER silences all. */
export function wantsNotice(params: RcptParams, what: "failure" | "delay" | "success"): boolean {
  const notify = params.notify;
  if (notify === undefined || notify.length === 0) return what !== "success";
  return notify.includes(what === "failure" ? "FAILURE" : what === "delay" ? "DELAY" : "SUCCESS");
}

/** Printable ASCII only (RFC 3464 fields are US-ASCII text): other characters become "?". */
function ascii(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?");
}

function isAscii(text: string): boolean {
  return /^[\x00-\x7f]*$/.test(text);
}

function addressOf(path: Path): string {
  return path.mailbox === null ? "" : formatMailbox(path.mailbox);
}

/** RFC 3464 §2.3.2 / RFC 6533 §3: "rfc822; a@b", or "utf-8; " + utf-8-addr-xtext for non-ASCII. */
function typedAddress(type: string, address: string): string {
  if (type.toLowerCase() === "rfc822" && !isAscii(address)) return `utf-8; ${encodeUtf8AddrXtext(address)}`;
  if (type.toLowerCase().startsWith("utf-8")) return `utf-8; ${encodeUtf8AddrXtext(address)}`;
  return `${type}; ${ascii(address)}`;
}

function field(name: string, value: string): string {
  return `${foldHeader(name, value)}\r\n`;
}

/** RFC 3464 §2.3.6: "smtp; 550 5.1.1 ..." for a reply, our own type for anything else. */
function diagnostic(recipient: DsnRecipient): string | undefined {
  if (recipient.reply !== undefined) {
    const { code, enhanced, text } = recipient.reply;
    const line = text.split("\n").join(" ").trim();
    return `smtp; ${code}${enhanced === undefined ? "" : ` ${enhanced}`}${line === "" ? "" : ` ${ascii(line)}`}`;
  }
  return recipient.error === undefined ? undefined : `X-smtpkit; ${ascii(recipient.error)}`;
}

function deliveryStatus(input: DsnInput): string {
  const params = input.original.mailParams;
  let out = field("Reporting-MTA", `dns; ${input.reportingMta}`);
  out += field("X-Smtpkit-Queue-ID", input.queueId);
  if (params.envid !== undefined) out += field("Original-Envelope-Id", ascii(params.envid));
  out += field("Arrival-Date", formatDate(new Date(input.arrival)));
  for (const r of input.recipients) {
    out += "\r\n";
    if (r.params.orcpt !== undefined) {
      out += field("Original-Recipient", typedAddress(r.params.orcpt.type, r.params.orcpt.address));
    }
    out += field("Final-Recipient", typedAddress("rfc822", addressOf(r.path)));
    out += field("Action", r.action);
    out += field("Status", r.status);
    if (r.remoteMta !== undefined) out += field("Remote-MTA", `dns; ${ascii(r.remoteMta)}`);
    const code = diagnostic(r);
    if (code !== undefined) out += field("Diagnostic-Code", code);
    if (r.lastAttempt !== undefined) out += field("Last-Attempt-Date", formatDate(new Date(r.lastAttempt)));
    if (r.willRetryUntil !== undefined) {
      out += field("Will-Retry-Until", formatDate(new Date(r.willRetryUntil)));
    }
  }
  return out;
}

function humanText(input: DsnInput, returned: "full" | "headers"): string {
  const delayed = input.recipients.every((r) => r.action === "delayed");
  const lines = [`This is the mail delivery system at ${input.reportingMta} (smtpkit).`, ""];
  if (delayed) {
    const until = input.recipients[0]?.willRetryUntil;
    lines.push(
      "Your message has not been delivered yet to the recipients below.",
      until === undefined
        ? "Delivery will be tried again; you do not need to send it again."
        : `Delivery will be tried again until ${formatDate(new Date(until))}; you do not need to send it again.`,
    );
  } else {
    lines.push("Your message could not be delivered to the recipients below.");
  }
  lines.push("");
  for (const r of input.recipients) {
    const why =
      r.reply !== undefined
        ? `${r.reply.code}${r.reply.enhanced === undefined ? "" : ` ${r.reply.enhanced}`} ${r.reply.text.split("\n").join(" ")}`
        : (r.error ?? r.status);
    const where = r.remoteMta === undefined ? "" : ` (${r.remoteMta} said)`;
    lines.push(`<${addressOf(r.path)}>${where}: ${why}`.trimEnd());
  }
  lines.push(
    "",
    returned === "full"
      ? "The original message is attached."
      : "The header of the original message is attached.",
    "",
  );
  return lines.join("\r\n");
}

/** RFC 3461 §4.3: what RET asked for, within the size limits above. */
export function returnedContent(mailParams: MailParams, size: number): "full" | "headers" {
  if (mailParams.ret === "HDRS") return "headers";
  const limit = mailParams.ret === "FULL" ? FULL_RETURN_LIMIT : DEFAULT_RETURN_LIMIT;
  return size <= limit ? "full" : "headers";
}

function withFinalCrlf(bytes: Uint8Array): Uint8Array {
  const n = bytes.length;
  if (n >= 2 && bytes[n - 2] === 0x0d && bytes[n - 1] === 0x0a) return bytes;
  const out = new Uint8Array(n + 2);
  out.set(bytes);
  out[n] = 0x0d;
  out[n + 1] = 0x0a;
  return out;
}

function headerSection(raw: Uint8Array): Uint8Array {
  const split = splitMessage(raw);
  const last = split.fields.at(-1);
  return raw.subarray(0, last === undefined ? 0 : last.end);
}

function hasEightBit(bytes: Uint8Array): boolean {
  for (const byte of bytes) if (byte > 0x7f) return true;
  return false;
}

/** The notification message and its envelope: from "<>", to the original sender. */
export function buildDsn(input: DsnInput): { message: Uint8Array; envelope: Envelope } {
  const sender = input.original.from;
  if (sender.mailbox === null) throw new Error("no notification is ever sent about a message from <>");
  if (input.recipients.length === 0) throw new Error("a notification needs at least one recipient to report");
  const delayed = input.recipients.every((r) => r.action === "delayed");
  const boundary = `=_smtpkit_${randomBytes(12).toString("hex")}`;
  const returned = returnedContent(input.original.mailParams, input.original.raw.length);
  const senderAddress = addressOf(sender);
  const head =
    field("From", `Mail Delivery System <MAILER-DAEMON@${input.reportingMta}>`) +
    field("To", isAscii(senderAddress) ? `<${senderAddress}>` : "undisclosed-recipients:;") +
    field("Subject", delayed ? "Delayed Mail (still being retried)" : "Undelivered Mail Returned to Sender") +
    field("Date", formatDate(new Date(input.now))) +
    field("Message-ID", `<${randomBytes(12).toString("hex")}.${input.queueId}@${input.reportingMta}>`) +
    // RFC 3834 §5: an automatic reply; auto-responders must not answer it.
    field("Auto-Submitted", "auto-replied") +
    field("MIME-Version", "1.0") +
    field("Content-Type", `multipart/report; report-type=delivery-status; boundary="${boundary}"`) +
    "\r\n" +
    "This is a MIME-encapsulated delivery status notification.\r\n";
  const text =
    `--${boundary}\r\n` +
    field("Content-Description", "Notification") +
    field("Content-Type", "text/plain; charset=utf-8") +
    field("Content-Transfer-Encoding", "quoted-printable") +
    "\r\n" +
    encodeQuotedPrintable(new TextEncoder().encode(humanText(input, returned))) +
    "\r\n";
  const status =
    `--${boundary}\r\n` +
    field("Content-Description", "Delivery report") +
    field("Content-Type", "message/delivery-status") +
    "\r\n" +
    deliveryStatus(input);
  const original = returned === "full" ? input.original.raw : headerSection(input.original.raw);
  const originalHead =
    `\r\n--${boundary}\r\n` +
    field(
      "Content-Description",
      returned === "full" ? "Undelivered Message" : "Undelivered Message Headers",
    ) +
    field("Content-Type", returned === "full" ? "message/rfc822" : "text/rfc822-headers") +
    (hasEightBit(original) ? field("Content-Transfer-Encoding", "8bit") : "") +
    "\r\n";
  const encoder = new TextEncoder();
  const parts = [
    encoder.encode(head + text + status + originalHead),
    withFinalCrlf(original),
    encoder.encode(`\r\n--${boundary}--\r\n`),
  ];
  const total = parts.reduce((sum, p) => sum + p.length, 0);
  const message = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    message.set(part, at);
    at += part.length;
  }
  const mailParams = emptyMailParams();
  if (!isAscii(senderAddress)) mailParams.smtpUtf8 = true;
  return {
    message,
    envelope: {
      from: { mailbox: null },
      mailParams,
      recipients: [{ path: sender, params: emptyRcptParams() }],
    },
  };
}
