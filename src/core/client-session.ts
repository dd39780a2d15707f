/**
 * The SMTP client session, sans-IO (the h11 / h2 pattern): reply bytes go in through
 * receive(), which returns events; operations (ehlo(), startTls(), auth(), transaction(), ...)
 * queue command bytes that the caller takes with dataToSend() and writes. No sockets, timers or
 * clocks: the driver (src/client) owns those and asks `awaiting` which timeout applies.
 *
 *   const s = new ClientSession();
 *   socket.onData((b) => { for (const e of s.receive(b)) handle(e); write(s.dataToSend()); });
 *   // greeting event → s.ehlo("me.example") → write(s.dataToSend()) → hello event → ...
 *
 * States and transitions (one operation at a time; starting another while one runs throws):
 *
 *   greeting ──220──▶ needs-hello ──EHLO 250──────────────▶ ready
 *                                 ──EHLO 500/501/502/504 → HELO 250──▶ ready (no extensions)
 *   ready ──STARTTLS 220──▶ tls-pending ──tlsEstablished()──▶ needs-hello (EHLO again, RFC 3207 §4.2)
 *   ready ──AUTH, 334 ⇄ response, 235──▶ ready
 *   ready ──transaction──▶ [RSET] MAIL RCPT… DATA 354 ▶ body ▶ final reply ──▶ ready
 *                                           or BDAT chunks ▶ LAST reply ──────▶ ready
 *   ready ──QUIT──▶ closed;  any reply 421 ──▶ closed (the server is going away)
 *
 * Transactions: with PIPELINING (RFC 2920) the whole group [RSET] MAIL RCPT… DATA goes out in
 * one write and replies are matched in order. DATA ends a group (RFC 2920 §3.1), so the message
 * follows the 354. With CHUNKING (RFC 3030) a message that fits one chunk rides in the same
 * group as "BDAT n LAST": one round trip per message. If every RCPT failed yet DATA got 354,
 * the client sends a lone "." (RFC 2920 §3.1), never the message. RSET is sent only when a
 * transaction was left open on the server, and then at the head of the next group. Once a
 * DATA message is out, the next transaction may be started before the final reply arrives
 * (canStartTransaction): its group follows the message in the same write, and the replies of
 * both are matched in order, so a stream of messages costs one round trip each.
 *
 * STARTTLS: whatever arrives after the 220 and before tlsEstablished() is discarded, and the
 * reply parser is replaced, so plaintext injected by a man in the middle (CVE-2011-0411 class)
 * can never be read as a reply from inside TLS.
 */

import type { Path } from "./address.ts";
import { createSaslClient, type SaslClient, type SaslCredentials, SaslError } from "./auth-client.ts";
import { BdatChunker } from "./bdat-chunker.ts";
import { type Capabilities, emptyCapabilities, parseEhloReply } from "./capabilities.ts";
import { formatCommand } from "./command.ts";
import { DotStuffer } from "./dot-stuffer.ts";
import type { Envelope } from "./envelope.ts";
import { ProtocolError } from "./errors.ts";
import { formatMailParams, formatRcptParams } from "./esmtp-params.ts";
import { type Reply, ReplyParser } from "./reply.ts";

/** What the client is waiting for a reply to; also selects the RFC 5321 §4.5.3.2 timeout. */
export type ClientStage =
  | "greeting"
  | "ehlo"
  | "helo"
  | "starttls"
  | "auth"
  | "rset"
  | "mail"
  | "rcpt"
  | "data"
  | "bdat"
  | "message"
  | "quit"
  | "command";

/** The stages of a transaction at which it can fail, earliest first. */
export type TransactionStage = "rset" | "mail" | "rcpt" | "data" | "bdat" | "message";

export type ClientState =
  | "greeting"
  | "needs-hello"
  | "ready"
  | "busy"
  | "body"
  | "tls-pending"
  | "closed"
  | "failed";

/** One transcript line, already masked; the driver prefixes it in swaks' notation. */
export interface TranscriptLine {
  direction: "sent" | "received" | "info";
  text: string;
  /** The line travelled inside TLS. */
  tls: boolean;
}

export interface ClientSessionOptions {
  /** The connection is already encrypted (implicit TLS, RFC 8314). */
  tls?: boolean;
  /** Use PIPELINING when the server offers it (default true). */
  pipelining?: boolean;
  /** Receives every line sent and received, secrets masked. Costs nothing when absent. */
  transcript?: (line: TranscriptLine) => void;
  /** Put the message lines in the transcript too (default true); else one summary line. */
  transcriptBody?: boolean;
}

/** A message prepared for sending: see dotStuffMessage() and bdatFrameMessage(). */
export type TransactionBody =
  /** Dot-stuffed message with its terminator, written after the 354. */
  | { kind: "data"; bytes: Uint8Array }
  /** Complete BDAT frames, the last with LAST. */
  | { kind: "bdat"; frames: readonly Uint8Array[] }
  /** The caller streams the message through writeBody()/endBody() after a body-ready event. */
  | { kind: "data-stream" }
  | { kind: "bdat-stream"; chunkSize?: number; normalizeLineEnds?: boolean };

export interface RecipientResult {
  path: Path;
  /** Undefined when the RCPT was never sent (MAIL failed without pipelining). */
  reply?: Reply;
  accepted: boolean;
}

export interface TransactionResult {
  /** The message was taken for at least one recipient. */
  ok: boolean;
  reset?: Reply;
  mail?: Reply;
  recipients: RecipientResult[];
  /** The reply to DATA (354 when accepted). */
  data?: Reply;
  /** Replies to each BDAT command, in order. */
  bdat: Reply[];
  /** The reply after the final dot, or to BDAT LAST (or the BDAT that failed). */
  final?: Reply;
  /** The earliest stage that failed, and the reply that decided it. */
  failedStage?: TransactionStage;
  failedReply?: Reply;
}

export type ClientEvent =
  | { type: "greeting"; reply: Reply; ok: boolean }
  | {
      type: "hello";
      reply: Reply;
      ok: boolean;
      /** False when the server refused EHLO and HELO was used instead. */
      extended: boolean;
      /** The refused EHLO reply when HELO was used. */
      ehloReply?: Reply;
      capabilities: Capabilities;
    }
  | { type: "starttls"; reply: Reply; ok: boolean }
  | { type: "auth"; reply: Reply; ok: boolean; error?: string }
  | { type: "body-ready" }
  | { type: "transaction"; result: TransactionResult }
  | { type: "reset"; reply: Reply; ok: boolean }
  | { type: "quit"; reply: Reply }
  | { type: "reply"; command: string; reply: Reply }
  /** A 421 that answered nothing in particular: the server is closing the connection. */
  | { type: "closing"; reply: Reply };

/** RFC 5321 §4.1.4 / §4.2.4: replies to EHLO that mean "I do not speak ESMTP", so HELO is tried. */
const EHLO_NOT_SUPPORTED = [500, 501, 502, 504];
/** RFC 5321 §3.8: 421 may answer any command when the server shuts the channel. */
const SERVICE_CLOSING = 421;
const MASK = "********";

const encoder = new TextEncoder();
const DOT_TERMINATOR = ".\r\n";

type Operation =
  | { kind: "greeting" }
  | { kind: "hello"; domain: string; ehloReply?: Reply }
  | { kind: "starttls" }
  | { kind: "auth"; sasl: SaslClient; error?: string }
  | { kind: "transaction"; tx: Transaction }
  | { kind: "rset" }
  | { kind: "quit" }
  | { kind: "command"; verb: string };

interface Transaction {
  body: TransactionBody;
  mailLine: string;
  rcptLines: string[];
  /** Typed by a person after a raw DATA: the final reply is reported as a plain reply. */
  raw: boolean;
  result: TransactionResult;
  pipelined: boolean;
  /** Index of the next recipient whose reply is awaited. */
  rcptIndex: number;
  accepted: number;
  mailOk: boolean;
  /** BDAT frames still to send, for a non-pipelined or two-step BDAT transaction. */
  frames: readonly Uint8Array[];
  frameIndex: number;
  /** BDAT replies still to come. */
  bdatOutstanding: number;
  lastBdatSent: boolean;
  /** A BDAT failed: send no more (RFC 3030 §2); finish once the outstanding replies arrive. */
  bdatFailed: boolean;
  stuffer?: DotStuffer;
  chunker?: BdatChunker;
}

function isPositive(reply: Reply): boolean {
  return reply.code >= 200 && reply.code < 300;
}

export class ClientSession {
  private parserImpl = new ReplyParser();
  private readonly expected: ClientStage[] = ["greeting"];
  private op: Operation | undefined = { kind: "greeting" };
  /** A transaction written behind the current one's end of data (RFC 2920 §3.1), not yet replied to. */
  private queuedOp: (Operation & { kind: "transaction" }) | undefined;
  private out: (string | Uint8Array)[] = [];
  private stateImpl: ClientState = "greeting";
  private capabilitiesImpl: Capabilities = emptyCapabilities();
  private encrypted: boolean;
  private authenticatedImpl = false;
  /** A transaction was left open on the server; RSET before the next one. */
  private needsReset = false;
  private readonly usePipelining: boolean;
  private readonly transcript: ((line: TranscriptLine) => void) | undefined;
  private readonly transcriptBody: boolean;
  private transcriptCarry = "";
  /** Made with the first transcript line: a session without a transcript needs neither. */
  private transcriptDecoder: TextDecoder | undefined;
  private bodyDecoder: TextDecoder | undefined;

  constructor(options: ClientSessionOptions = {}) {
    this.encrypted = options.tls === true;
    this.usePipelining = options.pipelining !== false;
    this.transcript = options.transcript;
    this.transcriptBody = options.transcriptBody !== false;
  }

  get state(): ClientState {
    return this.stateImpl;
  }

  /** Extensions from the last EHLO (empty before it, after HELO, and after STARTTLS until EHLO). */
  get capabilities(): Capabilities {
    return this.capabilitiesImpl;
  }

  get tls(): boolean {
    return this.encrypted;
  }

  get authenticated(): boolean {
    return this.authenticatedImpl;
  }

  /** The stage whose reply is awaited next, or undefined (idle, or the caller is streaming a body). */
  get awaiting(): ClientStage | undefined {
    return this.expected[0];
  }

  /** True when PIPELINING is offered and allowed. */
  get pipelining(): boolean {
    return this.usePipelining && this.capabilitiesImpl.pipelining;
  }

  /** Bytes to write now, in order, or undefined when there are none. */
  dataToSend(): Uint8Array | undefined {
    const out = this.out;
    if (out.length === 0) return undefined;
    if (out.length === 1) {
      const only = out[0] as string | Uint8Array;
      out.length = 0;
      return typeof only === "string" ? encoder.encode(only) : only;
    }
    const parts: Uint8Array[] = [];
    let text = "";
    let total = 0;
    for (const piece of out) {
      if (typeof piece === "string") text += piece;
      else {
        if (text !== "") {
          const bytes = encoder.encode(text);
          parts.push(bytes);
          total += bytes.length;
          text = "";
        }
        parts.push(piece);
        total += piece.length;
      }
    }
    if (text !== "") {
      const bytes = encoder.encode(text);
      parts.push(bytes);
      total += bytes.length;
    }
    out.length = 0;
    const joined = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      joined.set(p, at);
      at += p.length;
    }
    return joined;
  }

  // ── operations ────────────────────────────────────────────────────────────

  /** EHLO, falling back to HELO when the server does not know EHLO. */
  ehlo(domain: string): void {
    const line = formatCommand({ verb: "EHLO", domain });
    this.start("needs-hello");
    this.op = { kind: "hello", domain };
    this.command(line, "ehlo");
  }

  /** HELO only (no extensions), for servers or tests that want RFC 821 behaviour. */
  helo(domain: string): void {
    const line = formatCommand({ verb: "HELO", domain });
    this.start("needs-hello");
    this.op = { kind: "hello", domain };
    this.command(line, "helo");
  }

  startTls(): void {
    this.start("ready");
    this.op = { kind: "starttls" };
    this.command(formatCommand({ verb: "STARTTLS" }), "starttls");
  }

  /** The TLS handshake after a 220 to STARTTLS succeeded: forget everything, EHLO comes next. */
  tlsEstablished(): void {
    if (this.stateImpl !== "tls-pending") throw new Error(`tlsEstablished() in state ${this.stateImpl}`);
    this.parserImpl = new ReplyParser();
    this.transcriptCarry = "";
    this.encrypted = true;
    this.capabilitiesImpl = emptyCapabilities();
    this.needsReset = false;
    this.stateImpl = "needs-hello";
  }

  /** AUTH with `mechanism`; the secret parts of the exchange are masked in the transcript. */
  auth(mechanism: string, credentials: SaslCredentials): void {
    this.requireState("ready");
    const sasl = createSaslClient(mechanism, credentials);
    this.start("ready");
    this.op = { kind: "auth", sasl };
    const initial = sasl.initialResponse;
    if (initial === undefined) {
      this.command(formatCommand({ verb: "AUTH", mechanism: sasl.mechanism }), "auth");
    } else {
      // RFC 4954 §4: an empty initial response is sent as "=".
      const text = initial.text === "" ? "=" : initial.text;
      const line = formatCommand({ verb: "AUTH", mechanism: sasl.mechanism, initialResponse: text });
      this.command(line, "auth", initial.secret ? `AUTH ${sasl.mechanism} ${MASK}` : undefined);
    }
  }

  /**
   * One mail transaction. `envelope.mailParams` and each recipient's params go out as given:
   * deciding SIZE, BODY, SMTPUTF8 and DSN parameters is the caller's job (src/client does it).
   */
  transaction(envelope: Envelope, body: TransactionBody): void {
    const overlap = this.stateImpl !== "ready" && this.canOverlap(body);
    if (!overlap) this.requireState("ready");
    if (body.kind === "bdat-stream" && !this.pipelining) {
      // Without PIPELINING each chunk would have to wait for its reply while the caller pushes.
      throw new Error("a streamed BDAT body needs PIPELINING; prepare the frames or use DATA");
    }
    if (body.kind === "bdat" && body.frames.length === 0)
      throw new Error("a BDAT body needs at least its LAST frame");
    if (envelope.recipients.length === 0) throw new Error("a transaction needs at least one recipient");
    const recipients: RecipientResult[] = [];
    const rcptLines: string[] = [];
    for (const r of envelope.recipients) {
      recipients.push({ path: r.path, accepted: false });
      rcptLines.push(formatCommand({ verb: "RCPT", path: r.path, params: formatRcptParams(r.params) }));
    }
    const mailLine = formatCommand({
      verb: "MAIL",
      path: envelope.from,
      params: formatMailParams(envelope.mailParams),
    });
    if (!overlap) this.start("ready");
    const tx: Transaction = {
      body,
      mailLine,
      rcptLines,
      raw: false,
      result: { ok: false, recipients, bdat: [] },
      pipelined: this.pipelining,
      rcptIndex: 0,
      accepted: 0,
      mailOk: false,
      frames: body.kind === "bdat" ? body.frames : [],
      frameIndex: 0,
      bdatOutstanding: 0,
      lastBdatSent: false,
      bdatFailed: false,
    };
    if (overlap) {
      // The current transaction ends with its final reply whatever it says: no RSET needed.
      this.queuedOp = { kind: "transaction", tx };
    } else {
      this.op = { kind: "transaction", tx };
      if (this.needsReset) this.command("RSET\r\n", "rset");
    }
    if (!tx.pipelined) {
      if (!this.needsReset) this.command(mailLine, "mail");
      return;
    }
    this.command(mailLine, "mail");
    for (const line of rcptLines) this.command(line, "rcpt");
    if (body.kind === "data" || body.kind === "data-stream") this.command("DATA\r\n", "data");
    else if (body.kind === "bdat" && body.frames.length === 1) this.sendBdatFrames(tx, false);
    // Multi-chunk and streamed BDAT wait for the RCPT replies: no point sending megabytes to nobody.
  }

  /**
   * Whether transaction() may be called now with `body`: when idle, or, with PIPELINING, when
   * the current transaction has sent its whole DATA message and awaits only the final reply. The
   * next MAIL, RCPTs and DATA then go out right behind the message: RFC 2920 §3.1 allows message
   * content to be the first "command" of a group. Streamed bodies wait until the session is idle.
   */
  canStartTransaction(body: TransactionBody): boolean {
    return this.stateImpl === "ready" || this.canOverlap(body);
  }

  private canOverlap(body: TransactionBody): boolean {
    const op = this.op;
    return (
      (body.kind === "data" || body.kind === "bdat") &&
      this.stateImpl === "busy" &&
      this.pipelining &&
      this.queuedOp === undefined &&
      op?.kind === "transaction" &&
      !op.tx.raw &&
      this.expected.length === 1 &&
      this.expected[0] === "message"
    );
  }

  /**
   * Streams message octets after a body-ready event. Returns false once the transaction has
   * ended or failed (stop feeding; the transaction event tells why).
   */
  writeBody(chunk: Uint8Array): boolean {
    const tx = this.bodyTransaction();
    if (tx === undefined) return false;
    if (tx.stuffer !== undefined) {
      const bytes = tx.stuffer.push(chunk);
      if (bytes.length > 0) this.sendData(bytes);
    } else if (tx.chunker !== undefined) {
      this.queueBdatFrames(tx, tx.chunker.push(chunk), false);
    }
    return true;
  }

  /** Ends a streamed body: the DATA terminator, or the BDAT LAST chunk. */
  endBody(): void {
    const tx = this.bodyTransaction();
    if (tx === undefined) return;
    if (tx.stuffer !== undefined) {
      this.sendData(tx.stuffer.end());
      tx.stuffer = undefined;
      this.stateImpl = "busy";
      this.expected.push("message");
    } else if (tx.chunker !== undefined) {
      const frames = tx.chunker.end();
      tx.chunker = undefined;
      this.stateImpl = "busy";
      this.queueBdatFrames(tx, frames, true);
    }
  }

  reset(): void {
    this.start("ready");
    this.op = { kind: "rset" };
    this.command("RSET\r\n", "rset");
  }

  /**
   * Queues QUIT when it can be sent (RFC 5321 §4.1.1.10: in any state between operations) and
   * returns true; false when the caller should just close: before the greeting, while a TLS
   * handshake is due, or once the session is over.
   */
  quit(): boolean {
    const state = this.stateImpl;
    if (state === "greeting" || state === "tls-pending" || state === "closed" || state === "failed")
      return false;
    if (state !== "ready" && state !== "needs-hello")
      throw new Error(`QUIT while an operation is running (${state})`);
    this.op = { kind: "quit" };
    this.stateImpl = "busy";
    this.command("QUIT\r\n", "quit");
    return true;
  }

  /**
   * Any command line, typed by a person (probe's interactive mode): one reply is awaited.
   * STARTTLS, EHLO, HELO and DATA keep their effects on the session. `masked` replaces the
   * line in the transcript.
   */
  rawCommand(line: string, masked?: string): void {
    if (/[\r\n]/.test(line)) throw new Error("a command line cannot contain CR or LF");
    this.start(this.stateImpl === "needs-hello" ? "needs-hello" : "ready");
    const verb = (line.trim().split(" ")[0] ?? "").toUpperCase();
    this.op = { kind: "command", verb };
    this.command(`${line}\r\n`, "command", masked);
  }

  // ── input ─────────────────────────────────────────────────────────────────

  /** Feeds bytes from the server; returns what happened. Throws ProtocolError on a broken reply. */
  receive(bytes: Uint8Array): ClientEvent[] {
    if (this.stateImpl === "closed" || this.stateImpl === "failed") return [];
    if (this.stateImpl === "tls-pending") {
      this.info(`discarded ${bytes.length} octets received before the TLS handshake (RFC 3207 §6)`);
      return [];
    }
    if (this.transcript !== undefined) this.traceReceived(bytes);
    let replies: Reply[];
    try {
      replies = this.parserImpl.push(bytes);
    } catch (error) {
      this.stateImpl = "failed";
      throw error;
    }
    const events: ClientEvent[] = [];
    for (let i = 0; i < replies.length; i++) {
      this.handleReply(replies[i] as Reply, events);
      // Read through a call: the handler may have changed the state narrowed above.
      const now = this.currentState();
      if (now === "tls-pending") {
        if (i + 1 < replies.length || this.parserImpl.pending) {
          this.info("discarded data received after the 220 reply to STARTTLS (RFC 3207 §6)");
        }
        this.parserImpl = new ReplyParser();
        break;
      }
      if (now === "closed") break;
    }
    return events;
  }

  // ── internals ─────────────────────────────────────────────────────────────

  private currentState(): ClientState {
    return this.stateImpl;
  }

  private requireState(required: ClientState): void {
    if (this.stateImpl !== required) {
      throw new Error(`cannot start an operation in state ${this.stateImpl} (needs ${required})`);
    }
  }

  private start(required: ClientState): void {
    this.requireState(required);
    this.stateImpl = "busy";
  }

  private command(line: string, stage: ClientStage, masked?: string): void {
    this.out.push(line);
    this.expected.push(stage);
    if (this.transcript !== undefined) this.traceSent(masked ?? line.slice(0, -2));
  }

  private sendData(bytes: Uint8Array | string): void {
    this.out.push(bytes);
    if (this.transcript === undefined) return;
    if (!this.transcriptBody) {
      this.info(`message data: ${bytes.length} octets`);
      return;
    }
    this.bodyDecoder ??= new TextDecoder("utf-8");
    const text = typeof bytes === "string" ? bytes : this.bodyDecoder.decode(bytes);
    for (const line of text.split("\r\n").slice(0, text.endsWith("\r\n") ? -1 : undefined))
      this.traceSent(line);
  }

  private traceSent(text: string): void {
    this.transcript?.({ direction: "sent", text, tls: this.encrypted });
  }

  private info(text: string): void {
    this.transcript?.({ direction: "info", text, tls: this.encrypted });
  }

  private traceReceived(bytes: Uint8Array): void {
    this.transcriptDecoder ??= new TextDecoder("utf-8");
    const text = this.transcriptCarry + this.transcriptDecoder.decode(bytes, { stream: true });
    const lines = text.split("\n");
    this.transcriptCarry = lines.pop() ?? "";
    for (const line of lines) {
      this.transcript?.({
        direction: "received",
        text: line.endsWith("\r") ? line.slice(0, -1) : line,
        tls: this.encrypted,
      });
    }
  }

  private bodyTransaction(): Transaction | undefined {
    if (this.stateImpl !== "body" || this.op?.kind !== "transaction") return undefined;
    return this.op.tx;
  }

  private finishOperation(next: ClientState): void {
    const queued = this.queuedOp;
    if (queued !== undefined) {
      this.queuedOp = undefined;
      this.op = queued;
      this.stateImpl = "busy";
      return;
    }
    this.op = undefined;
    this.stateImpl = next;
  }

  private handleReply(reply: Reply, events: ClientEvent[]): void {
    const stage = this.expected.shift();
    const op = this.op;
    if (stage === undefined || op === undefined) {
      const tx = this.bodyTransaction();
      if (tx !== undefined) {
        // The server spoke while we were still sending the message: it has given up on it.
        tx.result.final = reply;
        this.finishTransaction(tx, events, "message", reply);
        return;
      }
      if (reply.code === SERVICE_CLOSING) {
        this.closeAfter421(events, reply);
        return;
      }
      throw this.protocolFailure(`unexpected reply ${reply.code} when no command was pending`);
    }
    if (reply.code === SERVICE_CLOSING && stage !== "quit") {
      this.abort(op, stage, reply, events);
      return;
    }
    switch (op.kind) {
      case "greeting": {
        const ok = isPositive(reply);
        this.finishOperation("needs-hello");
        events.push({ type: "greeting", reply, ok });
        return;
      }
      case "hello":
        this.handleHello(op, stage, reply, events);
        return;
      case "starttls": {
        const ok = reply.code === 220;
        this.finishOperation(ok ? "tls-pending" : "ready");
        events.push({ type: "starttls", reply, ok });
        return;
      }
      case "auth":
        this.handleAuth(op, reply, events);
        return;
      case "transaction":
        this.handleTransaction(op.tx, stage, reply, events);
        return;
      case "rset": {
        const ok = isPositive(reply);
        if (ok) this.needsReset = false;
        this.finishOperation("ready");
        events.push({ type: "reset", reply, ok });
        return;
      }
      case "quit":
        this.finishOperation("closed");
        events.push({ type: "quit", reply });
        return;
      case "command":
        this.handleRawReply(op.verb, reply, events);
        return;
    }
  }

  private handleHello(
    op: Operation & { kind: "hello" },
    stage: ClientStage,
    reply: Reply,
    events: ClientEvent[],
  ): void {
    if (stage === "ehlo" && EHLO_NOT_SUPPORTED.includes(reply.code)) {
      op.ehloReply = reply;
      this.command(formatCommand({ verb: "HELO", domain: op.domain }), "helo");
      return;
    }
    const ok = isPositive(reply);
    const extended = stage === "ehlo";
    this.capabilitiesImpl = ok && extended ? parseEhloReply(reply).capabilities : emptyCapabilities();
    // RFC 5321 §4.1.4: a successful EHLO or HELO also clears any open transaction.
    if (ok) this.needsReset = false;
    this.finishOperation(ok ? "ready" : "needs-hello");
    const event: ClientEvent = { type: "hello", reply, ok, extended, capabilities: this.capabilitiesImpl };
    if (op.ehloReply !== undefined) event.ehloReply = op.ehloReply;
    events.push(event);
  }

  private handleAuth(op: Operation & { kind: "auth" }, reply: Reply, events: ClientEvent[]): void {
    if (reply.code === 334 && op.error === undefined) {
      try {
        const response = op.sasl.respond(reply.lines[0] ?? "");
        this.command(`${response.text}\r\n`, "auth", response.secret ? MASK : undefined);
      } catch (error) {
        if (!(error instanceof SaslError)) throw error;
        // RFC 4954 §4: "*" cancels the exchange; the server answers 501.
        op.error = error.message;
        this.command("*\r\n", "auth");
      }
      return;
    }
    if (reply.code === 334) {
      // A server that keeps challenging after "*" is broken.
      throw this.protocolFailure("server sent another challenge after AUTH was cancelled");
    }
    const ok = reply.code === 235 && op.error === undefined;
    if (ok) this.authenticatedImpl = true;
    this.finishOperation("ready");
    const event: ClientEvent = { type: "auth", reply, ok };
    if (op.error !== undefined) event.error = op.error;
    events.push(event);
  }

  private handleRawReply(verb: string, reply: Reply, events: ClientEvent[]): void {
    let next: ClientState = this.stateImpl === "busy" ? "ready" : this.stateImpl;
    if ((verb === "EHLO" || verb === "HELO") && isPositive(reply)) {
      this.capabilitiesImpl = verb === "EHLO" ? parseEhloReply(reply).capabilities : emptyCapabilities();
      next = "ready";
    }
    if (verb === "STARTTLS" && reply.code === 220) next = "tls-pending";
    if (verb === "QUIT" && reply.code === 221) next = "closed";
    if (verb === "AUTH" && reply.code === 235) this.authenticatedImpl = true;
    if (verb === "DATA" && reply.code === 354) {
      // Typed message lines are dot-stuffed through writeBody(); endBody() sends the terminator.
      const tx = this.rawDataTransaction();
      tx.stuffer = new DotStuffer();
      this.op = { kind: "transaction", tx };
      this.stateImpl = "body";
      events.push({ type: "reply", command: verb, reply });
      return;
    }
    this.finishOperation(next);
    events.push({ type: "reply", command: verb, reply });
  }

  private rawDataTransaction(): Transaction {
    return {
      body: { kind: "data-stream" },
      mailLine: "",
      rcptLines: [],
      raw: true,
      result: { ok: false, recipients: [], bdat: [] },
      pipelined: false,
      rcptIndex: 0,
      accepted: 1,
      mailOk: true,
      frames: [],
      frameIndex: 0,
      bdatOutstanding: 0,
      lastBdatSent: false,
      bdatFailed: false,
    };
  }

  private handleTransaction(tx: Transaction, stage: ClientStage, reply: Reply, events: ClientEvent[]): void {
    const r = tx.result;
    switch (stage) {
      case "rset":
        r.reset = reply;
        if (isPositive(reply)) this.needsReset = false;
        if (!tx.pipelined) this.command(tx.mailLine, "mail");
        return;
      case "mail":
        r.mail = reply;
        tx.mailOk = isPositive(reply);
        if (tx.mailOk) this.needsReset = true;
        if (!tx.pipelined) {
          if (!tx.mailOk) this.finishTransaction(tx, events);
          else this.command(tx.rcptLines[0] as string, "rcpt");
        }
        return;
      case "rcpt": {
        const recipient = r.recipients[tx.rcptIndex++];
        if (recipient !== undefined) {
          recipient.reply = reply;
          recipient.accepted = isPositive(reply);
          if (recipient.accepted) tx.accepted++;
        }
        if (tx.rcptIndex < tx.rcptLines.length) {
          if (!tx.pipelined) this.command(tx.rcptLines[tx.rcptIndex] as string, "rcpt");
          return;
        }
        this.afterRecipients(tx, events);
        return;
      }
      case "data":
        r.data = reply;
        if (reply.code !== 354) {
          this.finishTransaction(tx, events, "data", reply);
          return;
        }
        if (!tx.mailOk || tx.accepted === 0) {
          // RFC 2920 §3.1: DATA was accepted although nobody will get the message; end it empty.
          this.sendData(DOT_TERMINATOR);
          this.expected.push("message");
          return;
        }
        this.startBody(tx, events);
        return;
      case "message":
        r.final = reply;
        this.needsReset = false;
        this.finishTransaction(tx, events, isPositive(reply) ? undefined : "message", reply);
        return;
      case "bdat":
        this.handleBdatReply(tx, reply, events);
        return;
      default:
        throw this.protocolFailure(`reply to ${stage} inside a transaction`);
    }
  }

  /** Every RCPT has its reply: decide whether the message goes out. */
  private afterRecipients(tx: Transaction, events: ClientEvent[]): void {
    const body = tx.body;
    const proceed = tx.mailOk && tx.accepted > 0;
    if (body.kind === "data" || body.kind === "data-stream") {
      if (tx.pipelined) return; // DATA is already on its way; its reply decides.
      if (!proceed) {
        this.finishTransaction(tx, events);
        return;
      }
      this.command("DATA\r\n", "data");
      return;
    }
    // BDAT: a single pipelined frame is already sent; otherwise send now, or give up.
    if (tx.bdatOutstanding > 0 || tx.lastBdatSent) return;
    if (!proceed) {
      this.finishTransaction(tx, events);
      return;
    }
    if (body.kind === "bdat-stream") {
      tx.chunker = new BdatChunker({
        ...(body.chunkSize === undefined ? {} : { chunkSize: body.chunkSize }),
        ...(body.normalizeLineEnds === undefined ? {} : { normalizeLineEnds: body.normalizeLineEnds }),
      });
      this.stateImpl = "body";
      events.push({ type: "body-ready" });
      return;
    }
    this.sendBdatFrames(tx, !tx.pipelined);
  }

  private startBody(tx: Transaction, events: ClientEvent[]): void {
    if (tx.body.kind === "data") {
      this.sendData(tx.body.bytes);
      this.expected.push("message");
      return;
    }
    tx.stuffer = new DotStuffer();
    this.stateImpl = "body";
    events.push({ type: "body-ready" });
  }

  /** Sends the prepared frames: all of them (pipelined) or the next one (waiting for each reply). */
  private sendBdatFrames(tx: Transaction, oneAtATime: boolean): void {
    const frames = tx.frames;
    const until = oneAtATime ? tx.frameIndex + 1 : frames.length;
    const batch = frames.slice(tx.frameIndex, until);
    tx.frameIndex = until;
    this.queueBdatFrames(tx, batch, until === frames.length);
  }

  private queueBdatFrames(tx: Transaction, frames: readonly Uint8Array[], endsWithLast: boolean): void {
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[i] as Uint8Array;
      this.out.push(frame);
      this.expected.push("bdat");
      tx.bdatOutstanding++;
      if (this.transcript !== undefined) this.traceBdatFrame(frame);
    }
    if (endsWithLast) tx.lastBdatSent = true;
  }

  private traceBdatFrame(frame: Uint8Array): void {
    const eol = frame.indexOf(10);
    const header = new TextDecoder().decode(frame.subarray(0, eol - 1));
    this.traceSent(header);
    const payload = frame.subarray(eol + 1);
    if (!this.transcriptBody) {
      this.info(`message data: ${payload.length} octets`);
      return;
    }
    const text = new TextDecoder().decode(payload);
    const lines = text.split("\r\n");
    if (lines[lines.length - 1] === "") lines.pop();
    for (const line of lines) this.traceSent(line);
  }

  private handleBdatReply(tx: Transaction, reply: Reply, events: ClientEvent[]): void {
    const r = tx.result;
    r.bdat.push(reply);
    tx.bdatOutstanding--;
    if (!isPositive(reply) && !tx.bdatFailed) {
      tx.bdatFailed = true;
      r.final = reply;
      if (tx.chunker !== undefined) {
        // Stop the caller's stream: RFC 3030 §2 forbids further chunks after a failure.
        tx.chunker = undefined;
        this.stateImpl = "busy";
      }
    }
    if (tx.bdatOutstanding > 0) return;
    if (tx.bdatFailed) {
      this.finishTransaction(tx, events, "bdat", r.final);
      return;
    }
    if (!tx.lastBdatSent) {
      if (tx.frameIndex < tx.frames.length) this.sendBdatFrames(tx, !tx.pipelined);
      return; // a streamed body: the caller keeps writing
    }
    r.final = reply;
    this.needsReset = false;
    this.finishTransaction(tx, events);
  }

  /**
   * Ends the transaction and reports it. The failed stage is the earliest that went wrong:
   * MAIL, then "no recipient", then what the caller passes for the later stages.
   */
  private finishTransaction(
    tx: Transaction,
    events: ClientEvent[],
    stage?: TransactionStage,
    reply?: Reply,
  ): void {
    const r = tx.result;
    if (r.mail !== undefined && !tx.mailOk) {
      r.failedStage = "mail";
      r.failedReply = r.mail;
    } else if (r.mail !== undefined && tx.accepted === 0) {
      r.failedStage = "rcpt";
      r.failedReply = r.recipients.find((x) => x.reply !== undefined)?.reply;
    } else if (stage !== undefined) {
      r.failedStage = stage;
      r.failedReply = reply;
    }
    if (r.failedReply === undefined) delete r.failedReply;
    r.ok = r.failedStage === undefined && r.final !== undefined && isPositive(r.final);
    this.finishOperation("ready");
    if (tx.raw)
      events.push({ type: "reply", command: ".", reply: r.final ?? reply ?? { code: 0, lines: [] } });
    else events.push({ type: "transaction", result: r });
  }

  /** A 421 in place of the awaited reply: report the operation as failed there; the server leaves. */
  private abort(op: Operation, stage: ClientStage, reply: Reply, events: ClientEvent[]): void {
    this.expected.length = 0;
    switch (op.kind) {
      case "greeting":
        events.push({ type: "greeting", reply, ok: false });
        break;
      case "hello":
        events.push({
          type: "hello",
          reply,
          ok: false,
          extended: stage === "ehlo",
          capabilities: this.capabilitiesImpl,
        });
        break;
      case "starttls":
        events.push({ type: "starttls", reply, ok: false });
        break;
      case "auth":
        events.push({ type: "auth", reply, ok: false });
        break;
      case "transaction": {
        const tx = op.tx;
        const r = tx.result;
        if (stage === "mail") r.mail = reply;
        else if (stage === "rcpt") {
          const recipient = r.recipients[tx.rcptIndex];
          if (recipient !== undefined) recipient.reply = reply;
        } else if (stage === "data") r.data = reply;
        else if (stage === "bdat") r.bdat.push(reply);
        else if (stage === "message") r.final = reply;
        else if (stage === "rset") r.reset = reply;
        r.failedStage = stage as TransactionStage;
        r.failedReply = reply;
        r.ok = false;
        events.push({ type: "transaction", result: r });
        break;
      }
      case "rset":
        events.push({ type: "reset", reply, ok: false });
        break;
      case "quit":
        events.push({ type: "quit", reply });
        break;
      case "command":
        events.push({ type: "reply", command: op.verb, reply });
        break;
    }
    const queued = this.queuedOp;
    if (queued !== undefined) {
      const r = queued.tx.result;
      r.failedStage = "mail";
      r.failedReply = reply;
      events.push({ type: "transaction", result: r });
    }
    this.closeAfter421(events, reply, false);
  }

  private closeAfter421(events: ClientEvent[], reply: Reply, announce = true): void {
    this.op = undefined;
    this.queuedOp = undefined;
    this.expected.length = 0;
    this.stateImpl = "closed";
    if (announce) events.push({ type: "closing", reply });
  }

  private protocolFailure(message: string): ProtocolError {
    this.stateImpl = "failed";
    return new ProtocolError(message);
  }
}
