import type { Socket, SocketHandler, TLSOptions, TLSUpgradeOptions } from "bun";
import { formatEndpoint } from "./endpoint.ts";
import { errorCode, isVerifyErrorCode, NetError, toNetError } from "./net-error.ts";
import type { NativeTlsSocket, TlsInfo } from "./tls-info.ts";
import type { ClientTlsOptions, ServerTlsOptions } from "./tls-upgrade.ts";

export type { CertificateInfo, TlsInfo } from "./tls-info.ts";
export type { ClientTlsOptions, ServerTlsOptions } from "./tls-upgrade.ts";

/** What a handshake needs: tls-info.ts and tls-upgrade.ts. */
type TlsCode = typeof import("./tls-info.ts") & typeof import("./tls-upgrade.ts");

let tlsCode: TlsCode | undefined;

/**
 * Loads the TLS code, once. A plain-text connection never needs it, so a one-message `send` to a
 * local relay does not load it at start-up (each KB of code loaded costs it about 0.1 ms, see
 * docs/performance.md). A client's startTls() loads it itself, since the server sends nothing
 * before our ClientHello; a server must have it loaded before it answers STARTTLS, or the
 * ClientHello could arrive meanwhile and be discarded with the plaintext: startSmtpServer and
 * listen() load it when they are given a certificate.
 */
export async function loadTlsCode(): Promise<TlsCode> {
  if (tlsCode === undefined) {
    const [info, upgrade] = await Promise.all([import("./tls-info.ts"), import("./tls-upgrade.ts")]);
    tlsCode = { ...info, ...upgrade };
  }
  return tlsCode;
}

function loadedTlsCode(): TlsCode {
  if (tlsCode === undefined) throw new Error("TLS used before loadTlsCode() finished");
  return tlsCode;
}

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
   * One handler; a second call replaces the first. Nothing is delivered until a handler is set.
   * After a TLS upgrade, decrypted data arrives through the same handler, no earlier than a
   * macrotask after startTls() resolved, so the driver can switch its session state first.
   */
  onData(handler: (chunk: Uint8Array) => void): void;
  /** Called once, with the error that closed the connection if there was one (a NetError). */
  onClose(handler: (error?: Error) => void): void;
  /** False: the write buffer is full, await drain() before writing more. */
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

/** Bun's native sockets; `data` points back at the connection that owns them. */
export type NativeSocket = Socket<SocketConnection | undefined>;

interface DrainWaiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

/** A TLS handshake in progress: who waits for it, and how the client checks the certificate. */
interface PendingHandshake {
  resolve: (info: TlsInfo) => void;
  reject: (error: NetError) => void;
  /** Client side only. */
  client?: { expectedName: string | undefined; insecure: boolean; fingerprint: string | undefined };
}

/**
 * Unsent bytes beyond which write() asks the caller to wait for drain(). Bun's sockets do not
 * buffer: what the kernel does not take at once waits here.
 */
const WRITE_HIGH_WATER = 64 * 1024;

/**
 * pause() stops delivering at once but keeps reading into memory up to this much before it
 * stops the socket: bytes that were read can still be discarded at a STARTTLS switch, while bytes
 * left in the kernel would be taken for the TLS handshake.
 */
const PAUSED_READ_LIMIT = 256 * 1024;

function isServerTlsOptions(options: ClientTlsOptions | ServerTlsOptions): options is ServerTlsOptions {
  return options.cert !== undefined && options.key !== undefined;
}

function byteLength(bytes: Uint8Array | string): number {
  return typeof bytes === "string" ? Buffer.byteLength(bytes) : bytes.length;
}

/**
 * A connection over one of Bun's native sockets (Bun.listen, Bun.connect and upgradeTLS). They cost
 * far less per connection and per write than node:net (measured with smtp-source against `serve`),
 * but hand the caller the work node:net did: buffering what the kernel did not take, holding input
 * while paused, and idle timers.
 */
export class SocketConnection implements Connection {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly family: 4 | 6;
  #socket: NativeSocket;
  #tls: TlsInfo | undefined;
  #handshake: PendingHandshake | undefined;
  /** After a STARTTLS or implicit TLS handshake, until the driver had a macrotask to switch state. */
  #holding = false;
  #dataHandler: ((chunk: Uint8Array) => void) | undefined;
  #closeHandler: ((error?: Error) => void) | undefined;
  #closed = false;
  #closeError: Error | undefined;
  #ending = false;
  #paused = false;
  #readStopped = false;
  /** Read but not yet delivered: while paused, holding, or before a handler is set. */
  #inbox: Uint8Array[] = [];
  #inboxBytes = 0;
  #delivering = false;
  /** Written but not yet taken by the kernel, oldest first. */
  #outbox: Uint8Array[] = [];
  #outboxBytes = 0;
  #drainWaiters: DrainWaiter[] = [];
  #idleMs = 0;
  #idleHandler: (() => void) | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #lastActivity = 0;

  /**
   * @param peerName the host name the client connected to: the default name a server certificate
   *   must match on STARTTLS.
   * @param released called once the connection has closed, besides the driver's onClose handler
   *   (the listener counts open connections with it).
   * @param dialed the IPv4 address and port a client connected to, which the socket would only
   *   repeat: its first remoteAddress read takes about 0.3 ms (a small compiled program).
   */
  constructor(
    socket: NativeSocket,
    readonly role: ConnectionRole,
    readonly peerName?: string,
    private readonly released?: () => void,
    dialed?: { address: string; port: number },
  ) {
    this.#socket = socket;
    socket.data = this;
    // Read now: after the close the socket no longer knows. The local end is read when asked.
    this.remoteAddress = dialed?.address ?? socket.remoteAddress ?? "";
    this.remotePort = dialed?.port ?? socket.remotePort ?? 0;
    // From the address rather than remoteFamily: each of these getters is a system call.
    this.family = this.remoteAddress.includes(":") ? 6 : 4;
  }

  get localAddress(): string {
    return this.#socket.localAddress ?? "";
  }

  get localPort(): number {
    return this.#socket.localPort ?? 0;
  }

  get tls(): TlsInfo | undefined {
    return this.#tls;
  }

  /** Bytes read from the socket but not yet handed to onData (while paused, or before a handler is set). */
  get bufferedInputBytes(): number {
    return this.#inboxBytes;
  }

  /** "connection to mx.example.com:25" or "connection from 192.0.2.1:40000", for error messages. */
  get description(): string {
    const where = formatEndpoint(this.remoteAddress, this.remotePort);
    return this.role === "client"
      ? `connection to ${this.peerName !== undefined && this.peerName !== this.remoteAddress ? `${this.peerName} (${where})` : where}`
      : `connection from ${where}`;
  }

  onData(handler: (chunk: Uint8Array) => void): void {
    this.#dataHandler = handler;
    if (this.#inboxBytes > 0) this.#scheduleDelivery();
  }

  onClose(handler: (error?: Error) => void): void {
    this.#closeHandler = handler;
    if (this.#closed) queueMicrotask(() => handler(this.#closeError));
  }

  write(bytes: Uint8Array | string): boolean {
    if (this.#closed || this.#ending) return false;
    this.#touch();
    if (this.#outboxBytes > 0) {
      this.#queue(typeof bytes === "string" ? Buffer.from(bytes) : bytes);
    } else {
      const written = this.#socket.write(bytes);
      if (written < byteLength(bytes)) {
        const view = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
        this.#queue(view.subarray(Math.max(written, 0)));
      }
    }
    return this.#outboxBytes <= WRITE_HIGH_WATER;
  }

  drain(): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedWhileWriting());
    if (this.#outboxBytes <= WRITE_HIGH_WATER) return Promise.resolve();
    return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    if (this.#inboxBytes > 0) this.#scheduleDelivery();
    else this.#restartReading();
  }

  async startTls(options: ClientTlsOptions | ServerTlsOptions): Promise<TlsInfo> {
    const code = tlsCode ?? (this.role === "server" ? loadedTlsCode() : await loadTlsCode());
    if (this.#tls !== undefined || this.#handshake !== undefined) {
      throw new Error(`${this.description}: TLS is already active`);
    }
    if (this.#closed) throw this.#closeError ?? new NetError("reset", `${this.description} is closed`);
    const server = this.role === "server";
    if (server && !isServerTlsOptions(options)) {
      throw new TypeError("server-side startTls needs a certificate and key");
    }
    const discarded = this.#inboxBytes;
    this.#inbox = [];
    this.#inboxBytes = 0;
    this.#restartReading();

    const handshake = this.#expectHandshake(server ? undefined : options);
    const tls: TLSOptions = server
      ? { cert: options.cert, key: options.key }
      : code.clientTlsOptions(options, this.peerName);
    // `isServer` is missing from Bun's types but needed: without it the upgrade acts as a client.
    const upgrade: TLSUpgradeOptions<SocketConnection | undefined> & { isServer: boolean } = {
      data: this,
      tls,
      socket: SocketConnection.handlers,
      isServer: server,
    };
    // The plain socket keeps seeing the ciphertext (Bun taps it); the handlers ignore a socket
    // that is no longer this connection's.
    const [, secure] = this.#socket.upgradeTLS(upgrade);
    this.#socket = secure;
    const info = await handshake;
    if (discarded > 0) info.discardedBytes = discarded;
    return info;
  }

  /**
   * Implicit TLS: the socket was opened with TLS, so the handshake is already under way. Resolves
   * like startTls().
   */
  awaitHandshake(client?: ClientTlsOptions): Promise<TlsInfo> {
    return this.#expectHandshake(client);
  }

  setIdleTimeout(ms: number, onTimeout: () => void): void {
    this.#idleMs = ms;
    this.#idleHandler = ms > 0 ? onTimeout : undefined;
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (ms > 0 && !this.#closed) {
      this.#lastActivity = performance.now();
      this.#armIdleTimer(ms);
    }
  }

  end(): void {
    if (this.#closed || this.#ending) return;
    this.#ending = true;
    if (this.#outboxBytes === 0) this.#socket.end();
  }

  destroy(): void {
    if (this.#closed) return;
    const socket = this.#socket;
    // close(), not terminate(): terminate resets the connection, and node:net's destroy() sent FIN.
    socket.close();
    // Closed for the driver now, whenever the native close callback comes.
    this.#onClose(socket, undefined);
  }

  #expectHandshake(client: ClientTlsOptions | undefined): Promise<TlsInfo> {
    this.#holding = true;
    return new Promise<TlsInfo>((resolve, reject) => {
      this.#handshake = {
        resolve,
        reject,
        ...(client === undefined
          ? {}
          : {
              client: {
                expectedName: client.servername ?? this.peerName,
                insecure: client.insecure === true,
                fingerprint: client.fingerprint,
              },
            }),
      };
    });
  }

  #queue(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#outbox.push(bytes);
    this.#outboxBytes += bytes.length;
  }

  #touch(): void {
    if (this.#idleMs > 0) this.#lastActivity = performance.now();
  }

  /**
   * One timer per connection, re-armed only when it fires: activity just moves #lastActivity, so a
   * busy connection costs no timer work per chunk.
   */
  #armIdleTimer(delay: number): void {
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#closed || this.#idleMs === 0) return;
      const idleFor = performance.now() - this.#lastActivity;
      if (idleFor + 1 >= this.#idleMs) {
        this.#lastActivity = performance.now();
        this.#idleHandler?.();
        if (this.#idleMs > 0 && this.#idleTimer === undefined && !this.#closed)
          this.#armIdleTimer(this.#idleMs);
      } else {
        this.#armIdleTimer(this.#idleMs - idleFor);
      }
    }, delay);
  }

  #restartReading(): void {
    if (!this.#readStopped) return;
    this.#readStopped = false;
    this.#socket.resume();
  }

  #scheduleDelivery(): void {
    if (this.#delivering) return;
    this.#delivering = true;
    // Never re-enter the caller: resume() and onData() may be called from inside a data handler.
    queueMicrotask(() => {
      this.#delivering = false;
      this.#deliverInbox();
    });
  }

  #deliverInbox(): void {
    while (this.#inbox.length > 0 && this.#canDeliver()) {
      const chunk = this.#inbox.shift() as Uint8Array;
      this.#inboxBytes -= chunk.length;
      this.#dataHandler?.(chunk);
    }
    if (this.#inboxBytes === 0 && !this.#paused) this.#restartReading();
  }

  #canDeliver(): boolean {
    return this.#dataHandler !== undefined && !this.#paused && !this.#holding && !this.#closed;
  }

  #onData(socket: NativeSocket, chunk: Uint8Array): void {
    if (socket !== this.#socket || this.#closed) return;
    this.#touch();
    if (this.#inboxBytes === 0 && this.#canDeliver()) {
      this.#dataHandler?.(chunk);
      return;
    }
    this.#inbox.push(chunk);
    this.#inboxBytes += chunk.length;
    if (this.#inboxBytes > PAUSED_READ_LIMIT && !this.#readStopped) {
      this.#readStopped = true;
      socket.pause();
    }
    if (this.#canDeliver()) this.#scheduleDelivery();
  }

  #onDrain(socket: NativeSocket): void {
    if (socket !== this.#socket) return;
    while (this.#outbox.length > 0) {
      const next = this.#outbox[0] as Uint8Array;
      const written = socket.write(next);
      if (written > 0) {
        this.#outboxBytes -= written;
        this.#touch();
      }
      if (written < next.length) {
        this.#outbox[0] = next.subarray(Math.max(written, 0));
        break;
      }
      this.#outbox.shift();
    }
    if (this.#outboxBytes <= WRITE_HIGH_WATER) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const waiter of waiters) waiter.resolve();
    }
    if (this.#outboxBytes === 0 && this.#ending) socket.end();
  }

  #onEnd(socket: NativeSocket): void {
    if (socket === this.#socket) this.end();
  }

  #onHandshake(socket: NativeSocket, success: boolean, verifyError: Error | null): void {
    const pending = this.#handshake;
    if (socket !== this.#socket || pending === undefined) return;
    this.#handshake = undefined;
    // Bun reports a certificate that did not verify (with rejectUnauthorized off) sometimes as a
    // failed handshake, though the connection is up: only other errors end it.
    const code = errorCode(verifyError);
    if (!success && (code === undefined || !isVerifyErrorCode(code))) {
      const error = new NetError(
        "tls-handshake",
        `${this.description}: TLS handshake failed: ${verifyError?.message ?? "unknown reason"}`,
        code,
      );
      this.#closeError ??= error;
      pending.reject(error);
      this.destroy();
      return;
    }
    const { tlsInfoOf, verifiedOrThrow } = loadedTlsCode();
    try {
      const info = tlsInfoOf(socket as unknown as NativeTlsSocket, verifyError, pending.client);
      if (pending.client !== undefined && !pending.client.insecure)
        verifiedOrThrow(info, verifyError, this.description, pending.client.fingerprint);
      this.#tls = info;
      pending.resolve(info);
    } catch (error) {
      const netError = toNetError(error, this.description);
      this.#closeError ??= netError;
      pending.reject(netError);
      this.destroy();
      return;
    }
    // Let the caller's continuation update its session state before decrypted data flows.
    setImmediate(() => {
      this.#holding = false;
      if (this.#inboxBytes > 0) this.#scheduleDelivery();
    });
  }

  #onError(socket: NativeSocket, error: Error): void {
    if (socket !== this.#socket) return;
    this.#closeError ??=
      this.#handshake !== undefined
        ? loadedTlsCode().handshakeError(error, this.description)
        : toNetError(error, this.description);
  }

  #onClose(socket: NativeSocket, error: Error | undefined): void {
    if (socket !== this.#socket || this.#closed) return;
    if (error !== undefined) this.#onError(socket, error);
    this.#closed = true;
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#outbox = [];
    this.#outboxBytes = 0;
    const pending = this.#handshake;
    this.#handshake = undefined;
    pending?.reject(
      this.#closeError instanceof NetError
        ? this.#closeError
        : new NetError("tls-handshake", `${this.description}: connection closed during the TLS handshake`),
    );
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const waiter of waiters) waiter.reject(this.#closedWhileWriting());
    this.released?.();
    this.#closeHandler?.(this.#closeError);
  }

  #closedWhileWriting(): NetError {
    return new NetError("reset", `${this.description} closed before the data was written`);
  }

  /** Every native socket of every connection shares these; `socket.data` says whose it is. */
  static readonly handlers: SocketHandler<SocketConnection | undefined> = {
    data: (socket, chunk) => {
      if (socket.data !== undefined) socket.data.#onData(socket, chunk);
    },
    drain: (socket) => {
      if (socket.data !== undefined) socket.data.#onDrain(socket);
    },
    handshake: (socket, success, error) => {
      if (socket.data !== undefined) socket.data.#onHandshake(socket, success, error);
    },
    error: (socket, error) => {
      if (socket.data !== undefined) socket.data.#onError(socket, error);
    },
    close: (socket, error) => {
      if (socket.data !== undefined) socket.data.#onClose(socket, error);
    },
    // The peer sent FIN: finish what we were writing and close, as node:net does without allowHalfOpen.
    end: (socket) => {
      if (socket.data !== undefined) socket.data.#onEnd(socket);
    },
  };
}
