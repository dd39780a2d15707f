/**
 * A core ClientSession driven one step at a time over a Connection, for `smtpkit probe`: each
 * method sends one thing and resolves with the event that answers it, so the caller can time and
 * report every stage, stop after any of them, and type raw commands (interactive mode).
 * Protocol decisions stay in the core session; this file only moves bytes, keeps time and turns
 * socket trouble into SmtpClientError.
 */

import type { SaslCredentials } from "../core/auth-client.ts";
import { type ClientEvent, ClientSession, type ClientStage } from "../core/client-session.ts";
import { ProtocolError } from "../core/errors.ts";
import type { Reply } from "../core/reply.ts";
import type { ClientTlsOptions, Connection, TlsInfo } from "../net/connection.ts";
import type { Resolver } from "../net/dns.ts";
import { formatEndpoint } from "../net/endpoint.ts";
import { NetError } from "../net/net-error.ts";
import { connect } from "../net/tcp-client.ts";
import { networkError, SmtpClientError } from "./errors.ts";
import { type ClientTimeouts, timeoutFor } from "./timeouts.ts";
import { boundedHandshake } from "./tls-handshake.ts";
import type { ClientTranscriptLine } from "./transcript.ts";

export interface ProbeSessionOptions {
  /** Host name or IP address. */
  host: string;
  port: number;
  family?: 4 | 6;
  /** Resolve `host` here instead of through the operating system. */
  resolver?: Resolver;
  /** TLS from the first byte (RFC 8314); otherwise plain until STARTTLS. */
  implicitTls?: boolean;
  /**
   * Used for implicit TLS and for STARTTLS. Give `insecure: true` to receive the TlsInfo of a
   * certificate that does not verify (probe reports it and decides itself whether to go on).
   */
  tls: ClientTlsOptions;
  timeouts: ClientTimeouts;
  /** Every line sent and received (secrets masked), plus the driver's own notes. */
  transcript?: (line: ClientTranscriptLine) => void;
}

/** A result and how long it took, in milliseconds. */
export interface Timed<T> {
  value: T;
  ms: number;
}

type EventOf<K extends ClientEvent["type"]> = Extract<ClientEvent, { type: K }>;

export interface StartTlsResult {
  event: EventOf<"starttls">;
  /** Set when the 220 came and the handshake completed. */
  tls?: TlsInfo;
}

interface Waiter {
  resolve: (event: ClientEvent) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

function elapsedSince(start: number): number {
  return performance.now() - start;
}

export class ProbeSession {
  readonly session: ClientSession;
  private readonly events: ClientEvent[] = [];
  private waiter: Waiter | undefined;
  private failure: SmtpClientError | undefined;
  private handshake: Promise<TlsInfo> | undefined;
  private lastWrite = performance.now();
  private closedImpl = false;

  private constructor(
    readonly connection: Connection,
    private readonly options: ProbeSessionOptions,
  ) {
    const transcript = options.transcript;
    this.session = new ClientSession({
      tls: connection.tls !== undefined,
      transcript:
        transcript === undefined
          ? undefined
          : (line) =>
              transcript(
                line.direction === "received" ? { ...line, elapsedMs: elapsedSince(this.lastWrite) } : line,
              ),
    });
    connection.onData((chunk) => this.receive(chunk));
    connection.onClose((error) => this.connectionClosed(error));
  }

  /** Opens the connection (and implicit TLS); rejects with SmtpClientError at stage "connect". */
  static async open(options: ProbeSessionOptions): Promise<Timed<ProbeSession>> {
    const note = (text: string) => options.transcript?.({ direction: "info", text, tls: false });
    note(`Trying ${formatEndpoint(options.host, options.port)}...`);
    const start = performance.now();
    let connection: Connection;
    try {
      connection = await connect({
        host: options.host,
        port: options.port,
        timeoutMs: options.timeouts.connect,
        ...(options.family === undefined ? {} : { family: options.family }),
        ...(options.resolver === undefined ? {} : { resolver: options.resolver }),
        ...(options.implicitTls === true ? { tls: options.tls } : {}),
      });
    } catch (error) {
      throw networkError("connect", error);
    }
    const ms = elapsedSince(start);
    note(
      `Connected to ${formatEndpoint(connection.remoteAddress, connection.remotePort)} from ${formatEndpoint(connection.localAddress, connection.localPort)}`,
    );
    if (connection.tls !== undefined)
      note(`TLS started with ${connection.tls.protocol} ${connection.tls.cipher}`);
    return { value: new ProbeSession(connection, options), ms };
  }

  get closed(): boolean {
    return this.closedImpl;
  }

  /** The 220 (or not) the server greets with. */
  greeting(): Promise<Timed<EventOf<"greeting">>> {
    return this.step("greeting", () => {});
  }

  /** EHLO, and HELO when EHLO is refused (the core session decides). */
  hello(domain: string): Promise<Timed<EventOf<"hello">>> {
    return this.step("hello", () => this.session.ehlo(domain));
  }

  /** STARTTLS and, after a 220, the handshake; EHLO is due next. The handshake's failure throws. */
  async startTls(): Promise<Timed<StartTlsResult>> {
    const start = performance.now();
    const { value: event } = await this.step("starttls", () => this.session.startTls());
    if (!event.ok) return { value: { event }, ms: elapsedSince(start) };
    const tls = await this.completeTls();
    return { value: { event, tls }, ms: elapsedSince(start) };
  }

  auth(mechanism: string, credentials: SaslCredentials): Promise<Timed<EventOf<"auth">>> {
    return this.step("auth", () => this.session.auth(mechanism, credentials));
  }

  /**
   * Any command line; the reply comes back as is. After a 220 to a typed STARTTLS the handshake
   * is done here too, and its TlsInfo returned.
   */
  async command(line: string, masked?: string): Promise<Timed<{ reply: Reply; tls?: TlsInfo }>> {
    const start = performance.now();
    const { value: event } = await this.step("reply", () => this.session.rawCommand(line, masked));
    if (this.session.state !== "tls-pending")
      return { value: { reply: event.reply }, ms: elapsedSince(start) };
    const tls = await this.completeTls();
    return { value: { reply: event.reply, tls }, ms: elapsedSince(start) };
  }

  reset(): Promise<Timed<EventOf<"reset">>> {
    return this.step("reset", () => this.session.reset());
  }

  /** After a 354 to a typed DATA: message octets, dot-stuffed by the core session. */
  writeBody(bytes: Uint8Array): boolean {
    const open = this.session.writeBody(bytes);
    this.flush();
    return open;
  }

  /** Ends a typed message with CRLF.CRLF and waits for the server's verdict. */
  async endBody(): Promise<Timed<Reply>> {
    const { value, ms } = await this.step("reply", () => this.session.endBody());
    return { value: value.reply, ms };
  }

  /**
   * QUIT, then close. Resolves with the reply, or undefined when QUIT could not be sent (before
   * the greeting, or the connection is gone) or the server hung up instead of answering.
   */
  async quit(): Promise<Timed<Reply> | undefined> {
    if (this.closedImpl || this.failure !== undefined) {
      this.close();
      return undefined;
    }
    const start = performance.now();
    if (!this.session.quit()) {
      this.close();
      return undefined;
    }
    this.flush();
    try {
      const event = await this.nextEvent();
      return event.type === "quit" || event.type === "reply" || event.type === "closing"
        ? { value: event.reply, ms: elapsedSince(start) }
        : undefined;
    } catch (error) {
      if (error instanceof SmtpClientError && error.kind === "closed") return undefined;
      throw error;
    } finally {
      this.close();
    }
  }

  /** Closes without QUIT: flushes what was written, then FIN. */
  close(): void {
    if (this.closedImpl) return;
    this.connection.end();
  }

  /** Tears the connection down at once (after a timeout or a protocol error). */
  destroy(): void {
    this.connection.destroy();
  }

  // ── internals ─────────────────────────────────────────────────────────────

  private async step<K extends ClientEvent["type"]>(type: K, start: () => void): Promise<Timed<EventOf<K>>> {
    const begin = performance.now();
    if (this.failure !== undefined) throw this.failure;
    const state = this.session.state;
    if (state === "closed" || state === "failed") {
      // After a 421 (or QUIT) the core session takes no more commands; the server is gone.
      throw new SmtpClientError("closed", this.stageLabel(), "the server closed the session");
    }
    start();
    this.flush();
    const event = await this.nextEvent();
    if (event.type !== type) {
      // A 421 that answered nothing in particular: the server is leaving.
      if (event.type === "closing") {
        throw new SmtpClientError("reply", this.stageLabel(), `server is closing: ${describe(event.reply)}`, {
          reply: event.reply,
        });
      }
      throw new SmtpClientError("protocol", this.stageLabel(), `expected a ${type} event, got ${event.type}`);
    }
    return { value: event as EventOf<K>, ms: elapsedSince(begin) };
  }

  private async completeTls(): Promise<TlsInfo> {
    const handshake = this.handshake ?? this.beginTls();
    this.handshake = undefined;
    let info: TlsInfo;
    try {
      info = await boundedHandshake(handshake, this.connection, this.options.timeouts.command);
    } catch (error) {
      const wrapped = networkError("tls", error);
      this.failure = wrapped;
      throw wrapped;
    }
    // Before decrypted data can flow (src/net delays it by a macrotask), so nothing is misread.
    this.session.tlsEstablished();
    this.options.transcript?.({
      direction: "info",
      text: `TLS started with ${info.protocol} ${info.cipher}`,
      tls: true,
    });
    return info;
  }

  private beginTls(): Promise<TlsInfo> {
    const handshake = this.connection.startTls(this.options.tls);
    // The caller awaits it through completeTls(); until then a rejection must not go unhandled.
    handshake.catch(() => {});
    this.handshake = handshake;
    return handshake;
  }

  private flush(): void {
    const bytes = this.session.dataToSend();
    if (bytes === undefined) return;
    this.lastWrite = performance.now();
    this.connection.write(bytes);
  }

  private receive(chunk: Uint8Array): void {
    let events: ClientEvent[];
    try {
      events = this.session.receive(chunk);
    } catch (error) {
      const message = error instanceof ProtocolError ? error.message : String(error);
      this.fail(new SmtpClientError("protocol", this.stageLabel(), message, { cause: error }));
      this.connection.destroy();
      return;
    }
    // RFC 3207 §4.2 via src/net: the switch must happen in the same tick as the 220 is read.
    if (this.session.state === "tls-pending" && this.handshake === undefined) this.beginTls();
    this.flush();
    for (const event of events) this.deliver(event);
  }

  private deliver(event: ClientEvent): void {
    const waiter = this.waiter;
    if (waiter === undefined) {
      this.events.push(event);
      return;
    }
    this.waiter = undefined;
    clearTimeout(waiter.timer);
    waiter.resolve(event);
  }

  private fail(error: SmtpClientError): void {
    this.failure ??= error;
    const waiter = this.waiter;
    if (waiter === undefined) return;
    this.waiter = undefined;
    clearTimeout(waiter.timer);
    waiter.reject(this.failure);
  }

  private connectionClosed(error?: Error): void {
    this.closedImpl = true;
    if (error instanceof NetError) {
      this.fail(
        new SmtpClientError("network", this.stageLabel(), error.message, {
          netKind: error.kind,
          cause: error,
        }),
      );
    } else {
      this.fail(new SmtpClientError("closed", this.stageLabel(), "the server closed the connection"));
    }
  }

  private nextEvent(): Promise<ClientEvent> {
    const queued = this.events.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const stage = this.session.awaiting;
    const ms = timeoutFor(this.options.timeouts, stage);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(
          new SmtpClientError("timeout", this.stageLabel(stage), `no reply within ${ms / 1000} s`, {
            temporary: true,
          }),
        );
        this.connection.destroy();
      }, ms);
      this.waiter = { resolve, reject, timer };
    });
  }

  private stageLabel(stage: ClientStage | undefined = this.session.awaiting): ClientStage {
    return stage ?? "command";
  }
}

function describe(reply: Reply): string {
  return `${reply.code}${reply.enhanced === undefined ? "" : ` ${reply.enhanced}`} ${reply.lines.join(" ")}`.trim();
}
