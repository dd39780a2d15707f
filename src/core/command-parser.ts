/**
 * Reading commands as a server does. Apart from command.ts, which a client needs for writing them,
 * so that a client (a one-message `send`) does not load the server's parser.
 */
import { AddressError, type AddressOptions, type Path, parsePath } from "./address.ts";
import { type Command, hasCrLfOrNul, type SaslResponse, type Verb } from "./command.ts";
import { SmtpError } from "./errors.ts";
import type { EsmtpParam } from "./esmtp-params.ts";
import { parseEsmtpParams } from "./esmtp-params-parser.ts";
import { MAX_COMMAND_LINE, MAX_MAIL_LINE, MAX_RCPT_LINE, MAX_SASL_LINE, octetLength } from "./limits.ts";

export const VERBS: readonly Verb[] = [
  "EHLO",
  "HELO",
  "MAIL",
  "RCPT",
  "DATA",
  "RSET",
  "QUIT",
  "STARTTLS",
  "NOOP",
  "HELP",
  "VRFY",
  "EXPN",
  "AUTH",
  "BDAT",
];

/** Octets a command line may take, CRLF included, for each verb (see limits.ts for the sources). */
export function maxCommandLine(verb: string): number {
  switch (verb.toUpperCase()) {
    case "MAIL":
      return MAX_MAIL_LINE;
    case "RCPT":
      return MAX_RCPT_LINE;
    case "AUTH":
      return MAX_SASL_LINE;
    default:
      return MAX_COMMAND_LINE;
  }
}

/** The longest line any command may take; a line reader may stop buffering beyond this. */
export const MAX_ANY_COMMAND_LINE = Math.max(MAX_COMMAND_LINE, MAX_MAIL_LINE, MAX_RCPT_LINE, MAX_SASL_LINE);

const syntax = (message: string) => new SmtpError(501, "5.5.4", message);

function isVerb(word: string): word is Verb {
  return (VERBS as readonly string[]).includes(word);
}

/** RFC 4422 §3.1: sasl-mech = 1*20 (UPPER-ALPHA / DIGIT / HYPHEN / UNDERSCORE); case folded here. */
const SASL_MECH = /^[A-Za-z0-9_-]{1,20}$/;
/** RFC 4954 §4: initial-response = base64 / "=" (the empty response). */
const BASE64 = /^(?:[A-Za-z0-9+/]+={0,2}|=)$/;

/** Finds the ">" that closes a path starting at `start`, skipping quoted local parts. */
function pathEnd(text: string, start: number): number {
  let quoted = false;
  for (let i = start + 1; i < text.length; i++) {
    const ch = text[i];
    if (quoted && ch === "\\") i++;
    else if (ch === '"') quoted = !quoted;
    else if (ch === ">" && !quoted) return i;
  }
  return -1;
}

function parseTransactionCommand(
  verb: "MAIL" | "RCPT",
  rest: string,
  opts: AddressOptions,
): { verb: "MAIL" | "RCPT"; path: Path; params: EsmtpParam[] } {
  const keyword = verb === "MAIL" ? "FROM:" : "TO:";
  const usage = verb === "MAIL" ? "MAIL FROM:<address>" : "RCPT TO:<address>";
  const enhanced = verb === "MAIL" ? "5.1.7" : "5.1.3";
  if (rest.slice(0, keyword.length).toUpperCase() !== keyword) throw syntax(`Syntax: ${usage}`);
  let at = keyword.length;
  // Postfix and others accept "MAIL FROM: <a@b>", which Outlook and old clients still send.
  if (rest[at] === " ") at++;
  if (rest[at] !== "<")
    throw new SmtpError(501, enhanced, `Syntax: ${usage} (the address needs angle brackets)`);
  const end = pathEnd(rest, at);
  if (end < 0) throw new SmtpError(501, enhanced, `Syntax: ${usage} (no closing ">")`);
  const after = rest.slice(end + 1);
  if (after !== "" && !after.startsWith(" ")) {
    throw new SmtpError(501, enhanced, `unexpected ${JSON.stringify(after.slice(0, 20))} after the address`);
  }
  const params = parseEsmtpParams(after);
  // SMTPUTF8 on MAIL itself permits a UTF-8 reverse-path (RFC 6531 §3.4).
  const utf8 = opts.utf8 === true || (verb === "MAIL" && params.some((p) => p.name === "SMTPUTF8"));
  const pathText = rest.slice(at, end + 1);
  let path: Path;
  try {
    path =
      verb === "RCPT" && /^<postmaster>$/i.test(pathText)
        ? // RFC 5321 §4.1.1.3: "<Postmaster>" without a domain must be accepted.
          { mailbox: { local: pathText.slice(1, -1), domain: "" } }
        : parsePath(pathText, { utf8 });
  } catch (error) {
    if (!(error instanceof AddressError)) throw error;
    if (error.reason === "utf8") throw new SmtpError(553, "5.6.7", error.message);
    throw new SmtpError(501, enhanced, error.message);
  }
  if (verb === "RCPT" && path.mailbox === null)
    throw new SmtpError(501, enhanced, "the null path <> is not a recipient");
  return { verb, path, params };
}

function noArgument(verb: "DATA" | "RSET" | "QUIT" | "STARTTLS", rest: string): Command {
  if (rest.trim() !== "") throw syntax(`${verb} takes no argument`);
  return { verb };
}

/**
 * Parses one command line, given without its CRLF. Verbs are case-insensitive. Throws SmtpError
 * carrying the reply to send: 500 5.5.2 for an unknown verb, a too-long line or a stray CR, LF or
 * NUL; 501 5.5.4 for bad arguments (501 5.1.7 / 5.1.3 for a bad MAIL / RCPT address, 553 5.6.7 for
 * UTF-8 without SMTPUTF8); 555 5.5.4 for malformed MAIL/RCPT parameters.
 */
export function parseCommand(line: string, opts: AddressOptions = {}): Command {
  const space = line.indexOf(" ");
  const word = (space < 0 ? line : line.slice(0, space)).toUpperCase();
  const rest = space < 0 ? "" : line.slice(space + 1);
  const length = octetLength(line) + 2;
  const limit = maxCommandLine(word);
  if (length > limit) {
    throw new SmtpError(
      500,
      "5.5.2",
      `line is ${length} octets, the limit is ${limit} (RFC 5321 §4.5.3.1.4)`,
    );
  }
  if (hasCrLfOrNul(line)) throw new SmtpError(500, "5.5.2", "bare CR, LF or NUL in a command line");
  if (!isVerb(word)) {
    throw new SmtpError(
      500,
      "5.5.2",
      word === "" ? "empty command" : `unknown command ${JSON.stringify(word.slice(0, 20))}`,
    );
  }
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(rest)) throw syntax("control character in the arguments");
  switch (word) {
    case "EHLO":
    case "HELO": {
      // RFC 5321 §4.1.1.1: a domain or address literal. Hosts send odd names ("my_host"), so
      // any single printable token is accepted; a hook may be stricter.
      const domain = rest.trim();
      if (domain === "") throw syntax(`${word} needs a domain name`);
      if (/\s/.test(domain)) throw syntax(`${word} takes exactly one domain name`);
      return { verb: word, domain };
    }
    case "MAIL":
    case "RCPT":
      return parseTransactionCommand(word, rest, opts);
    case "DATA":
    case "RSET":
    case "QUIT":
    case "STARTTLS":
      return noArgument(word, rest);
    case "NOOP":
    case "HELP":
      return rest.trim() === "" ? { verb: word } : { verb: word, argument: rest.trim() };
    case "VRFY":
    case "EXPN": {
      const argument = rest.trim();
      if (argument === "") throw syntax(`${word} needs an argument`);
      return { verb: word, argument };
    }
    case "AUTH": {
      const words = rest.trim().split(/ +/);
      const [mechanism, initialResponse, extra] = words;
      if (mechanism === undefined || mechanism === "") throw syntax("AUTH needs a mechanism");
      if (!SASL_MECH.test(mechanism))
        throw syntax(`malformed SASL mechanism ${JSON.stringify(mechanism.slice(0, 30))}`);
      if (extra !== undefined) throw syntax("AUTH takes a mechanism and at most one initial response");
      if (initialResponse === undefined) return { verb: "AUTH", mechanism: mechanism.toUpperCase() };
      if (!BASE64.test(initialResponse))
        throw new SmtpError(501, "5.5.2", "cannot decode the initial response as base64");
      return { verb: "AUTH", mechanism: mechanism.toUpperCase(), initialResponse };
    }
    case "BDAT": {
      // RFC 3030 §2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ]; chunk-size = 1*DIGIT
      const m = /^(\d{1,15})(?: +(LAST))? *$/i.exec(rest);
      if (m === null) throw syntax("Syntax: BDAT <size> [LAST]");
      return { verb: "BDAT", size: Number(m[1]), last: m[2] !== undefined };
    }
  }
}

/**
 * Parses one SASL response line (without CRLF). Throws SmtpError 500 5.5.6 when the line is over
 * 12288 octets and 501 5.5.2 when it is not base64, the replies RFC 4954 §4 names.
 */
export function parseSaslResponse(line: string): SaslResponse {
  if (line.length + 2 > MAX_SASL_LINE) {
    throw new SmtpError(500, "5.5.6", `authentication line is over ${MAX_SASL_LINE} octets (RFC 4954 §4)`);
  }
  if (line === "*") return { cancel: true };
  if (line !== "" && !BASE64.test(line))
    throw new SmtpError(501, "5.5.2", "cannot decode the response as base64");
  return { cancel: false, data: line };
}
