/**
 * The SMTP server's protocol state machine, sans-IO (the h11 pattern): bytes in, actions out. It
 * owns RFC 5321 command order, ESMTP extensions, PIPELINING rules, DATA/BDAT framing, AUTH and
 * STARTTLS, and knows nothing about sockets, timers or clocks.
 *
 * How a driver uses it:
 *
 *   const session = new ServerSession(options);       // queues the "connect" hook
 *   on bytes:   session.receive(bytes); drain();
 *   drain():    for (let a; (a = session.nextAction()) !== null; ) handle(a);
 *
 * Actions (from nextAction):
 *   { type: "write", bytes }          write to the peer (consecutive replies come in one write)
 *   { type: "hook", request }         ask the application; the session waits (buffering input)
 *                                     until session.resolve(undefined | string | SmtpError)
 *   { type: "message-start", envelope }  a message body follows as message-chunk actions
 *   { type: "message-chunk", bytes }  body bytes (un-stuffed), views into received input
 *   { type: "reset" }                 the transaction was dropped (RSET, EHLO, STARTTLS)
 *   { type: "starttls" }              upgrade the connection, then call session.tlsStarted()
 *   { type: "close" }                 close the connection (after writing what came before)
 *   null                              nothing to do until more input or a resolve()
 *
 * Hooks and what resolve() means for them:
 *   connect, helo, mail, rcpt, data-start, auth: undefined accepts; an SmtpError is written as is.
 *   message-end: a string is a queue id for "250 Ok: queued as <id>"; an SmtpError rejects.
 *   message-abort: the session rejected the message itself (size, bare CR/LF, long lines, RSET
 *     during BDAT); the driver lets the application drop it, then resolves; the value is ignored.
 *
 * Hostile input: DATA ends only at CRLF.CRLF (data-receiver.ts), bare CR/LF and long lines
 * reject the message after its real end; BDAT octets are always consumed, even for a rejected
 * BDAT; input after STARTTLS is discarded; input before the greeting gets 554 and a close; a
 * command line that arrived before the reply to the previous one, where PIPELINING does not
 * allow that, gets 503 5.5.0 and is not executed; after `maxErrors` errors, 421 and a close.
 */

import type { Path } from "./address.ts";
import { isPlainTextMechanism, isSaslMechanism, type SaslCredentials, SaslServer } from "./auth-server.ts";
import { BdatReceiver } from "./bdat-receiver.ts";
import { emptyCapabilities, formatEhloLines } from "./capabilities.ts";
import type { Command } from "./command.ts";
import { MAX_ANY_COMMAND_LINE, parseCommand, parseSaslResponse } from "./command-parser.ts";
import { DataReceiver } from "./data-receiver.ts";
import type { Envelope } from "./envelope.ts";
import { SmtpError } from "./errors.ts";
import type { EsmtpParam, MailParams, RcptParams } from "./esmtp-params.ts";
import { parseMailParams, parseRcptParams } from "./esmtp-params-parser.ts";
import { MAX_SASL_LINE } from "./limits.ts";
import { formatReply } from "./reply-format.ts";
import { ClosingReplies, greetingReply, Replies, ServerReply } from "./server-replies.ts";

/** RFC 1870 SIZE default: 25 MiB, what most providers accept. */
export const DEFAULT_MAX_SIZE = 25 * 1024 * 1024;
/** RFC 5321 §4.5.3.1.8 asks for at least 100; 1000 is Postfix's default. */
export const DEFAULT_MAX_RECIPIENTS = 1000;
/** Errors before the session gives up with 421 (RFC 5321 §4.3.2 allows closing on abuse). */
export const DEFAULT_MAX_ERRORS = 10;

export interface ServerSessionOptions {
  /** Our name in the greeting, EHLO reply and 421s. */
  hostname: string;
  /** Text after the hostname in the 220 greeting. */
  greeting?: string;
  /** Largest message in octets, advertised with SIZE and enforced while receiving; 0: no limit. */
  maxSize?: number;
  maxRecipients?: number;
  maxErrors?: number;
  /** STARTTLS can be offered (the driver has a certificate). */
  startTls?: boolean;
  /** The connection is already encrypted (implicit TLS, RFC 8314). */
  secure?: boolean;
  /** The peer connects over loopback: plain-text AUTH without TLS is harmless there. */
  loopback?: boolean;
  /** Offer PLAIN and LOGIN without TLS off loopback too. */
  allowInsecureAuth?: boolean;
  /** MAIL only after a successful AUTH. */
  requireAuth?: boolean;
  /** Everything but EHLO/HELO, STARTTLS, NOOP, RSET, QUIT and HELP only after STARTTLS. */
  requireTls?: boolean;
  /** SASL mechanisms to offer; default PLAIN, LOGIN, and CRAM-MD5 when `cramChallenge` is given. Empty: no AUTH. */
  authMechanisms?: readonly string[];
  /** Makes a fresh CRAM-MD5 challenge (needs randomness and the time, see cramMd5Challenge). */
  cramChallenge?: () => string;
  /** ESMTP extensions to offer; each defaults to on except BINARYMIME. */
  pipelining?: boolean;
  eightBitMime?: boolean;
  smtpUtf8?: boolean;
  chunking?: boolean;
  binaryMime?: boolean;
  dsn?: boolean;
  enhancedStatusCodes?: boolean;
}

export type HookRequest =
  | { kind: "connect" }
  | { kind: "helo"; domain: string; extended: boolean }
  | { kind: "auth"; credentials: SaslCredentials }
  | { kind: "mail"; from: Path; params: MailParams }
  | { kind: "rcpt"; to: Path; params: RcptParams }
  | { kind: "data-start"; envelope: Envelope }
  | { kind: "message-end"; envelope: Envelope; size: number }
  | { kind: "message-abort"; envelope: Envelope; error: SmtpError };

export type HookKind = HookRequest["kind"];

export type ServerAction =
  | { type: "write"; bytes: Uint8Array }
  | { type: "hook"; request: HookRequest }
  | { type: "message-start"; envelope: Envelope }
  | { type: "message-chunk"; bytes: Uint8Array }
  | { type: "reset" }
  | { type: "starttls" }
  | { type: "close" };

/** What resolve() takes: nothing (accept), a queue id (message-end), or a rejection. */
export type HookResult = undefined | string | SmtpError;

const LF = 0x0a;
const CR = 0x0d;
const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** What the session does with input right now. */
enum Mode {
  /** Before the greeting: input is a protocol violation. */
  Connecting,
  Command,
  /** Reading an AUTH exchange's response lines. */
  Sasl,
  /** Reading a DATA message up to CRLF.CRLF. */
  Data,
  /** Reading a BDAT chunk's octets. */
  Bdat,
  /** After STARTTLS's 220: input is discarded until tlsStarted(). */
  TlsWait,
  Closed,
}

interface Transaction {
  envelope: Envelope;
  /** BDAT chunks have been taken for this transaction (DATA may not follow). */
  bdat: boolean;
  /** message-start was emitted: a message-abort is owed if it does not end normally. */
  messageStarted: boolean;
  /** Message octets so far (BDAT chunks add up). */
  size: number;
}

/** A BDAT chunk being read: where its octets go and what to reply when they are in. */
interface BdatChunk {
  receiver: BdatReceiver;
  last: boolean;
  /** The reply for a rejected BDAT, written once its octets have been consumed. */
  rejection: SmtpError | ServerReply | undefined;
  /** Octets are passed on as message-chunk actions. */
  stream: boolean;
}

type Continuation = (result: HookResult) => void;

export class ServerSession {
  readonly hostname: string;
  /** The EHLO/HELO name the client gave, once accepted. */
  heloName: string | undefined;
  /** The user of a successful AUTH. */
  authUser: string | undefined;
  /** The connection is encrypted (implicit TLS or after STARTTLS). */
  secure: boolean;

  private readonly options: ServerSessionOptions;
  private readonly config: SessionConfig;
  private readonly maxSize: number;
  private readonly enhanced: boolean;
  private readonly loopback: boolean;

  private mode = Mode.Connecting;
  private extended = false;
  private transaction: Transaction | undefined;
  private errors = 0;
  private shuttingDown = false;

  /** Unprocessed input: `input[inputStart..]`. */
  private input: Uint8Array = EMPTY;
  private inputStart = 0;
  /** Octets received over the whole connection; offsets below are in this count. */
  private received = 0;
  /** `received` when the last reply was written: input before it was sent without waiting. */
  private repliedAt = 0;
  /** `received` when an EHLO reply offering PIPELINING was written; Infinity when not offered. */
  private pipeliningAt = Number.POSITIVE_INFINITY;
  /**
   * `received` when a refused DATA was answered: lines that arrived before it were sent behind a
   * command that must end a pipelined group (RFC 2920 §3.1), so they are message content, not commands.
   */
  private groupEndAt = 0;
  /** Input arrived before the greeting. */
  private pregreet = false;
  /** Inside an overlong line: drop input up to the next LF, then reply 500. */
  private discardingLine = false;

  private data: DataReceiver | undefined;
  private dataAborted = false;
  private bdat: BdatChunk | undefined;
  private sasl: SaslServer | undefined;

  private pending: Continuation | undefined;
  private readonly actions: ServerAction[] = [];
  private actionHead = 0;
  private output: Uint8Array[] = [];
  /**
   * @param options the server's settings; pass the same object for every connection, so what can
   *   be prepared once (greeting, EHLO replies) is.
   * @param connection facts about this connection, overriding `options.secure` and `options.loopback`.
   */
  constructor(options: ServerSessionOptions, connection: { secure?: boolean; loopback?: boolean } = {}) {
    this.options = options;
    this.config = SessionConfig.of(options);
    this.hostname = options.hostname;
    this.maxSize = this.config.maxSize;
    this.enhanced = this.config.enhanced;
    this.secure = connection.secure ?? options.secure ?? false;
    this.loopback = connection.loopback ?? options.loopback ?? false;
    this.hook({ kind: "connect" }, (result) => this.afterConnect(result));
  }

  /** The current transaction's envelope, if MAIL was accepted. */
  get envelope(): Envelope | undefined {
    return this.transaction?.envelope;
  }

  /** True while a hook waits for resolve(). */
  get waiting(): boolean {
    return this.pending !== undefined;
  }

  get closed(): boolean {
    return this.mode === Mode.Closed;
  }

  /** True between the first message-start and the end of that message. */
  get receivingMessage(): boolean {
    return this.transaction?.messageStarted === true;
  }

  /** Bytes from the peer; act on them through nextAction(). */
  receive(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.received += bytes.length;
    switch (this.mode) {
      case Mode.Closed:
      case Mode.TlsWait:
        return;
      case Mode.Connecting:
        // Anything before the greeting is a client that does not wait (RFC 5321 §4.3.1).
        this.pregreet = true;
        return;
    }
    if (this.inputStart >= this.input.length) {
      this.input = bytes;
      this.inputStart = 0;
    } else {
      const rest = this.input.length - this.inputStart;
      const joined = new Uint8Array(rest + bytes.length);
      joined.set(this.input.subarray(this.inputStart), 0);
      joined.set(bytes, rest);
      this.input = joined;
      this.inputStart = 0;
    }
  }

  /** The next thing for the driver to do, or null when the session waits for input or a resolve(). */
  nextAction(): ServerAction | null {
    if (this.actionHead >= this.actions.length) {
      this.actions.length = 0;
      this.actionHead = 0;
      if (this.pending === undefined) this.advance();
      this.flush();
    }
    if (this.actionHead >= this.actions.length) return null;
    return this.actions[this.actionHead++] ?? null;
  }

  /** Answers the hook the session is waiting for. */
  resolve(result?: HookResult): void {
    const continuation = this.pending;
    if (continuation === undefined) throw new Error("resolve() without a pending hook");
    this.pending = undefined;
    // After a close (timeout, 421) the answer has nowhere to go.
    if (this.mode !== Mode.Closed) continuation(result);
  }

  /** The TLS handshake after STARTTLS succeeded: the session starts over (RFC 3207 §4.2). */
  tlsStarted(): void {
    if (this.mode !== Mode.TlsWait) throw new Error("tlsStarted() without STARTTLS");
    this.secure = true;
    this.heloName = undefined;
    this.extended = false;
    this.authUser = undefined;
    this.pipeliningAt = Number.POSITIVE_INFINITY;
    this.input = EMPTY;
    this.inputStart = 0;
    // Whatever came in before the handshake was discarded, so nothing is "early" any more.
    this.repliedAt = this.received;
    this.mode = Mode.Command;
  }

  /**
   * The driver wants to stop (server shutdown): between transactions the session says 421 and
   * closes now; a transaction in flight may finish, and the 421 comes after its reply.
   */
  shutdown(): void {
    this.shuttingDown = true;
    if (this.pending === undefined && this.mode === Mode.Command && this.transaction === undefined) {
      this.closeWith(ClosingReplies.shuttingDown(this.hostname));
    }
  }

  /** The shutdown's grace period is over: 421 and close, whatever the session is doing. */
  terminate(): void {
    this.closeWith(ClosingReplies.shuttingDown(this.hostname));
  }

  /** The peer was idle too long (RFC 5321 §4.5.3.2): 421 and close. */
  timeout(): void {
    if (this.mode === Mode.Closed) return;
    this.closeWith(ClosingReplies.timeout(this.hostname));
  }

  // ---- processing ------------------------------------------------------------------------------

  /** Consumes input until it runs out, a hook is pending, or the session closes. */
  private advance(): void {
    while (this.pending === undefined) {
      switch (this.mode) {
        case Mode.Command:
          if (!this.commandStep()) return;
          break;
        case Mode.Sasl:
          if (!this.saslStep()) return;
          break;
        case Mode.Data:
          if (!this.dataStep()) return;
          break;
        case Mode.Bdat:
          if (!this.bdatStep()) return;
          break;
        default:
          return;
      }
    }
  }

  /**
   * Takes one line (without CRLF) from the input, or undefined when none is complete. Overlong
   * lines are dropped up to their LF and reported as "too-long", bare-LF lines as "bare-lf".
   */
  private takeLine(limit: number): Uint8Array | "too-long" | "bare-lf" | undefined {
    const input = this.input;
    const start = this.inputStart;
    const lf = input.indexOf(LF, start);
    if (lf === -1) {
      if (this.discardingLine || input.length - start > limit) {
        this.discardingLine = true;
        this.input = EMPTY;
        this.inputStart = 0;
      }
      return undefined;
    }
    this.inputStart = lf + 1;
    if (this.discardingLine || lf + 1 - start > limit) {
      this.discardingLine = false;
      return "too-long";
    }
    if (lf === start || input[lf - 1] !== CR) return "bare-lf";
    return input.subarray(start, lf - 1);
  }

  /** Absolute offset of the unprocessed input's first octet. */
  private get inputOffset(): number {
    return this.received - (this.input.length - this.inputStart);
  }

  private commandStep(): boolean {
    const lineOffset = this.inputOffset;
    const line = this.takeLine(MAX_ANY_COMMAND_LINE);
    if (line === undefined) return false;
    // RFC 2920: a line sent before our previous reply is pipelining; fine only after an EHLO
    // that offered PIPELINING was answered, and never behind a command that ends a group.
    if (lineOffset < this.repliedAt && (lineOffset < this.pipeliningAt || lineOffset < this.groupEndAt)) {
      // A refused BDAT's octets are still on their way: read them as data, never as commands.
      const bdat = typeof line === "string" ? undefined : bdatSize(line);
      if (bdat !== undefined) this.skipBdat(bdat.size, bdat.last, Replies.improperPipelining);
      else this.fail(Replies.improperPipelining);
      return true;
    }
    if (line === "too-long") {
      this.fail(Replies.lineTooLong);
      return true;
    }
    if (line === "bare-lf") {
      this.fail(Replies.bareLineFeedInCommand);
      return true;
    }
    if (this.shuttingDown && this.transaction === undefined) {
      this.closeWith(ClosingReplies.shuttingDown(this.hostname));
      return true;
    }
    let text: string;
    try {
      text = utf8.decode(line);
    } catch {
      this.fail(Replies.invalidUtf8);
      return true;
    }
    let command: Command;
    try {
      command = parseCommand(text, { utf8: this.transaction?.envelope.mailParams.smtpUtf8 === true });
    } catch (error) {
      if (!(error instanceof SmtpError)) throw error;
      // A BDAT we cannot parse has no size we could skip; nothing better than reading on as commands.
      this.fail(error);
      return true;
    }
    this.execute(command);
    return true;
  }

  private execute(command: Command): void {
    if (this.options.requireTls && !this.secure && !ALLOWED_BEFORE_TLS.has(command.verb)) {
      if (command.verb === "BDAT") this.skipBdat(command.size, command.last, Replies.tlsRequired);
      else this.fail(Replies.tlsRequired);
      return;
    }
    switch (command.verb) {
      case "EHLO":
      case "HELO":
        this.helo(command.domain, command.verb === "EHLO");
        break;
      case "MAIL":
        this.mail(command.path, command.params);
        break;
      case "RCPT":
        this.rcpt(command.path, command.params);
        break;
      case "DATA":
        this.dataCommand();
        break;
      case "BDAT":
        this.bdatCommand(command.size, command.last);
        break;
      case "RSET":
        this.rset();
        break;
      case "NOOP":
        this.reply(Replies.ok);
        break;
      case "HELP":
        this.reply(Replies.help);
        break;
      case "VRFY":
        this.reply(Replies.cannotVerify);
        break;
      case "EXPN":
        this.reply(Replies.expnNotAvailable);
        break;
      case "QUIT":
        this.reply(Replies.bye);
        this.close();
        break;
      case "STARTTLS":
        this.startTls();
        break;
      case "AUTH":
        this.auth(command.mechanism, command.initialResponse);
        break;
    }
  }

  // ---- commands --------------------------------------------------------------------------------

  private afterConnect(result: HookResult): void {
    if (result instanceof SmtpError) {
      this.closeWith(result);
      return;
    }
    if (this.pregreet) {
      this.closeWith(ClosingReplies.commandsBeforeGreeting());
      return;
    }
    this.write(this.config.greeting);
    this.repliedAt = this.received;
    this.mode = Mode.Command;
  }

  private helo(domain: string, extended: boolean): void {
    this.hook({ kind: "helo", domain, extended }, (result) => {
      if (result instanceof SmtpError) {
        this.reply(result);
        return;
      }
      // RFC 5321 §4.1.4: EHLO/HELO in a session resets the transaction, as RSET does.
      this.discardTransaction(() => this.greeted(domain, extended));
    });
  }

  private greeted(domain: string, extended: boolean): void {
    this.heloName = domain;
    this.extended = extended;
    if (extended) {
      this.write(this.ehloReply());
      this.repliedAt = this.received;
      this.pipeliningAt = this.options.pipelining === false ? Number.POSITIVE_INFINITY : this.received;
    } else {
      this.write(this.config.heloReply);
      this.repliedAt = this.received;
      this.pipeliningAt = Number.POSITIVE_INFINITY;
    }
  }

  private ehloReply(): Uint8Array {
    return this.config.ehloReply(this.secure, this.offeredMechanisms());
  }

  /** RFC 4954 §4: password mechanisms only over TLS, unless the peer is local or the operator insists. */
  private offeredMechanisms(): readonly string[] {
    return this.config.offeredMechanisms(this.secure, this.loopback);
  }

  private mail(from: Path, params: EsmtpParam[]): void {
    if (this.heloName === undefined) {
      this.fail(Replies.needHelo);
      return;
    }
    if (this.transaction !== undefined) {
      this.fail(Replies.nestedMail);
      return;
    }
    if (this.options.requireAuth && this.authUser === undefined) {
      this.fail(Replies.authRequired);
      return;
    }
    let mailParams: MailParams;
    try {
      if (!this.extended && params[0] !== undefined) throw unsupportedParam(params[0].name, true);
      mailParams = parseMailParams(params);
      this.checkMailParams(mailParams);
    } catch (error) {
      if (!(error instanceof SmtpError)) throw error;
      this.fail(error);
      return;
    }
    if (this.maxSize > 0 && mailParams.size !== undefined && mailParams.size > this.maxSize) {
      this.reply(Replies.messageTooBig);
      return;
    }
    this.hook({ kind: "mail", from, params: mailParams }, (result) => {
      if (result instanceof SmtpError) {
        this.reply(result);
        return;
      }
      this.transaction = {
        envelope: { from, mailParams, recipients: [] },
        bdat: false,
        messageStarted: false,
        size: 0,
      };
      this.reply(Replies.senderOk);
    });
  }

  /** Parameters are only valid for extensions we offered in EHLO (RFC 5321 §4.1.1.11). */
  private checkMailParams(p: MailParams): void {
    const o = this.options;
    const unsupported = (name: string) => unsupportedParam(name, false);
    if (p.body === "8BITMIME" && o.eightBitMime === false) throw unsupported("BODY=8BITMIME");
    if (p.body === "BINARYMIME" && !(o.binaryMime === true && o.chunking !== false))
      throw unsupported("BODY=BINARYMIME");
    if (p.smtpUtf8 && o.smtpUtf8 === false) throw unsupported("SMTPUTF8");
    if ((p.ret !== undefined || p.envid !== undefined) && o.dsn === false)
      throw unsupported(p.ret !== undefined ? "RET" : "ENVID");
    const other = p.other[0];
    if (other !== undefined) throw unsupported(other.name);
  }

  private rcpt(to: Path, params: EsmtpParam[]): void {
    const tx = this.transaction;
    if (tx === undefined) {
      this.fail(this.heloName === undefined ? Replies.needHelo : Replies.needMail);
      return;
    }
    if (tx.bdat) {
      this.fail(Replies.rcptAfterBdat);
      return;
    }
    let rcptParams: RcptParams;
    try {
      if (!this.extended && params[0] !== undefined) throw unsupportedParam(params[0].name, true);
      rcptParams = parseRcptParams(params);
      if (rcptParams.other[0] !== undefined) throw unsupportedParam(rcptParams.other[0].name, false);
      if ((rcptParams.notify !== undefined || rcptParams.orcpt !== undefined) && this.options.dsn === false)
        throw unsupportedParam(rcptParams.notify !== undefined ? "NOTIFY" : "ORCPT", false);
    } catch (error) {
      if (!(error instanceof SmtpError)) throw error;
      this.fail(error);
      return;
    }
    if (tx.envelope.recipients.length >= this.config.maxRecipients) {
      this.reply(Replies.tooManyRecipients);
      return;
    }
    this.hook({ kind: "rcpt", to, params: rcptParams }, (result) => {
      if (result instanceof SmtpError) {
        this.reply(result);
        return;
      }
      tx.envelope.recipients.push({ path: to, params: rcptParams });
      this.reply(Replies.recipientOk);
    });
  }

  /** Checks shared by DATA and BDAT before a message may start. */
  private messageRefusal(): ServerReply | undefined {
    const tx = this.transaction;
    if (tx === undefined) return this.heloName === undefined ? Replies.needHelo : Replies.needMail;
    if (tx.envelope.recipients.length === 0) return Replies.noValidRecipients;
    return undefined;
  }

  private dataCommand(): void {
    const tx = this.transaction;
    const refusal =
      this.messageRefusal() ??
      (tx?.bdat ? Replies.dataAfterBdat : undefined) ??
      (tx?.envelope.mailParams.body === "BINARYMIME" ? Replies.binaryMimeNeedsBdat : undefined);
    if (refusal !== undefined || tx === undefined) {
      this.fail(refusal ?? Replies.needMail);
      this.refusedGroupEnd();
      return;
    }
    this.hook({ kind: "data-start", envelope: tx.envelope }, (result) => {
      if (result instanceof SmtpError) {
        this.reply(result);
        this.refusedGroupEnd();
        return;
      }
      this.reply(Replies.startMailInput);
      this.data = new DataReceiver({ maxSize: this.maxSize });
      this.dataAborted = false;
      tx.messageStarted = true;
      this.push({ type: "message-start", envelope: tx.envelope });
      this.mode = Mode.Data;
    });
  }

  /** RFC 2920 §3.1: whatever was sent behind a refused DATA was meant as its content. */
  private refusedGroupEnd(): void {
    this.groupEndAt = this.received;
  }

  private dataStep(): boolean {
    const receiver = this.data;
    const tx = this.transaction;
    if (receiver === undefined || tx === undefined) throw new Error("DATA mode without a message");
    if (this.inputStart >= this.input.length) return false;
    const progress = receiver.receive(
      this.inputStart === 0 ? this.input : this.input.subarray(this.inputStart),
    );
    if (!this.dataAborted) {
      for (const bytes of progress.body) this.push({ type: "message-chunk", bytes });
    }
    if (!progress.done) {
      this.input = EMPTY;
      this.inputStart = 0;
      // Stop streaming a message that is already lost, so the application can let go early.
      if (!this.dataAborted && receiver.violation !== undefined) {
        this.dataAborted = true;
        this.hook(
          { kind: "message-abort", envelope: tx.envelope, error: violationReply(receiver).error() },
          () => {},
        );
      }
      return false;
    }
    this.input = progress.rest ?? EMPTY;
    this.inputStart = 0;
    this.data = undefined;
    this.mode = Mode.Command;
    const violation = receiver.violation === undefined ? undefined : violationReply(receiver);
    if (violation !== undefined) {
      if (this.dataAborted) this.endTransaction(violation);
      else this.abortMessage(violation.error(), () => this.endTransaction(violation));
      return true;
    }
    this.finishMessage(receiver.size);
    return true;
  }

  /** message-end hook, then its reply; the transaction is over either way (RFC 5321 §4.1.1.4). */
  private finishMessage(size: number): void {
    const tx = this.transaction as Transaction;
    this.hook({ kind: "message-end", envelope: tx.envelope, size }, (result) => {
      this.transaction = undefined;
      if (result instanceof SmtpError) this.reply(result);
      // A ServerReply, not an SmtpError: an Error captures a stack trace, for every message.
      else if (typeof result === "string" && result !== "")
        this.reply(new ServerReply(250, "2.0.0", asciiText(`Ok: queued as ${result}`)));
      else this.reply(Replies.queued);
      this.afterTransaction();
    });
  }

  private abortMessage(error: SmtpError, then: () => void): void {
    const tx = this.transaction as Transaction;
    this.hook({ kind: "message-abort", envelope: tx.envelope, error }, () => then());
  }

  private endTransaction(reply: ServerReply | SmtpError): void {
    this.transaction = undefined;
    this.reply(reply);
    this.afterTransaction();
  }

  private afterTransaction(): void {
    if (this.shuttingDown && this.mode !== Mode.Closed)
      this.closeWith(ClosingReplies.shuttingDown(this.hostname));
  }

  private bdatCommand(size: number, last: boolean): void {
    if (!this.extended || this.options.chunking === false) {
      this.skipBdat(size, last, this.extended ? Replies.chunkingNotAvailable : Replies.needEhlo);
      return;
    }
    const refusal = this.messageRefusal();
    if (refusal !== undefined) {
      this.skipBdat(size, last, refusal);
      return;
    }
    const tx = this.transaction as Transaction;
    if (tx.bdat) {
      this.readBdat(size, last, undefined, true);
      return;
    }
    this.hook({ kind: "data-start", envelope: tx.envelope }, (result) => {
      if (result instanceof SmtpError) {
        // The transaction survives a refused first chunk only as far as the application says.
        this.readBdat(size, last, result, false);
        return;
      }
      tx.bdat = true;
      tx.messageStarted = true;
      this.push({ type: "message-start", envelope: tx.envelope });
      this.readBdat(size, last, undefined, true);
    });
  }

  /** Reads and drops a refused BDAT's octets, then replies (RFC 3030 §4.2). */
  private skipBdat(size: number, last: boolean, rejection: ServerReply | SmtpError): void {
    this.readBdat(size, last, rejection, false);
  }

  private readBdat(
    size: number,
    last: boolean,
    rejection: ServerReply | SmtpError | undefined,
    stream: boolean,
  ): void {
    this.bdat = { receiver: new BdatReceiver(size), last, rejection, stream };
    this.mode = Mode.Bdat;
  }

  private bdatStep(): boolean {
    const chunk = this.bdat;
    if (chunk === undefined) throw new Error("BDAT mode without a chunk");
    if (!chunk.receiver.done) {
      if (this.inputStart >= this.input.length) return false;
      const progress = chunk.receiver.receive(
        this.inputStart === 0 ? this.input : this.input.subarray(this.inputStart),
      );
      const tx = this.transaction;
      if (progress.body !== undefined && chunk.stream && tx !== undefined) {
        tx.size += progress.body.length;
        if (this.maxSize > 0 && tx.size > this.maxSize) {
          chunk.stream = false;
          chunk.rejection = Replies.messageTooBig;
        } else this.push({ type: "message-chunk", bytes: progress.body });
      }
      this.input = progress.rest ?? EMPTY;
      this.inputStart = 0;
      if (!progress.done) return false;
    }
    this.bdat = undefined;
    this.mode = Mode.Command;
    const tx = this.transaction;
    const rejection = chunk.rejection;
    if (rejection !== undefined) {
      if (tx?.messageStarted) {
        // A failed chunk ends the transaction (RFC 3030 §4.2); the application drops the message.
        this.abortMessage(rejection instanceof SmtpError ? rejection : rejection.error(), () =>
          this.endTransaction(rejection),
        );
      } else if (rejection instanceof SmtpError) this.reply(rejection);
      else this.fail(rejection);
      return true;
    }
    if (tx === undefined) throw new Error("BDAT chunk without a transaction");
    if (chunk.last) this.finishMessage(tx.size);
    else this.reply(new ServerReply(250, "2.0.0", `${chunk.receiver.size} octets received`));
    return true;
  }

  private rset(): void {
    if (this.transaction === undefined) {
      this.push({ type: "reset" });
      this.reply(Replies.ok);
      return;
    }
    this.discardTransaction(() => this.reply(Replies.ok));
  }

  /** Forgets the transaction (telling the driver), aborting a BDAT message in flight first. */
  private discardTransaction(then: () => void): void {
    const tx = this.transaction;
    if (tx === undefined) {
      then();
      return;
    }
    const drop = () => {
      this.transaction = undefined;
      this.push({ type: "reset" });
      then();
    };
    if (tx.messageStarted) this.abortMessage(new SmtpError(451, "4.3.0", "transaction reset"), drop);
    else drop();
  }

  private startTls(): void {
    if (this.options.startTls !== true) {
      this.fail(Replies.tlsNotAvailable);
      return;
    }
    if (this.secure) {
      this.fail(Replies.tlsAlreadyActive);
      return;
    }
    if (!this.extended) {
      this.fail(Replies.needEhlo);
      return;
    }
    if (this.transaction !== undefined) {
      this.fail(Replies.tlsInTransaction);
      return;
    }
    this.reply(Replies.readyToStartTls);
    // RFC 3207 §4.2 and CVE-2011-0411: nothing sent in the clear before the handshake counts.
    this.input = EMPTY;
    this.inputStart = 0;
    this.mode = Mode.TlsWait;
    this.push({ type: "starttls" });
  }

  private auth(mechanism: string, initialResponse: string | undefined): void {
    if (!this.extended) {
      this.fail(Replies.needEhlo);
      return;
    }
    if (this.authUser !== undefined) {
      this.fail(Replies.authAlreadyDone);
      return;
    }
    if (this.transaction !== undefined) {
      this.fail(Replies.authInTransaction);
      return;
    }
    if (this.config.authMechanisms.length === 0) {
      this.fail(Replies.authNotAvailable);
      return;
    }
    if (!this.config.authMechanisms.includes(mechanism) || !isSaslMechanism(mechanism)) {
      this.fail(Replies.authMechanismUnknown);
      return;
    }
    if (!this.offeredMechanisms().includes(mechanism)) {
      this.fail(Replies.encryptionRequiredForAuth);
      return;
    }
    this.sasl = new SaslServer(mechanism, this.options.cramChallenge);
    try {
      this.saslNext(this.sasl.start(initialResponse === "=" ? "" : initialResponse));
    } catch (error) {
      this.saslFailed(error);
    }
  }

  private saslStep(): boolean {
    const line = this.takeLine(MAX_SASL_LINE);
    if (line === undefined) return false;
    const sasl = this.sasl;
    if (sasl === undefined) throw new Error("SASL mode without an exchange");
    if (line === "too-long" || line === "bare-lf") {
      this.saslFailed(new SmtpError(500, "5.5.6", "Authentication exchange line is too long or malformed"));
      return true;
    }
    try {
      const response = parseSaslResponse(decodeAscii(line));
      if (response.cancel) {
        this.sasl = undefined;
        this.mode = Mode.Command;
        this.fail(Replies.authCancelled);
        return true;
      }
      this.saslNext(sasl.respond(response.data));
    } catch (error) {
      this.saslFailed(error);
    }
    return true;
  }

  private saslNext(step: ReturnType<SaslServer["respond"]>): void {
    if (step.type === "challenge") {
      // "334 " even when the challenge is empty: RFC 4954 §4 has a space before the base64 text.
      this.write(encoder.encode(`334 ${step.text}\r\n`));
      this.repliedAt = this.received;
      this.mode = Mode.Sasl;
      return;
    }
    this.sasl = undefined;
    this.mode = Mode.Command;
    const { credentials } = step;
    this.hook({ kind: "auth", credentials }, (result) => {
      if (result instanceof SmtpError) {
        this.fail(result);
        return;
      }
      this.authUser = credentials.username;
      this.reply(Replies.authSucceeded);
    });
  }

  private saslFailed(error: unknown): void {
    if (!(error instanceof SmtpError)) throw error;
    this.sasl = undefined;
    this.mode = Mode.Command;
    this.fail(error);
  }

  // ---- output ----------------------------------------------------------------------------------

  private hook(request: HookRequest, continuation: Continuation): void {
    this.pending = continuation;
    this.push({ type: "hook", request });
  }

  private push(action: ServerAction): void {
    this.flush();
    this.actions.push(action);
  }

  /** Turns the replies written so far into one write action. */
  private flush(): void {
    const out = this.output;
    if (out.length === 0) return;
    let bytes: Uint8Array;
    if (out.length === 1) bytes = out[0] as Uint8Array;
    else {
      let total = 0;
      for (const piece of out) total += piece.length;
      bytes = new Uint8Array(total);
      let at = 0;
      for (const piece of out) {
        bytes.set(piece, at);
        at += piece.length;
      }
    }
    this.output = [];
    this.actions.push({ type: "write", bytes });
  }

  private write(bytes: Uint8Array): void {
    this.output.push(bytes);
  }

  /** Writes a reply to the current command; a 421 from anywhere closes the session. */
  private reply(reply: ServerReply | SmtpError): void {
    if (this.mode === Mode.Closed) return;
    if (reply instanceof SmtpError) {
      this.write(encoder.encode(this.formatError(reply)));
      this.repliedAt = this.received;
      if (reply.code === 421) this.close();
      return;
    }
    this.write(reply.bytes(this.enhanced));
    this.repliedAt = this.received;
  }

  /** A reply that counts as a client error; too many of them end the session (RFC 5321 §4.3.2). */
  private fail(reply: ServerReply | SmtpError): void {
    this.reply(reply);
    this.errors++;
    if (this.errors >= this.config.maxErrors && this.mode !== Mode.Closed) {
      this.closeWith(ClosingReplies.tooManyErrors(this.hostname));
    }
  }

  /** Hook errors go to the wire as given; a missing enhanced code gets its class's X.0.0. */
  private formatError(error: SmtpError): string {
    const text = asciiText(error.message);
    if (!this.enhanced) return formatReply(error.code, undefined, text);
    const cls = Math.floor(error.code / 100);
    const enhanced = error.enhanced ?? (cls === 3 ? undefined : `${cls}.0.0`);
    return formatReply(error.code, enhanced, text);
  }

  private closeWith(error: SmtpError): void {
    if (this.mode === Mode.Closed) return;
    this.write(encoder.encode(this.formatError(error)));
    this.close();
  }

  private close(): void {
    this.mode = Mode.Closed;
    this.input = EMPTY;
    this.inputStart = 0;
    this.push({ type: "close" });
  }
}

/** What follows from a ServerSessionOptions object, worked out once and shared by its sessions. */
class SessionConfig {
  private static readonly cache = new WeakMap<ServerSessionOptions, SessionConfig>();

  static of(options: ServerSessionOptions): SessionConfig {
    let config = SessionConfig.cache.get(options);
    if (config === undefined) {
      config = new SessionConfig(options);
      SessionConfig.cache.set(options, config);
    }
    return config;
  }

  readonly maxSize: number;
  readonly maxRecipients: number;
  readonly maxErrors: number;
  readonly enhanced: boolean;
  readonly authMechanisms: readonly string[];
  readonly greeting: Uint8Array;
  readonly heloReply: Uint8Array;
  /** EHLO replies by (secure, mechanisms offered). */
  private readonly ehloReplies = new Map<string, Uint8Array>();
  private readonly mechanismsBy = new Map<number, readonly string[]>();

  private constructor(private readonly options: ServerSessionOptions) {
    this.maxSize = options.maxSize ?? DEFAULT_MAX_SIZE;
    this.maxRecipients = options.maxRecipients ?? DEFAULT_MAX_RECIPIENTS;
    this.maxErrors = options.maxErrors ?? DEFAULT_MAX_ERRORS;
    this.enhanced = options.enhancedStatusCodes ?? true;
    const defaultMechanisms =
      options.cramChallenge === undefined ? ["PLAIN", "LOGIN"] : ["PLAIN", "LOGIN", "CRAM-MD5"];
    this.authMechanisms = (options.authMechanisms ?? defaultMechanisms)
      .map((m) => m.toUpperCase())
      .filter((m) => isSaslMechanism(m) && (m !== "CRAM-MD5" || options.cramChallenge !== undefined));
    this.greeting = greetingReply(options.hostname, options.greeting ?? "ESMTP smtpkit");
    this.heloReply = encoder.encode(formatReply(250, undefined, options.hostname));
  }

  /** RFC 4954 §4: password mechanisms only over TLS, unless the peer is local or the operator insists. */
  offeredMechanisms(secure: boolean, loopback: boolean): readonly string[] {
    const key = (secure ? 1 : 0) | (loopback ? 2 : 0);
    let mechanisms = this.mechanismsBy.get(key);
    if (mechanisms === undefined) {
      const o = this.options;
      const plainTextOk = secure || loopback || o.allowInsecureAuth === true;
      mechanisms =
        o.requireTls === true && !secure
          ? []
          : this.authMechanisms.filter((m) => plainTextOk || !isPlainTextMechanism(m));
      this.mechanismsBy.set(key, mechanisms);
    }
    return mechanisms;
  }

  ehloReply(secure: boolean, mechanisms: readonly string[]): Uint8Array {
    const key = `${secure}${mechanisms.join(" ")}`;
    let reply = this.ehloReplies.get(key);
    if (reply === undefined) {
      const o = this.options;
      const caps = emptyCapabilities();
      caps.size = this.maxSize;
      caps.pipelining = o.pipelining !== false;
      caps.eightBitMime = o.eightBitMime !== false;
      caps.smtpUtf8 = o.smtpUtf8 !== false;
      caps.startTls = o.startTls === true && !secure;
      caps.auth = [...mechanisms];
      caps.chunking = o.chunking !== false;
      caps.binaryMime = caps.chunking && o.binaryMime === true;
      caps.dsn = o.dsn !== false;
      caps.enhancedStatusCodes = this.enhanced;
      reply = encoder.encode(formatReply(250, undefined, formatEhloLines(o.hostname, "", caps)));
      this.ehloReplies.set(key, reply);
    }
    return reply;
  }
}

function violationReply(receiver: DataReceiver): ServerReply {
  switch (receiver.violation) {
    case "oversize":
      return Replies.messageTooBig;
    case "long-line":
      return Replies.textLineTooLong;
    default:
      return Replies.bareLineEndInMessage;
  }
}

/** The chunk size of a BDAT line, if that is what the line is. */
function bdatSize(line: Uint8Array): { size: number; last: boolean } | undefined {
  // Cheap test first: most lines are not BDAT.
  if (line.length < 6 || ((line[0] ?? 0) | 0x20) !== 0x62) return undefined;
  try {
    const command = parseCommand(utf8.decode(line));
    return command.verb === "BDAT" ? { size: command.size, last: command.last } : undefined;
  } catch {
    return undefined;
  }
}

const NON_ASCII = /[^\x00-\x7f]/;

/**
 * Reply text is ASCII (RFC 5321 §4.2 textstring); a client that did not ask for SMTPUTF8 may choke
 * on anything else. Messages from parsers and hooks ("RFC 5321 §4.5.3.1", "Grüße") are made so.
 */
function asciiText(text: string): string {
  if (!NON_ASCII.test(text)) return text;
  return text.replace(/§/g, "section ").replace(/[^\x00-\x7f]/g, "?");
}

function unsupportedParam(name: string, needsEhlo: boolean): SmtpError {
  return new SmtpError(
    555,
    "5.5.4",
    `Unsupported parameter ${name}${needsEhlo ? " (send EHLO for ESMTP)" : ""}`,
  );
}

/** SASL lines are base64 or "*"; anything else fails parseSaslResponse's check, as it should. */
function decodeAscii(line: Uint8Array): string {
  try {
    return utf8.decode(line);
  } catch {
    throw new SmtpError(501, "5.5.2", "cannot decode the response as base64");
  }
}

/** RFC 3207 §4: what a server requiring TLS still accepts in the clear. */
const ALLOWED_BEFORE_TLS: ReadonlySet<string> = new Set([
  "EHLO",
  "HELO",
  "STARTTLS",
  "NOOP",
  "RSET",
  "QUIT",
  "HELP",
]);
