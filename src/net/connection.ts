import type * as net from "node:net";
import { formatEndpoint } from "./endpoint.ts";
import { NetError, toNetError } from "./net-error.ts";
import type { TlsInfo } from "./tls-info.ts";
import {
  type ClientTlsOptions,
  handshakeError,
  type ServerTlsOptions,
  type TlsUpgrade,
  upgradeClient,
  upgradeServer,
} from "./tls-upgrade.ts";

export type { CertificateInfo, TlsInfo } from "./tls-info.ts";
export type { ClientTlsOptions, ServerTlsOptions } from "./tls-upgrade.ts";

/**
 * One TCP connection, plain or TLS, as the client and server drivers see it. Chunks are handed on
 * as they come from the socket (Buffers, which are Uint8Arrays), without copies.
 */
export interface Connection {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly family: 4 | 6;
  /** Set once TLS is up (implicit or STARTTLS). */
  readonly tls: TlsInfo | undefined;
  /**
   * One handler; a second call replaces the first. Nothing is read until a handler is set. After a
   * TLS upgrade, decrypted data arrives through the same handler, no earlier than a macrotask after
   * startTls() resolved, so the driver can switch its session state first.
   */
  onData(handler: (chunk: Uint8Array) => void): void;
  /** Called once, with the error that closed the connection if there was one (a NetError). */
  onClose(handler: (error?: Error) => void): void;
  /** False: the socket buffer is full, await drain() before writing more. */
  write(bytes: Uint8Array | string): boolean;
  /** Resolves when the write buffer has room; rejects with a NetError if the connection closes first. */
  drain(): Promise<void>;
  pause(): void;
  resume(): void;
  /**
   * Switch to TLS (STARTTLS, RFC 3207). Bytes that arrived on the plain socket but were not yet
   * delivered are discarded (RFC 3207 §4.2; the smuggling class), so call it in the same tick as
   * the server writes its 220 reply, or as the client reads it: a peer's first TLS bytes must not
   * arrive before this is called. Rejects with a NetError ("tls-verify" or "tls-handshake").
   */
  startTls(options: ClientTlsOptions | ServerTlsOptions): Promise<TlsInfo>;
  /** No traffic in either direction for `ms` calls onTimeout (once per idle period); 0 disables. */
  setIdleTimeout(ms: number, onTimeout: () => void): void;
  /** Flush what was written, then close (FIN; TLS close_notify first). */
  end(): void;
  destroy(): void;
}

export type ConnectionRole = "client" | "server";

interface DrainWaiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

function isServerTlsOptions(options: ClientTlsOptions | ServerTlsOptions): options is ServerTlsOptions {
  return options.cert !== undefined && options.key !== undefined;
}

/** Errors on a socket we no longer listen to must not become uncaught exceptions. */
function ignoreError(): void {}

export class SocketConnection implements Connection {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly family: 4 | 6;

  #socket: net.Socket;
  #tls: TlsInfo | undefined;
  /** From startTls() until the data listener moved to the TLS socket. */
  #holdingData = false;
  #dataHandler: ((chunk: Uint8Array) => void) | undefined;
  #dataSocket: net.Socket | undefined;
  #closeHandler: ((error?: Error) => void) | undefined;
  #closed = false;
  #closeError: Error | undefined;
  #paused = false;
  #needDrain = false;
  #drainWaiters: DrainWaiter[] = [];
  #idleMs = 0;
  #idleHandler: (() => void) | undefined;

  /**
   * @param peerName the host name the client connected to: the default name a server certificate
   *   must match on STARTTLS.
   * @param released called once the connection has closed, besides the driver's onClose handler
   *   (the listener counts open connections with it).
   */
  constructor(
    socket: net.Socket,
    readonly role: ConnectionRole,
    readonly peerName?: string,
    private readonly released?: () => void,
  ) {
    this.#socket = socket;
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = socket.localAddress ?? "";
    this.localPort = socket.localPort ?? 0;
    this.family = socket.remoteFamily === "IPv6" ? 6 : 4;
    socket.setNoDelay(true);
    this.#watch(socket);
  }

  get tls(): TlsInfo | undefined {
    return this.#tls;
  }

  /** Bytes read from the socket but not yet handed to onData (while paused, or before a handler is set). */
  get bufferedInputBytes(): number {
    return this.#socket.readableLength;
  }

  /** "connection to mx.example.com:25" or "connection from 192.0.2.1:40000", for error messages. */
  get description(): string {
    const where = formatEndpoint(this.remoteAddress, this.remotePort);
    return this.role === "client"
      ? `connection to ${this.peerName !== undefined && this.peerName !== this.remoteAddress ? `${this.peerName} (${where})` : where}`
      : `connection from ${where}`;
  }

  onData(handler: (chunk: Uint8Array) => void): void {
    this.#detachData();
    this.#dataHandler = handler;
    if (!this.#holdingData) this.#attachData();
  }

  onClose(handler: (error?: Error) => void): void {
    this.#closeHandler = handler;
    if (this.#closed) queueMicrotask(() => handler(this.#closeError));
  }

  write(bytes: Uint8Array | string): boolean {
    if (this.#closed) return false;
    const roomLeft = this.#socket.write(bytes);
    if (!roomLeft) this.#needDrain = true;
    return roomLeft;
  }

  drain(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedWhileWriting());
    if (!this.#needDrain) return Promise.resolve();
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  pause(): void {
    this.#paused = true;
    if (!this.#holdingData) this.#socket.pause();
  }

  resume(): void {
    this.#paused = false;
    // Resuming a stream without a data listener would throw the bytes away.
    if (!this.#holdingData && this.#dataSocket !== undefined) this.#socket.resume();
  }

  async startTls(options: ClientTlsOptions | ServerTlsOptions): Promise<TlsInfo> {
    if (this.#tls !== undefined || this.#holdingData) {
      throw new Error(`${this.description}: TLS is already active`);
    }
    if (this.#closed) throw this.#closeError ?? new NetError("reset", `${this.description} is closed`);

    if (this.role === "server" && !isServerTlsOptions(options)) {
      throw new TypeError("server-side startTls needs a certificate and key");
    }

    const plain = this.#socket;
    this.#detachData();
    this.#unwatch(plain);
    this.#holdingData = true;
    const discarded = this.#discardUndelivered(plain);

    const upgrade: TlsUpgrade =
      isServerTlsOptions(options) && this.role === "server"
        ? upgradeServer(plain, options, this.description)
        : upgradeClient(plain, options, this.peerName, this.description);
    this.#socket = upgrade.socket;
    this.#watch(upgrade.socket);
    if (this.#idleMs > 0) {
      plain.setTimeout(0);
      upgrade.socket.setTimeout(this.#idleMs);
    }

    let info: TlsInfo;
    try {
      info = await upgrade.handshake;
    } catch (error) {
      this.#closeError ??= error instanceof Error ? error : undefined;
      throw error;
    }
    if (discarded > 0) info.discardedBytes = discarded;
    this.#tls = info;
    // Let the caller's continuation update its session state before decrypted data flows.
    setImmediate(() => {
      this.#holdingData = false;
      if (!this.#closed) this.#attachData();
    });
    return info;
  }

  setIdleTimeout(ms: number, onTimeout: () => void): void {
    this.#idleMs = ms;
    this.#idleHandler = ms > 0 ? onTimeout : undefined;
    this.#socket.setTimeout(ms);
  }

  end(): void {
    if (!this.#closed) this.#socket.end();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #discardUndelivered(plain: net.Socket): number {
    plain.pause();
    let discarded = 0;
    for (let chunk: unknown = plain.read(); chunk !== null; chunk = plain.read()) {
      if (chunk instanceof Uint8Array) discarded += chunk.length;
      else if (typeof chunk === "string") discarded += chunk.length;
    }
    return discarded;
  }

  #attachData(): void {
    const handler = this.#dataHandler;
    if (handler === undefined) return;
    this.#socket.on("data", handler);
    this.#dataSocket = this.#socket;
    if (this.#paused) this.#socket.pause();
    else this.#socket.resume();
  }

  #detachData(): void {
    if (this.#dataSocket !== undefined && this.#dataHandler !== undefined) {
      this.#dataSocket.off("data", this.#dataHandler);
    }
    this.#dataSocket = undefined;
  }

  #watch(socket: net.Socket): void {
    socket.on("error", this.#handleError);
    socket.on("close", this.#handleClose);
    socket.on("drain", this.#handleDrain);
    socket.on("timeout", this.#handleTimeout);
  }

  #unwatch(socket: net.Socket): void {
    socket.off("error", this.#handleError);
    socket.off("close", this.#handleClose);
    socket.off("drain", this.#handleDrain);
    socket.off("timeout", this.#handleTimeout);
    socket.on("error", ignoreError);
  }

  #closedWhileWriting(): NetError {
    return new NetError("reset", `${this.description} closed before the data was written`);
  }

  readonly #handleError = (error: Error): void => {
    this.#closeError ??=
      this.#holdingData && this.#tls === undefined
        ? handshakeError(error, this.description)
        : toNetError(error, this.description);
  };

  readonly #handleClose = (): void => {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.setTimeout(0);
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const waiter of waiters) waiter.reject(this.#closedWhileWriting());
    this.released?.();
    this.#closeHandler?.(this.#closeError);
  };

  readonly #handleDrain = (): void => {
    this.#needDrain = false;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const waiter of waiters) waiter.resolve();
  };

  readonly #handleTimeout = (): void => {
    this.#idleHandler?.();
  };
}
