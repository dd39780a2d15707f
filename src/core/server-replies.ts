/**
 * The replies the server session writes, in one table (aiosmtpd keeps such a table too), so the
 * session's logic reads as "reply X" rather than as magic strings, and tests can name a reply.
 * Fixed replies are formatted once, with and without their enhanced code (RFC 2034 is an option).
 */

import { SmtpError } from "./errors.ts";
import { formatReply } from "./reply-format.ts";

const encoder = new TextEncoder();

/** A reply with fixed text; its wire bytes are built on first use and kept. */
export class ServerReply {
  #withEnhanced: Uint8Array | undefined;
  #plain: Uint8Array | undefined;

  constructor(
    readonly code: number,
    readonly enhanced: string | undefined,
    readonly text: string,
  ) {}

  /** The wire form, with the enhanced code when `enhancedCodes` (ENHANCEDSTATUSCODES) is on. */
  bytes(enhancedCodes: boolean): Uint8Array {
    if (enhancedCodes) {
      this.#withEnhanced ??= encoder.encode(formatReply(this.code, this.enhanced, this.text));
      return this.#withEnhanced;
    }
    this.#plain ??= encoder.encode(formatReply(this.code, undefined, this.text));
    return this.#plain;
  }

  /** The same reply as an SmtpError, for code paths that throw. */
  error(): SmtpError {
    return new SmtpError(this.code, this.enhanced, this.text);
  }
}

const reply = (code: number, enhanced: string | undefined, text: string) =>
  new ServerReply(code, enhanced, text);

/** Every fixed reply of the server session, by what it says. */
export const Replies = {
  // RFC 5321 §4.1.1.5, §4.1.1.9, §4.1.1.10, §3.5.3
  ok: reply(250, "2.0.0", "Ok"),
  senderOk: reply(250, "2.1.0", "Sender ok"),
  recipientOk: reply(250, "2.1.5", "Recipient ok"),
  queued: reply(250, "2.0.0", "Ok: queued"),
  startMailInput: reply(354, undefined, "End data with <CR><LF>.<CR><LF>"),
  cannotVerify: reply(252, "2.0.0", "Cannot VRFY user, but will accept message and attempt delivery"),
  expnNotAvailable: reply(502, "5.5.1", "EXPN not available"),
  help: reply(
    214,
    "2.0.0",
    "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH (see RFC 5321)",
  ),
  bye: reply(221, "2.0.0", "Bye"),

  // RFC 3207
  readyToStartTls: reply(220, "2.0.0", "Ready to start TLS"),
  tlsNotAvailable: reply(502, "5.5.1", "Error: STARTTLS not available"),
  tlsAlreadyActive: reply(503, "5.5.1", "Error: TLS already active"),
  tlsRequired: reply(530, "5.7.0", "Must issue a STARTTLS command first"),

  // RFC 4954
  authSucceeded: reply(235, "2.7.0", "Authentication successful"),
  authRequired: reply(530, "5.7.0", "Authentication required"),
  authAlreadyDone: reply(503, "5.5.1", "Error: already authenticated"),
  authInTransaction: reply(503, "5.5.1", "Error: AUTH not allowed during a mail transaction"),
  authNotAvailable: reply(502, "5.5.1", "Error: authentication not available"),
  authMechanismUnknown: reply(504, "5.5.4", "Unrecognized authentication type"),
  authCancelled: reply(501, "5.7.0", "Authentication cancelled"),
  authInvalid: reply(535, "5.7.8", "Authentication credentials invalid"),
  authTemporaryFailure: reply(454, "4.7.0", "Temporary authentication failure"),
  encryptionRequiredForAuth: reply(
    538,
    "5.7.11",
    "Encryption required for requested authentication mechanism",
  ),

  // RFC 5321 §4.1.4 order of commands, §3.3 transactions
  needHelo: reply(503, "5.5.1", "Error: send HELO/EHLO first"),
  needEhlo: reply(503, "5.5.1", "Error: send EHLO first (this is an ESMTP command)"),
  needMail: reply(503, "5.5.1", "Error: need MAIL command"),
  nestedMail: reply(503, "5.5.1", "Error: nested MAIL command"),
  noValidRecipients: reply(554, "5.5.1", "Error: no valid recipients"),
  rcptAfterBdat: reply(503, "5.5.1", "Error: RCPT after BDAT in the same transaction"),
  dataAfterBdat: reply(503, "5.5.1", "Error: DATA and BDAT cannot be mixed in one transaction"),
  // RFC 3030 §3: BODY=BINARYMIME content must travel by BDAT.
  binaryMimeNeedsBdat: reply(503, "5.5.1", "Error: BODY=BINARYMIME requires BDAT"),
  chunkingNotAvailable: reply(502, "5.5.1", "Error: BDAT not available (CHUNKING not offered)"),
  tlsInTransaction: reply(503, "5.5.1", "Error: STARTTLS not allowed during a mail transaction"),

  // RFC 5321 §4.5.3.1.10 and RFC 1870
  tooManyRecipients: reply(452, "4.5.3", "Error: too many recipients"),
  messageTooBig: reply(552, "5.3.4", "Error: message exceeds the fixed maximum message size"),

  // Broken or hostile input
  lineTooLong: reply(500, "5.5.2", "Error: line too long"),
  textLineTooLong: reply(
    500,
    "5.5.2",
    "Error: message has a line over 1000 octets (RFC 5321 section 4.5.3.1.6)",
  ),
  bareLineFeedInCommand: reply(
    500,
    "5.5.2",
    "Error: bare LF in a command; lines end with CRLF (RFC 5321 section 2.3.8)",
  ),
  invalidUtf8: reply(500, "5.5.2", "Error: command is not valid UTF-8"),
  bareLineEndInMessage: reply(
    550,
    "5.6.0",
    "Error: message contains a bare CR or LF; lines end with CRLF (RFC 5321 section 2.3.8)",
  ),
  improperPipelining: reply(
    503,
    "5.5.0",
    "Error: improper use of SMTP command pipelining (wait for each reply; RFC 2920)",
  ),
} as const;

/** 220 greeting (RFC 5321 §4.2, no enhanced code: RFC 2034 applies after EHLO). */
export function greetingReply(hostname: string, text: string): Uint8Array {
  return encoder.encode(formatReply(220, undefined, text === "" ? hostname : `${hostname} ${text}`));
}

/** 421 replies: the session is ending (RFC 5321 §3.8); the connection closes right after. */
export const ClosingReplies = {
  tooManyErrors: (hostname: string) => new SmtpError(421, "4.7.0", `${hostname} Error: too many errors`),
  shuttingDown: (hostname: string) => new SmtpError(421, "4.3.2", `${hostname} Service shutting down`),
  timeout: (hostname: string) => new SmtpError(421, "4.4.2", `${hostname} Error: timeout exceeded`),
  tooManyConnections: (hostname: string) =>
    new SmtpError(421, "4.7.0", `${hostname} Error: too many connections, try again later`),
  commandsBeforeGreeting: () =>
    new SmtpError(554, "5.5.0", "Error: SMTP protocol synchronization: command sent before the greeting"),
} as const;
