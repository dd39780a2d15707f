import { AddressError, type Path, parseMailbox } from "../core/address.ts";
import { AddressParseError, type AddressSpec, parseAddress } from "../mime/address-header.ts";
import { isFieldName } from "../mime/header-fold.ts";
import {
  type AttachmentSpec,
  buildMessage,
  isMessageInputError,
  type MessageSpec,
} from "../mime/message-builder.ts";
import { uniqueToken } from "../mime/unique-token.ts";
import { isAscii } from "../mime/utf8.ts";
import { baseName } from "./base-name.ts";
import { CliError, ExitCode, UsageError } from "./exit-codes.ts";

/** What `send` (and `sendmail`) hand to delivery: the envelope and the exact bytes for DATA. */
export interface Composition {
  from: Path;
  recipients: Path[];
  message: Uint8Array;
  messageId?: string;
  /** Some byte is 8-bit: BODY=8BITMIME is needed (only raw messages; built ones are 7-bit). */
  eightBit: boolean;
}

export interface ComposeInput {
  from?: string;
  to: string[];
  cc: string[];
  bcc: string[];
  replyTo: string[];
  subject?: string;
  headers: string[];
  text?: string;
  html?: string;
  attachments: string[];
  inline: string[];
  now: Date;
}

export function badData(message: string): CliError {
  return new CliError(message, ExitCode.dataError);
}

function parseOne(text: string, flag: string): AddressSpec {
  try {
    return parseAddress(text);
  } catch (error) {
    throw badData(`${flag}: ${error instanceof AddressParseError ? error.message : String(error)}`);
  }
}

/** The envelope form of an address; UTF-8 is allowed here and checked against SMTPUTF8 at delivery. */
export function envelopePath(address: string, flag: string): Path {
  if (flag === "--from" && (address === "" || address === "<>")) return { mailbox: null };
  try {
    return { mailbox: parseMailbox(address, { utf8: true }) };
  } catch (error) {
    throw badData(
      `${flag}: ${error instanceof AddressError ? error.message : String(error)} in '${address}'`,
    );
  }
}

/** A file's bytes; a missing or unreadable file is exit 66, named with the flag `what`. */
export async function readFileBytes(path: string, what: string): Promise<Uint8Array> {
  const file = Bun.file(path);
  if (!(await file.exists())) throw new CliError(`${what}: ${path} does not exist`, ExitCode.noInput);
  try {
    return new Uint8Array(await file.arrayBuffer());
  } catch (error) {
    throw new CliError(`${what}: cannot read ${path}: ${(error as Error).message}`, ExitCode.noInput);
  }
}

export async function readTextFile(path: string, what: string): Promise<string> {
  return new TextDecoder().decode(await readFileBytes(path, what));
}

/** `PATH[;type=TYPE][;name=NAME]`, as swaks and mutt users write it. */
async function attachment(spec: string, inline: boolean, index: number): Promise<AttachmentSpec> {
  const [path = "", ...params] = spec.split(";");
  const part: AttachmentSpec = { filename: baseName(path), content: new Uint8Array() };
  for (const param of params) {
    const eq = param.indexOf("=");
    const key = param.slice(0, eq).trim().toLowerCase();
    const value = param.slice(eq + 1).trim();
    if (eq === -1 || value === "")
      throw new UsageError(`--attach: '${param}' should be type=TYPE or name=NAME`);
    if (key === "type") part.contentType = value;
    else if (key === "name") part.filename = value;
    else throw new UsageError(`--attach: unknown parameter '${key}' (type= or name=)`);
  }
  part.content = await readFileBytes(path, inline ? "--inline" : "--attach");
  if (inline) {
    part.inline = true;
    part.contentId = `part${index + 1}.${uniqueToken()}@smtpkit`;
  }
  return part;
}

function parseHeaderFlag(text: string): [string, string] {
  const colon = text.indexOf(":");
  const name = text.slice(0, colon).trim();
  if (colon <= 0 || !isFieldName(name)) {
    throw new UsageError(`--header wants "Name: value", not '${text}'`);
  }
  return [name, text.slice(colon + 1).trim()];
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf("@") + 1) || "localhost";
}

/** Builds a new message from flags. Bcc goes into the envelope only, never into a header. */
export async function composeMessage(input: ComposeInput): Promise<Composition> {
  if (!input.from) throw new UsageError("no sender: give --from ADDRESS (or a default account with from=)");
  const from = parseOne(input.from, "--from");
  const to = input.to.map((t) => parseOne(t, "--to"));
  const cc = input.cc.map((t) => parseOne(t, "--cc"));
  const bcc = input.bcc.map((t) => parseOne(t, "--bcc"));
  if (to.length + cc.length + bcc.length === 0)
    throw new UsageError("no recipient: give --to, --cc or --bcc");
  const attachments = [
    ...(await Promise.all(input.attachments.map((a, i) => attachment(a, false, i)))),
    ...(await Promise.all(input.inline.map((a, i) => attachment(a, true, i)))),
  ];
  const spec: MessageSpec = {
    from,
    to,
    cc,
    replyTo: input.replyTo.map((t) => parseOne(t, "--reply-to")),
    subject: input.subject,
    text: input.text,
    html: input.html,
    attachments,
    headers: input.headers.map(parseHeaderFlag),
  };
  const needsUtf8 = [from, ...to, ...cc, ...bcc].some((a) => !isAscii(a.address));
  let built: ReturnType<typeof buildMessage>;
  try {
    built = buildMessage(spec, {
      date: input.now,
      messageIdDomain: domainOf(from.address),
      random: uniqueToken,
      utf8Headers: needsUtf8,
    });
  } catch (error) {
    if (isMessageInputError(error)) throw badData(error.message);
    throw error;
  }
  return {
    from: envelopePath(from.address, "--from"),
    recipients: [...to, ...cc, ...bcc].map((a) => envelopePath(a.address, "--to")),
    message: built.bytes,
    messageId: built.messageId,
    eightBit: built.eightBit,
  };
}
