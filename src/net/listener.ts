import type { TCPSocketListener } from "bun";
import { type Connection, loadTlsCode, SocketConnection } from "./connection.ts";
import { formatEndpoint } from "./endpoint.ts";
import { errorCode, NetError } from "./net-error.ts";
import type { ServerTlsOptions } from "./tls-upgrade.ts";

export interface ListenOptions {
  host: string;
  /** 0 picks a free port; Listener.port tells which. */
  port: number;
  /** Implicit TLS (smtps, RFC 8314): onConnection sees only connections whose handshake succeeded. */
  tls?: ServerTlsOptions;
  onConnection: (connection: Connection) => void;
  /** A connection that failed before onConnection (implicit TLS handshake); for logs. */
  onError?: (error: NetError, remote: string) => void;
  /** Implicit TLS: a client that does not finish the handshake in this time is dropped. */
  handshakeTimeoutMs?: number;
}

export interface Listener {
  readonly host: string;
  /** The actual port, also when 0 was asked. */
  readonly port: number;
  /** Connections accepted and not yet closed. */
  readonly openConnections: number;
  /**
   * Stop accepting, then resolve once every accepted connection has closed (the drivers close
   * theirs, e.g. after a 421). `force` destroys the ones still open instead of waiting.
   */
  close(options?: { force?: boolean }): Promise<void>;
}

/** Bounds a client that connects to the TLS port and never speaks; RFC 8314 gives no number. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;

function listenError(error: unknown, host: string, port: number): Error {
  const code = errorCode(error);
  const where = formatEndpoint(host, port);
  const reason =
    code === "EADDRINUSE"
      ? "address already in use"
      : code === "EACCES"
        ? "permission denied (ports below 1024 need privileges)"
        : code === "EADDRNOTAVAIL"
          ? "no such local address"
          : error instanceof Error
            ? error.message
            : String(error);
  return new Error(`cannot listen on ${where}: ${reason}`, { cause: error });
}

/** Listens; with a certificate, once the TLS code is loaded (see loadTlsCode). */
export async function listen(options: ListenOptions): Promise<Listener> {
  if (options.tls !== undefined) await loadTlsCode();
  return bind(options);
}

function bind(options: ListenOptions): Promise<Listener> {
  const open = new Set<SocketConnection>();
  let allClosed: (() => void) | undefined;
  const release = (connection: SocketConnection) => {
    open.delete(connection);
    if (open.size === 0) allClosed?.();
  };

  const handOver = (connection: SocketConnection) => {
    const tls = options.tls;
    if (tls === undefined) {
      options.onConnection(connection);
      return;
    }
    const handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    let timedOut = false;
    connection.setIdleTimeout(handshakeTimeoutMs, () => {
      timedOut = true;
      connection.destroy();
    });
    connection.awaitHandshake().then(
      () => {
        connection.setIdleTimeout(0, () => {});
        options.onConnection(connection);
      },
      (error: NetError) => {
        connection.destroy();
        const reported = timedOut
          ? new NetError(
              "timeout",
              `${connection.description}: no TLS handshake within ${handshakeTimeoutMs} ms`,
            )
          : error;
        options.onError?.(reported, `${connection.remoteAddress}:${connection.remotePort}`);
      },
    );
  };

  let server: TCPSocketListener<SocketConnection | undefined>;
  try {
    server = Bun.listen<SocketConnection | undefined>({
      hostname: options.host,
      port: options.port,
      ...(options.tls === undefined ? {} : { tls: { cert: options.tls.cert, key: options.tls.key } }),
      data: undefined,
      socket: {
        ...SocketConnection.handlers,
        open: (socket) => {
          const connection: SocketConnection = new SocketConnection(socket, "server", undefined, () =>
            release(connection),
          );
          open.add(connection);
          handOver(connection);
        },
      },
    });
  } catch (error) {
    return Promise.reject(listenError(error, options.host, options.port));
  }
  let stopped = false;
  return Promise.resolve({
    host: options.host,
    port: server.port,
    get openConnections() {
      return open.size;
    },
    close(closeOptions?: { force?: boolean }): Promise<void> {
      if (!stopped) {
        stopped = true;
        server.stop(false);
      }
      const drained = new Promise<void>((done) => {
        if (open.size === 0) done();
        else allClosed = done;
      });
      if (closeOptions?.force === true) for (const connection of open) connection.destroy();
      return drained;
    },
  });
}
