/**
 * The SMTP client driver: runs a core ClientSession over a src/net Connection. `send`, `probe`
 * and the queue's delivery use it.
 *
 *   const client = await SmtpClient.connect({ host, port, helo, starttls: "auto" });
 *   const result = await client.send(envelope, new PreparedMessage(bytes));
 *   await client.quit();
 *
 * connect() = open() (TCP, implicit TLS, greeting) + setup() (EHLO, STARTTLS and EHLO again,
 * AUTH). probe calls the steps one by one instead. Every wait has the RFC 5321 §4.5.3.2 timeout
 * of its stage. Failures outside a transaction throw SmtpClientError; a transaction's refusals
 * (4xx/5xx at MAIL, RCPT, DATA, end of data) come back in the DeliveryResult, since some
 * recipients may have been accepted while others were not.
 */

import { chooseSaslMechanism, SaslError } from "../core/auth-client.ts";
import { readMessage } from "../core/bytes.ts";
import type { Capabilities } from "../core/capabilities.ts";
import {
  type ClientEvent,
  ClientSession,
  type TransactionBody,
  type TransactionResult,
} from "../core/client-session.ts";
import { formatCommand } from "../core/command.ts";
import type { Envelope } from "../core/envelope.ts";
import type { Reply } from "../core/reply.ts";
import type { Connection } from "../net/connection.ts";
import type { Resolver } from "../net/dns.ts";
import { connect as tcpConnect } from "../net/tcp-client.ts";
import type { TlsInfo } from "../net/tls-info.ts";
import type { ClientTlsOptions } from "../net/tls-upgrade.ts";
import { type ClientErrorStage, networkError, SmtpClientError } from "./errors.ts";
import { PreparedMessage } from "./prepared-message.ts";
import { type ClientTimeouts, resolveTimeouts, timeoutFor } from "./timeouts.ts";
import { type MessageTraits, planTransaction } from "./transaction-plan.ts";
import type { ClientTranscriptLine } from "./transcript.ts";

export interface ClientAuthOptions {
  /** PLAIN, LOGIN, CRAM-MD5 or XOAUTH2; default: the best the server offers. */
  mechanism?: string;
  username: string;
  /** The password, or the OAuth 2.0 token for XOAUTH2. */
  password: string;
  authzid?: string;
}

export interface ClientOptions {
  host: string;
  port: number;
  family?: 4 | 6;
  /** Resolve `host` here instead of the system resolver. */
  resolver?: Resolver;
  /** TLS from the first byte (port 465, RFC 8314). */
  implicitTls?: boolean;
  /** STARTTLS: "auto" when offered (default), "always" or fail, "never". */
  starttls?: "auto" | "always" | "never";
  /** Verification settings for implicit TLS and STARTTLS; verification is on by default. */
  tls?: ClientTlsOptions;
  /** The name we give in EHLO/HELO. */
  helo: string;
  timeouts?: Partial<ClientTimeouts>;
  auth?: ClientAuthOptions;
  /** Allow AUTH on a connection that is not encrypted (default false: refuse). */
  allowPlaintextAuth?: boolean;
  /** Use CHUNKING/BDAT when offered (default true). */
  chunking?: boolean;
  /** Use PIPELINING when offered (default true). */
  pipelining?: boolean;
  /** Every line sent and received in swaks' notation (see formatTranscriptLine), passwords masked. */
  transcript?: (line: ClientTranscriptLine) => void;
  /** Put message lines in the transcript (default true); else one summary line per body. */
  transcriptBody?: boolean;
}

/** One step of the session and how long it took. */
export interface StageResult {
  stage: ClientErrorStage;
  reply?: Reply;
  ms: number;
}

export interface DeliveryResult extends TransactionResult {
  /** From the first command of the transaction to its last reply. */
  ms: number;
  /** How the message travelled. */
  method: "data" | "bdat";
  /** RFC 1870 size of the message, when known. */
  size?: number;
  /** Parameters dropped because the server lacks the extension (DSN, AUTH=). */
  warnings: string[];
}

export interface SendOptions extends MessageTraits {}

/** One message for sendMany(). */
export interface SendJob {
  envelope: Envelope;
  message: Uint8Array | PreparedMessage;
  options?: SendOptions;
}

/**
 * Transactions in flight per connection in sendMany(): three keep one waiting to be written
 * behind each message as it goes out, so message and next group share one write.
 */
export const DEFAULT_SEND_WINDOW = 3;

/** What `verifyRecipients` found: MAIL and each RCPT reply, then RSET; never DATA. */
export interface EnvelopeCheck {
  mail: Reply;
  recipients: { path: Envelope["recipients"][number]["path"]; reply?: Reply; accepted: boolean }[];
  reset?: Reply;
}

type Waiter = { resolve: (event: ClientEvent) => void; reject: (error: Error) => void };

const now = (): number => performance.now();

export class SmtpClient {
  private readonly session: ClientSession;
  private readonly timeouts: ClientTimeouts;
  /** One per operation written and not yet answered, in wire order. */
  private readonly waiters: Waiter[] = [];
  /** send() calls waiting for the session to take another transaction. */
  private turnWaiters: (() => void)[] = [];
  /** Set once the connection is unusable; every later call throws it. */
  private failure: SmtpClientError | undefined;
  private closed = false;
  private idleMs = -1;
  private lastWrite = 0;
  private stream: AsyncIterable<Uint8Array> | undefined;
  private greetingReply: Reply | undefined;
  private tlsInfo: TlsInfo | undefined;
  private readonly stageLog: StageResult[] = [];
  private heloReply: Reply | undefined;

  private constructor(
    private readonly connection: Connection,
    private readonly options: ClientOptions,
    timeouts: ClientTimeouts,
  ) {
    this.timeouts = timeouts;
    this.tlsInfo = connection.tls;
    const transcript = options.transcript;
    this.session = new ClientSession({
      tls: connection.tls !== undefined,
      pipelining: options.pipelining !== false,
      transcriptBody: options.transcriptBody !== false,
      ...(transcript === undefined
        ? {}
        : {
            transcript: (line) =>
              transcript(
                line.direction === "received" ? { ...line, elapsedMs: now() - this.lastWrite } : line,
              ),
          }),
    });
    connection.onData((chunk) => this.onData(chunk));
    connection.onClose((error) => this.onClose(error));
  }

  /** TCP (and implicit TLS), then the greeting. Throws SmtpClientError; a refusing greeting too. */
  static async open(options: ClientOptions): Promise<SmtpClient> {
    const timeouts = resolveTimeouts(options.timeouts);
    const where = `${options.host}:${options.port}`;
    options.transcript?.({ direction: "info", text: `Trying ${where}...`, tls: false });
    const started = now();
    let connection: Connection;
    try {
      connection = await tcpConnect({
        host: options.host,
        port: options.port,
        timeoutMs: timeouts.connect,
        ...(options.family === undefined ? {} : { family: options.family }),
        ...(options.resolver === undefined ? {} : { resolver: options.resolver }),
        ...(options.implicitTls === true ? { tls: options.tls ?? {} } : {}),
      });
    } catch (error) {
      throw networkError("connect", error);
    }
    const client = new SmtpClient(connection, options, timeouts);
    client.stageLog.push({ stage: "connect", ms: now() - started });
    options.transcript?.({
      direction: "info",
      text: `Connected to ${connection.remoteAddress}:${connection.remotePort}${connection.tls === undefined ? "" : ` (${describeTls(connection.tls)})`}`,
      tls: connection.tls !== undefined,
    });
    try {
      const greetingStarted = now();
      client.lastWrite = greetingStarted;
      client.armTimeout();
      const event = await client.waitFor("greeting");
      client.greetingReply = event.reply;
      client.stageLog.push({ stage: "greeting", reply: event.reply, ms: now() - greetingStarted });
      if (!event.ok) {
        throw new SmtpClientError(
          "reply",
          "greeting",
          `the server refused the session: ${replyText(event.reply)}`,
          {
            reply: event.reply,
          },
        );
      }
    } catch (error) {
      await client.abandon();
      throw error;
    }
    return client;
  }

  /** open() plus setup(): ready to send, or closed and thrown. */
  static async connect(options: ClientOptions): Promise<SmtpClient> {
    const client = await SmtpClient.open(options);
    try {
      await client.setup();
    } catch (error) {
      await client.abandon();
      throw error;
    }
    return client;
  }

  /** EHLO; STARTTLS and EHLO again as the options say; AUTH when credentials are given. */
  async setup(): Promise<void> {
    await this.hello();
    const mode = this.options.starttls ?? "auto";
    if (this.tlsInfo === undefined && mode !== "never") {
      if (this.capabilities.startTls) {
        const upgraded = await this.startTls(mode === "always");
        if (upgraded) await this.hello();
      } else if (mode === "always") {
        throw new SmtpClientError("tls-unavailable", "starttls", "the server does not offer STARTTLS", {
          temporary: false,
        });
      }
    }
    if (this.options.auth !== undefined) await this.authenticate(this.options.auth);
  }

  // ── state ───────────────────────────────────────────────────────────────

  get capabilities(): Capabilities {
    return this.session.capabilities;
  }

  /** Set when the connection is encrypted (implicit TLS or after STARTTLS). */
  get tls(): TlsInfo | undefined {
    return this.tlsInfo;
  }

  get greeting(): Reply {
    return this.greetingReply as Reply;
  }

  /** The last EHLO (or HELO) reply. */
  get helloReply(): Reply | undefined {
    return this.heloReply;
  }

  /** Connection setup steps with their replies and durations (transactions report their own). */
  get stages(): readonly StageResult[] {
    return this.stageLog;
  }

  get remoteAddress(): string {
    return this.connection.remoteAddress;
  }

  get remotePort(): number {
    return this.connection.remotePort;
  }

  get family(): 4 | 6 {
    return this.connection.family;
  }

  get authenticated(): boolean {
    return this.session.authenticated;
  }

  /** False once the connection failed or closed. */
  get usable(): boolean {
    return this.failure === undefined && !this.closed && this.session.state !== "closed";
  }

  // ── steps ───────────────────────────────────────────────────────────────

  /** EHLO, or HELO when the server refuses EHLO. Throws on a negative reply. */
  async hello(): Promise<Reply> {
    this.ensureUsable();
    const started = now();
    this.session.ehlo(this.options.helo);
    this.flush();
    const event = await this.waitFor("hello");
    this.heloReply = event.reply;
    const stage = event.extended ? "ehlo" : "helo";
    this.stageLog.push({ stage, reply: event.reply, ms: now() - started });
    if (!event.ok) {
      throw new SmtpClientError("reply", stage, `${stage.toUpperCase()} refused: ${replyText(event.reply)}`, {
        reply: event.reply,
      });
    }
    return event.reply;
  }

  /**
   * STARTTLS and the handshake; EHLO must follow (call hello()). Returns false when the server
   * answered STARTTLS with an error and `required` is false (the session goes on in clear text).
   */
  async startTls(required = true): Promise<boolean> {
    this.ensureUsable();
    const started = now();
    this.session.startTls();
    this.flush();
    const event = await this.waitFor("starttls");
    this.stageLog.push({ stage: "starttls", reply: event.reply, ms: now() - started });
    if (!event.ok) {
      if (!required) return false;
      throw new SmtpClientError(
        "tls-unavailable",
        "starttls",
        `STARTTLS refused: ${replyText(event.reply)}`,
        {
          reply: event.reply,
        },
      );
    }
    await this.upgrade();
    return true;
  }

  /** AUTH with the given credentials (or those of the options). Throws unless the server says 235. */
  async authenticate(auth: ClientAuthOptions | undefined = this.options.auth): Promise<Reply> {
    this.ensureUsable();
    if (auth === undefined) throw new Error("authenticate() needs credentials");
    const encrypted = this.tlsInfo !== undefined;
    if (!encrypted && this.options.allowPlaintextAuth !== true) {
      throw new SmtpClientError(
        "auth-plaintext",
        "auth",
        "refusing to send a password over an unencrypted connection (use TLS or STARTTLS, or allow plaintext auth)",
        { temporary: false },
      );
    }
    const offered = this.capabilities.auth;
    if (offered.length === 0) {
      throw new SmtpClientError("auth-unsupported", "auth", "the server does not offer AUTH", {
        temporary: false,
      });
    }
    const mechanism = auth.mechanism?.toUpperCase() ?? chooseSaslMechanism(offered, encrypted);
    if (mechanism === undefined || !offered.includes(mechanism)) {
      throw new SmtpClientError(
        "auth-unsupported",
        "auth",
        `the server offers AUTH ${offered.join(" ")}${mechanism === undefined ? ", none of which smtpkit speaks" : `, not ${mechanism}`}`,
        { temporary: false },
      );
    }
    const started = now();
    try {
      this.session.auth(mechanism, {
        username: auth.username,
        password: auth.password,
        ...(auth.authzid === undefined ? {} : { authzid: auth.authzid }),
      });
    } catch (error) {
      if (error instanceof SaslError) {
        throw new SmtpClientError("auth-failed", "auth", error.message, { temporary: false, cause: error });
      }
      throw error;
    }
    this.flush();
    const event = await this.waitFor("auth");
    this.stageLog.push({ stage: "auth", reply: event.reply, ms: now() - started });
    if (!event.ok) {
      const why =
        event.error === undefined ? replyText(event.reply) : `${event.error} (${replyText(event.reply)})`;
      throw new SmtpClientError("auth-failed", "auth", `authentication failed: ${why}`, {
        reply: event.reply,
      });
    }
    return event.reply;
  }

  /**
   * One mail transaction. `message` is the whole message (a PreparedMessage is stuffed or framed
   * once and can be sent many times) or a stream of octets. Refusals by the server come back in
   * the result; local refusals (SIZE, SMTPUTF8, ...) and connection trouble throw.
   */
  async send(
    envelope: Envelope,
    message: Uint8Array | PreparedMessage | AsyncIterable<Uint8Array>,
    opts: SendOptions = {},
  ): Promise<DeliveryResult> {
    this.ensureUsable();
    const caps = this.session.capabilities;
    const chunkingAllowed = this.options.chunking !== false;
    let prepared: PreparedMessage | undefined;
    let stream: AsyncIterable<Uint8Array> | undefined;
    if (message instanceof PreparedMessage) prepared = message;
    else if (message instanceof Uint8Array) prepared = new PreparedMessage(message, opts);
    else stream = message;
    const traits: MessageTraits = prepared === undefined ? opts : prepared.traits;
    const useBdat = traits.binary === true || (caps.chunking && chunkingAllowed);
    if (stream !== undefined && useBdat && !this.session.pipelining) {
      // Streamed BDAT needs PIPELINING (each chunk would wait for its reply): gather it instead.
      prepared = new PreparedMessage(await readMessage(stream), opts);
      stream = undefined;
    }
    let body: TransactionBody;
    let size: number | undefined;
    if (prepared !== undefined) {
      body = useBdat ? prepared.bdatBody() : prepared.dataBody();
      size = prepared.size;
    } else {
      body = useBdat
        ? { kind: "bdat-stream", normalizeLineEnds: traits.binary !== true }
        : { kind: "data-stream" };
      size = opts.size;
    }
    const plan = planTransaction(
      caps,
      envelope,
      size === undefined ? traits : { ...traits, size },
      chunkingAllowed,
    );
    // Another send() may hold the session; with PIPELINING this one can follow its message.
    while (!this.session.canStartTransaction(body)) {
      await this.nextTurn();
      this.ensureUsable();
    }
    const started = now();
    if (stream !== undefined) this.stream = stream;
    this.session.transaction(plan.envelope, body);
    this.flush();
    let event: Extract<ClientEvent, { type: "transaction" }>;
    try {
      event = await this.waitFor("transaction");
    } finally {
      if (stream !== undefined && this.stream === stream) this.stream = undefined;
    }
    const result: DeliveryResult = {
      ...event.result,
      ms: now() - started,
      method: useBdat ? "bdat" : "data",
      warnings: plan.warnings,
    };
    if (size !== undefined) result.size = size;
    return result;
  }

  /**
   * Sends each job over this connection, up to `window` transactions in flight: with PIPELINING
   * each one is written right behind the previous message, so a run of messages costs one round
   * trip each (send --repeat, the queue). `onResult` is called in job order with the result or
   * the error of that job. A job that fails locally (SIZE, SMTPUTF8, ...) does not stop the
   * others; once the connection fails, no further job is started and the failure is thrown:
   * jobs without an onResult call were not delivered.
   */
  async sendMany<J extends SendJob>(
    jobs: Iterable<J> | AsyncIterable<J>,
    onResult: (job: J, outcome: DeliveryResult | Error) => void,
    window = DEFAULT_SEND_WINDOW,
  ): Promise<void> {
    const inflight: Promise<void>[] = [];
    for await (const job of jobs) {
      if (!this.usable) break;
      inflight.push(
        this.send(job.envelope, job.message, job.options).then(
          (result) => onResult(job, result),
          (error: unknown) => onResult(job, error instanceof Error ? error : new Error(String(error))),
        ),
      );
      if (inflight.length >= window) await inflight.shift();
    }
    await Promise.all(inflight);
    if (!this.usable) {
      throw this.failure ?? new SmtpClientError("closed", "command", "the connection is closed");
    }
  }

  /** MAIL and each RCPT, then RSET: would the server take mail for these addresses? Never DATA. */
  async verifyRecipients(envelope: Envelope): Promise<EnvelopeCheck> {
    const mailLine = formatCommand({ verb: "MAIL", path: envelope.from, params: [] }).slice(0, -2);
    const mail = await this.command(mailLine);
    const check: EnvelopeCheck = {
      mail,
      recipients: envelope.recipients.map((r) => ({ path: r.path, accepted: false })),
    };
    if (mail.code >= 200 && mail.code < 300) {
      for (const entry of check.recipients) {
        const reply = await this.command(
          formatCommand({ verb: "RCPT", path: entry.path, params: [] }).slice(0, -2),
        );
        entry.reply = reply;
        entry.accepted = reply.code >= 200 && reply.code < 300;
      }
    }
    check.reset = await this.reset();
    return check;
  }

  /** RSET. */
  async reset(): Promise<Reply> {
    this.ensureUsable();
    this.session.reset();
    this.flush();
    return (await this.waitFor("reset")).reply;
  }

  /**
   * A command line as a person typed it (probe's interactive mode). STARTTLS answered with 220
   * switches to TLS at once; DATA answered with 354 expects data() next.
   */
  async command(line: string, masked?: string): Promise<Reply> {
    this.ensureUsable();
    this.session.rawCommand(line, masked);
    this.flush();
    const event = await this.waitFor("reply");
    if (this.session.state === "tls-pending") await this.upgrade();
    return event.reply;
  }

  /** After command("DATA") got 354: the message, dot-stuffed here; resolves with the final reply. */
  async data(message: Uint8Array | AsyncIterable<Uint8Array>): Promise<Reply> {
    this.ensureUsable();
    if (this.session.state !== "body") throw new Error("data() needs a 354 reply to DATA first");
    const pending = this.waitFor("reply");
    await this.pump(message instanceof Uint8Array ? [message] : message);
    return (await pending).reply;
  }

  /** QUIT, wait for the reply (briefly), and close. Never throws. */
  async quit(): Promise<Reply | undefined> {
    if (!this.usable) {
      this.close();
      return undefined;
    }
    let reply: Reply | undefined;
    try {
      if (this.session.quit()) {
        this.flush();
        reply = (await this.waitFor("quit")).reply;
      }
    } catch {
      // The server may close before or instead of 221; the session is over either way.
    }
    this.connection.end();
    this.closed = true;
    return reply;
  }

  /** Drop the connection now. */
  close(): void {
    this.closed = true;
    this.connection.destroy();
  }

  // ── internals ───────────────────────────────────────────────────────────

  private async upgrade(): Promise<void> {
    const started = now();
    // The session ignores anything until tlsEstablished(); the connection drops unread plaintext.
    // No reply is awaited during the handshake, so the idle timer is off and the command timeout
    // bounds the handshake as a whole instead.
    this.connection.setIdleTimeout(0, () => {});
    this.idleMs = -1;
    let info: TlsInfo;
    try {
      // Loaded here, not with the client: a plain-text send does not carry it.
      const { boundedHandshake } = await import("./tls-handshake.ts");
      info = await boundedHandshake(
        this.connection.startTls({ servername: this.options.host, ...this.options.tls }),
        this.connection,
        this.timeouts.command,
      );
    } catch (error) {
      const failure = networkError("tls", error);
      this.fail(failure);
      throw failure;
    }
    this.tlsInfo = info;
    this.session.tlsEstablished();
    this.stageLog.push({ stage: "tls", ms: now() - started });
    this.options.transcript?.({ direction: "info", text: `TLS started: ${describeTls(info)}`, tls: true });
  }

  private ensureUsable(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.closed || this.session.state === "closed") {
      throw new SmtpClientError("closed", "command", "the connection is closed");
    }
  }

  private flush(): void {
    const bytes = this.session.dataToSend();
    if (bytes !== undefined) {
      this.lastWrite = now();
      this.connection.write(bytes);
    }
    this.armTimeout();
  }

  /** The RFC 5321 wait for whatever the session awaits now; only touched when it changes. */
  private armTimeout(): void {
    const ms = timeoutFor(this.timeouts, this.session.awaiting);
    if (ms === this.idleMs) return;
    this.idleMs = ms;
    this.connection.setIdleTimeout(ms, () => this.onIdle());
  }

  private onIdle(): void {
    if (this.waiters.length === 0) return;
    const stage = this.session.awaiting ?? "message";
    this.fail(
      new SmtpClientError(
        "timeout",
        stage,
        `no reply to ${describeStage(stage)} within ${Math.round(this.idleMs / 1000)} s`,
        {
          netKind: "timeout",
        },
      ),
    );
    this.connection.destroy();
  }

  private onData(chunk: Uint8Array): void {
    let events: ClientEvent[];
    try {
      events = this.session.receive(chunk);
    } catch (error) {
      const stage = this.session.awaiting ?? "command";
      const message = error instanceof Error ? error.message : String(error);
      this.fail(
        new SmtpClientError("protocol", stage, `protocol error: ${message}`, {
          cause: error,
          temporary: true,
        }),
      );
      this.connection.destroy();
      return;
    }
    for (const event of events) {
      if (event.type === "body-ready") {
        const stream = this.stream;
        this.stream = undefined;
        if (stream !== undefined) void this.pump(stream);
        continue;
      }
      if (event.type === "closing") {
        this.failure ??= new SmtpClientError(
          "closed",
          "command",
          `the server is closing: ${replyText(event.reply)}`,
          {
            reply: event.reply,
          },
        );
        continue;
      }
      this.waiters.shift()?.resolve(event);
    }
    if (this.turnWaiters.length === 0) {
      this.flush();
      return;
    }
    // A send() waiting for its turn runs first and appends its group to what goes out now
    // (typically right behind a message): one write instead of two.
    this.wakeTurnWaiters();
    queueMicrotask(() => this.flush());
  }

  /** Streams a message body into the session, minding the socket's back-pressure. */
  private async pump(source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void> {
    try {
      for await (const chunk of source) {
        if (!this.session.writeBody(chunk)) return;
        const bytes = this.session.dataToSend();
        if (bytes !== undefined && !this.connection.write(bytes)) await this.connection.drain();
      }
      this.session.endBody();
      this.flush();
    } catch (error) {
      if (error instanceof SmtpClientError) return;
      // Ending the data now would deliver a truncated message: drop the connection instead.
      const message = error instanceof Error ? error.message : String(error);
      this.fail(
        new SmtpClientError("aborted", "message", `reading the message failed: ${message}`, { cause: error }),
      );
      this.connection.destroy();
    }
  }

  private onClose(error: Error | undefined): void {
    const expected = this.closed && this.waiters.length === 0;
    this.closed = true;
    if (!expected && this.failure === undefined && this.session.state !== "closed") {
      const stage = this.session.awaiting ?? "command";
      if (error !== undefined) this.failure = networkError(stage, error);
      else {
        const what =
          this.waiters.length === 0
            ? "the server closed the connection"
            : `the server closed the connection while we waited for ${describeStage(stage)}`;
        this.failure = new SmtpClientError("closed", stage, what, { netKind: "reset" });
      }
    }
    // Made only for someone waiting: an expected close after QUIT needs no error (and its stack).
    if (this.waiters.length > 0) {
      const failure =
        this.failure ??
        new SmtpClientError("closed", "command", "the server closed the connection", { netKind: "reset" });
      for (const waiter of this.waiters.splice(0)) waiter.reject(failure);
    }
    this.wakeTurnWaiters();
  }

  private fail(error: SmtpClientError): void {
    this.failure ??= error;
    const failure = this.failure;
    for (const waiter of this.waiters.splice(0)) waiter.reject(failure);
    this.wakeTurnWaiters();
  }

  private wakeTurnWaiters(): void {
    if (this.turnWaiters.length === 0) return;
    const waiting = this.turnWaiters;
    this.turnWaiters = [];
    for (const wake of waiting) wake();
  }

  /** Resolves after the next batch of replies (or a failure): time to check the session again. */
  private nextTurn(): Promise<void> {
    return new Promise((resolve) => this.turnWaiters.push(resolve));
  }

  private waitFor<T extends ClientEvent["type"]>(type: T): Promise<Extract<ClientEvent, { type: T }>> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiters.push({
        resolve: (event) => {
          if (event.type === type) resolve(event as Extract<ClientEvent, { type: T }>);
          else reject(new SmtpClientError("protocol", "command", `expected ${type}, got ${event.type}`));
        },
        reject,
      });
    });
  }

  /** After a failed setup: QUIT politely if the session allows it, then close. */
  private async abandon(): Promise<void> {
    if (this.usable && (this.session.state === "ready" || this.session.state === "needs-hello")) {
      await this.quit();
    }
    this.close();
  }
}

function replyText(reply: Reply): string {
  const text = reply.lines.join(" ").trim();
  return `${reply.code}${reply.enhanced === undefined ? "" : ` ${reply.enhanced}`}${text === "" ? "" : ` ${text}`}`;
}

function describeStage(stage: ClientErrorStage): string {
  switch (stage) {
    case "greeting":
      return "the greeting";
    case "message":
      return "the end of the message";
    case "bdat":
      return "BDAT";
    default:
      return stage.toUpperCase();
  }
}

function describeTls(info: TlsInfo): string {
  if (info.pinned) return `${info.protocol} ${info.cipher}, certificate pinned by its SHA-256 fingerprint`;
  return `${info.protocol} ${info.cipher}${info.authorized ? "" : `, certificate not verified: ${info.authorizationError ?? "unknown reason"}`}`;
}
