/**
 * Drives one core ServerSession over one network Connection: bytes from the socket go into the
 * session, the session's actions become writes, backend calls, message streams, STARTTLS and
 * close. All protocol decisions stay in src/core; this file only does I/O and waiting.
 *
 * Backpressure: while a backend call is pending, or the backend reads a message more slowly than
 * it arrives, or the peer does not read our replies, the socket is paused, so memory stays flat.
 */

import type { Envelope } from "../core/envelope.ts";
import { SmtpError } from "../core/errors.ts";
import type { HookRequest, HookResult, ServerAction, ServerSession } from "../core/server-session.ts";
import type { Connection, ServerTlsOptions } from "../net/connection.ts";
import { AUTH_LOCAL_ERROR, type Backend, hookError, type SessionInfo } from "./backend.ts";
import { MessageStream } from "./message-stream.ts";

/** Message bytes the backend may have unread before the socket is paused. */
const STREAM_HIGH_WATER = 1024 * 1024;
const STREAM_LOW_WATER = 256 * 1024;

/** Why reading is paused; reading resumes when none is left. */
enum Hold {
  Hook = 1,
  Stream = 2,
  Write = 4,
}

export interface ServerConnectionContext {
  backend: Backend;
  /** For STARTTLS; undefined when the server has no certificate. */
  tls: ServerTlsOptions | undefined;
  idleTimeoutMs: number;
  /** Errors that are not the client's fault (a backend bug), for logs. */
  onError: ((error: unknown, session: SessionInfo) => void) | undefined;
  /** Called once when the connection is gone and the backend was told. */
  onClosed: (connection: ServerConnection) => void;
}

export class ServerConnection {
  private holds = 0;
  /** Data arrived while a hold was on, so the socket really was paused. */
  private paused = false;
  /** The action loop is suspended on something asynchronous (a hook, STARTTLS). */
  private suspended = false;
  private gone = false;
  private pumping = false;
  private stream: MessageStream | undefined;
  private storing: Promise<HookResult> | undefined;

  constructor(
    readonly connection: Connection,
    readonly session: ServerSession,
    readonly info: SessionInfo,
    private readonly context: ServerConnectionContext,
  ) {
    connection.onData((chunk) => this.received(chunk));
    connection.onClose(() => this.closed());
    if (context.idleTimeoutMs > 0) connection.setIdleTimeout(context.idleTimeoutMs, () => this.idle());
    this.pump();
  }

  /** The server is stopping: the session says 421 now or after its transaction. */
  shutdown(): void {
    if (this.gone) return;
    this.session.shutdown();
    this.pump();
  }

  /** The grace period is over: 421 and close whatever the session is doing. */
  forceClose(): void {
    if (this.gone) return;
    this.session.terminate();
    // Whatever the loop waits for (a slow backend) no longer matters: say 421 and close.
    this.suspended = false;
    this.pump();
  }

  private received(chunk: Uint8Array): void {
    if (this.gone) return;
    this.session.receive(chunk);
    if (this.holds !== 0) {
      // Pausing lazily: in the common case a hook resolves before the next segment arrives.
      if (!this.paused) {
        this.paused = true;
        this.connection.pause();
      }
      return;
    }
    this.pump();
  }

  private hold(reason: Hold): void {
    this.holds |= reason;
  }

  private release(reason: Hold): void {
    if ((this.holds & reason) === 0) return;
    this.holds &= ~reason;
    if (this.holds !== 0 || this.gone) return;
    if (this.paused) {
      this.paused = false;
      this.connection.resume();
    }
    // Input that arrived during the hold is waiting in the session.
    this.pump();
  }

  /** Runs the session's actions until it waits for input or for something asynchronous. */
  private pump(): void {
    if (this.gone || this.suspended || this.pumping) return;
    this.pumping = true;
    try {
      for (let action = this.session.nextAction(); action !== null; action = this.session.nextAction()) {
        if (!this.perform(action) || this.gone) return;
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Carries out one action; false when the loop must stop until an asynchronous step finishes. */
  private perform(action: ServerAction): boolean {
    switch (action.type) {
      case "write":
        if (!this.connection.write(action.bytes)) {
          // The peer does not read its replies: stop reading its commands until it does.
          this.hold(Hold.Write);
          this.connection.drain().then(
            () => this.release(Hold.Write),
            () => {},
          );
        }
        return true;
      case "hook":
        return this.hook(action.request);
      case "message-start":
        this.startMessage(action.envelope);
        return true;
      case "message-chunk": {
        const stream = this.stream;
        if (stream !== undefined) {
          stream.push(action.bytes);
          if (stream.buffered > STREAM_HIGH_WATER) this.hold(Hold.Stream);
        }
        return true;
      }
      case "reset":
        this.call(() => this.context.backend.reset?.(this.info));
        return true;
      case "starttls":
        this.startTls();
        return false;
      case "close":
        this.connection.end();
        return true;
    }
  }

  private hook(request: HookRequest): boolean {
    let outcome: HookResult | Promise<HookResult>;
    try {
      outcome = this.runHook(request);
    } catch (error) {
      outcome = this.failure(error, request);
    }
    if (!(outcome instanceof Promise)) {
      this.settle(request, outcome);
      return true;
    }
    this.suspended = true;
    this.hold(Hold.Hook);
    outcome
      .catch((error: unknown) => this.failure(error, request))
      .then((result) => {
        this.suspended = false;
        if (this.gone) return;
        this.settle(request, result);
        this.release(Hold.Hook);
        this.pump();
      });
    return false;
  }

  private settle(request: HookRequest, result: HookResult): void {
    if (!(result instanceof SmtpError)) {
      if (request.kind === "helo") {
        this.info.heloName = request.domain;
        this.info.esmtp = request.extended;
      } else if (request.kind === "auth") this.info.authUser = request.credentials.username;
    }
    this.session.resolve(result);
  }

  /** Maps a thrown error to the reply; errors that are not SmtpErrors are reported as bugs. */
  private failure(error: unknown, request: HookRequest): SmtpError {
    if (!(error instanceof SmtpError)) this.context.onError?.(error, this.info);
    return hookError(error, request.kind === "auth" ? AUTH_LOCAL_ERROR : undefined);
  }

  /** Calls the backend for a hook; a plain value when it answered synchronously. */
  private runHook(request: HookRequest): HookResult | Promise<HookResult> {
    const backend = this.context.backend;
    const info = this.info;
    switch (request.kind) {
      case "connect":
        return voidResult(backend.connect?.(info));
      case "helo":
        return voidResult(backend.helo?.(info, request.domain));
      case "auth": {
        const c = request.credentials;
        const secret =
          c.mechanism === "CRAM-MD5" ? { cramResponse: c.response, challenge: c.challenge } : c.password;
        return voidResult(backend.auth?.(info, c.mechanism, c.username, secret));
      }
      case "mail":
        return voidResult(backend.mail?.(info, request.from, request.params));
      case "rcpt":
        return voidResult(backend.rcpt?.(info, request.to, request.params));
      case "data-start":
        return voidResult(backend.dataStart?.(info, request.envelope));
      case "message-end":
        return this.endMessage();
      case "message-abort":
        return this.abortMessage(request.error);
    }
  }

  private startMessage(envelope: Envelope): void {
    const stream = new MessageStream(STREAM_LOW_WATER);
    stream.onDrain = () => this.release(Hold.Stream);
    this.stream = stream;
    let storing: Promise<unknown>;
    try {
      storing = this.context.backend.data(this.info, envelope, stream);
    } catch (error) {
      storing = Promise.reject(error);
    }
    // Settles to the reply; a backend that fails early stops receiving chunks (no backpressure).
    this.storing = storing.then(
      (queueId) => (typeof queueId === "string" ? queueId : undefined),
      (error: unknown) => {
        if (this.stream === stream) {
          stream.fail(error instanceof Error ? error : new Error(String(error)));
          this.release(Hold.Stream);
        }
        return this.failure(error, { kind: "message-end", envelope, size: 0 });
      },
    );
  }

  private endMessage(): Promise<HookResult> {
    const message = this.detachMessage();
    if (message === undefined) return Promise.resolve(undefined);
    message.stream.end();
    return message.storing;
  }

  /** The session rejected the message: the backend's read throws; wait until it has let go. */
  private abortMessage(error: SmtpError): Promise<HookResult> {
    const message = this.detachMessage();
    if (message === undefined) return Promise.resolve(undefined);
    message.stream.fail(error);
    return message.storing.then(() => undefined);
  }

  /** Takes the message in progress off the connection, whichever way it ends. */
  private detachMessage() {
    const { stream, storing } = this;
    this.stream = undefined;
    this.storing = undefined;
    this.release(Hold.Stream);
    return stream === undefined || storing === undefined ? undefined : { stream, storing };
  }

  private startTls(): void {
    const tls = this.context.tls;
    if (tls === undefined) {
      // The session offers STARTTLS only with a certificate; reaching here is a wiring bug.
      this.connection.destroy();
      return;
    }
    this.suspended = true;
    this.connection.startTls(tls).then(
      (tlsInfo) => {
        this.suspended = false;
        if (this.gone) return;
        this.info.tls = tlsInfo;
        this.info.heloName = undefined;
        this.info.authUser = undefined;
        this.session.tlsStarted();
        this.pump();
      },
      () => this.connection.destroy(),
    );
  }

  private idle(): void {
    // Our own slowness (a backend call, a backend reading slowly) is not the client's idleness.
    if (this.gone || this.holds !== 0 || this.suspended) return;
    this.session.timeout();
    this.pump();
  }

  private closed(): void {
    if (this.gone) return;
    this.gone = true;
    const stream = this.stream;
    this.stream = undefined;
    stream?.fail(new SmtpError(421, "4.4.2", "connection closed during the message"));
    const finish = () => {
      this.call(() => this.context.backend.close?.(this.info));
      this.context.onClosed(this);
    };
    if (this.storing !== undefined) this.storing.then(finish);
    else finish();
  }

  /** Calls a notification hook; its errors are reported, never thrown into the event loop. */
  private call(notify: () => void): void {
    try {
      notify();
    } catch (error) {
      this.context.onError?.(error, this.info);
    }
  }
}

/** A hook's void (or promise of void) as the session's result: undefined means accepted. */
function voidResult(value: void | Promise<void>): HookResult | Promise<HookResult> {
  if (value instanceof Promise) return value.then(() => undefined);
  return undefined;
}
