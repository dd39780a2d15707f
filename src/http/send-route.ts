/**
 * Mailpit's POST /api/v1/send: a message described in JSON is built by our MIME encoders (the
 * same 7-bit message `smtpkit send` would make) and stored as if it had arrived by SMTP, so a
 * test can put mail in the catcher without an SMTP client. It answers `{"ID": "..."}`.
 */
import { AddressError, parseMailbox } from "../core/address.ts";
import type { AddressSpec } from "../mime/address-header.ts";
import { isFieldName } from "../mime/header-fold.ts";
import {
  type AttachmentSpec,
  buildMessage,
  isMessageInputError,
  type MessageSpec,
} from "../mime/message-builder.ts";
import { uniqueToken } from "../mime/unique-token.ts";
import { isAscii } from "../mime/utf8.ts";
import { cleanTags } from "../store/tags.ts";
import type { MessageStore, StoredEnvelope } from "../store/types.ts";
import { stringList } from "./message-routes.ts";
import { badRequest, json, readJson } from "./responses.ts";
import type { Router } from "./router.ts";

export interface SendRouteOptions {
  /** The HTTP client's IP address, kept as the message's client address. */
  clientAddress: (request: Request) => string;
  /** Largest message accepted, as SMTP's SIZE limit (serve's --max-size); 0 for none. */
  maxSize: number;
  /** Told about each stored message, as for one that came by SMTP (serve prints its line). */
  onStored?: (id: string, raw: Uint8Array, envelope: StoredEnvelope) => void;
}

type Json = Record<string, unknown>;

export function registerSendRoute(router: Router, store: MessageStore, options: SendRouteOptions): void {
  router.on("POST", "/api/v1/send", async ({ request }) => {
    const body = await readJson(request);
    if (!isObject(body)) throw badRequest("the request body must be a JSON object (Mailpit's send request)");
    const { spec, envelopeTo } = sendSpec(body);
    const from = spec.from.address;
    const utf8Envelope = [from, ...envelopeTo].some((address) => !isAscii(address));
    // Stored, not sent: a header may hold a UTF-8 address (RFC 6532) wherever one was given.
    const utf8Headers = utf8Envelope || (spec.replyTo ?? []).some((mailbox) => !isAscii(mailbox.address));
    let bytes: Uint8Array;
    try {
      bytes = buildMessage(spec, {
        date: new Date(),
        messageIdDomain: from.slice(from.lastIndexOf("@") + 1),
        random: uniqueToken,
        utf8Headers,
      }).bytes;
    } catch (error) {
      if (isMessageInputError(error)) throw badRequest(error.message);
      throw error;
    }
    if (options.maxSize > 0 && bytes.length > options.maxSize) {
      throw badRequest(
        `the message is ${bytes.length} octets, more than the ${options.maxSize} this server takes (--max-size)`,
      );
    }
    const envelope: StoredEnvelope = {
      mailFrom: from,
      rcptTo: envelopeTo,
      mailParams: utf8Envelope ? { SMTPUTF8: "" } : {},
      rcptParams: envelopeTo.map(() => ({})),
      clientAddress: options.clientAddress(request),
    };
    const id = await store.add(bytes, envelope);
    options.onStored?.(id, bytes, envelope);
    return json({ ID: id });
  });
}

/** The message and its envelope recipients (To, Cc and Bcc) from Mailpit's send request. */
function sendSpec(body: Json): { spec: MessageSpec; envelopeTo: string[] } {
  if (body.From === undefined) throw badRequest('From is required: {"Email": "..."}');
  const from = mailbox(body.From, "From");
  const to = mailboxes(body.To, "To");
  const cc = mailboxes(body.Cc, "Cc");
  const bcc = (stringList(body.Bcc, "Bcc") ?? []).map((address) => checkedAddress(address, "Bcc"));
  if (to.length + cc.length + bcc.length === 0) throw badRequest("no recipient: give To, Cc or Bcc");
  // As Mailpit: the tags travel in an X-Tags header, which the store reads as for mail by SMTP.
  const tags = cleanTags(stringList(body.Tags, "Tags") ?? []);
  const extraHeaders = headers(body.Headers);
  if (tags.length > 0) extraHeaders.push(["X-Tags", tags.join(", ")]);
  const spec: MessageSpec = {
    from,
    to,
    cc,
    replyTo: mailboxes(body.ReplyTo, "ReplyTo"),
    subject: optionalString(body.Subject, "Subject"),
    text: optionalString(body.Text, "Text"),
    html: optionalString(body.HTML, "HTML"),
    attachments: attachments(body.Attachments),
    headers: extraHeaders,
  };
  return { spec, envelopeTo: [...to, ...cc].map((m) => m.address).concat(bcc) };
}

function mailbox(value: unknown, field: string): AddressSpec {
  if (!isObject(value)) throw badRequest(`${field} must be an object: {"Email": "...", "Name": "..."}`);
  const address = checkedAddress(value.Email, `${field}.Email`);
  const name = optionalString(value.Name, `${field}.Name`);
  return name ? { name, address } : { address };
}

function mailboxes(value: unknown, field: string): AddressSpec[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw badRequest(`${field} must be an array of {"Email": "...", "Name": "..."}`);
  return value.map((entry, index) => mailbox(entry, `${field}[${index}]`));
}

/** An addr-spec as SMTP would take it in MAIL or RCPT (RFC 5321 §4.1.2), UTF-8 allowed (RFC 6531). */
function checkedAddress(value: unknown, field: string): string {
  if (typeof value !== "string" || value === "") throw badRequest(`${field} must be an email address`);
  try {
    parseMailbox(value, { utf8: true });
  } catch (error) {
    if (error instanceof AddressError) throw badRequest(`${field}: ${error.message}`);
    throw error;
  }
  return value;
}

function attachments(value: unknown): AttachmentSpec[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw badRequest("Attachments must be an array");
  return value.map((entry, index) => {
    const field = `Attachments[${index}]`;
    if (!isObject(entry)) throw badRequest(`${field} must be an object with Content and Filename`);
    const filename = optionalString(entry.Filename, `${field}.Filename`);
    if (!filename) throw badRequest(`${field}.Filename is required`);
    const encoded = optionalString(entry.Content, `${field}.Content`) ?? "";
    let content: Uint8Array;
    try {
      content = Uint8Array.fromBase64(encoded);
    } catch {
      throw badRequest(`${field}.Content is not valid base64`);
    }
    const part: AttachmentSpec = { filename, content };
    const contentType = optionalString(entry.ContentType, `${field}.ContentType`);
    if (contentType) part.contentType = contentType;
    // Mailpit: a Content-ID makes the attachment inline.
    const contentId = optionalString(entry.ContentID, `${field}.ContentID`);
    if (contentId) {
      part.inline = true;
      part.contentId = contentId;
    }
    return part;
  });
}

function headers(value: unknown): [string, string][] {
  if (value === undefined || value === null) return [];
  if (!isObject(value)) throw badRequest('Headers must be an object: {"Name": "value"}');
  return Object.entries(value).map(([name, text]) => {
    if (!isFieldName(name)) throw badRequest(`Headers: '${name}' is not a header field name`);
    if (typeof text !== "string") throw badRequest(`Headers.${name} must be a string`);
    return [name, text];
  });
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw badRequest(`${field} must be a string`);
  return value;
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
