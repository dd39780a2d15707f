/**
 * An SMTP server: listeners from src/net, one core ServerSession per connection, and the
 * application's Backend. Connection limits and shutdown live here; the protocol lives in
 * src/core/server-session.ts and the per-connection I/O in server-connection.ts.
 */

import { randomBytes } from "node:crypto";
import { hostname as systemHostname } from "node:os";
import { cramMd5Challenge } from "../core/auth-server.ts";
import { formatReply } from "../core/reply-format.ts";
import { ClosingReplies } from "../core/server-replies.ts";
import { ServerSession, type ServerSessionOptions } from "../core/server-session.ts";
import { type Connection, loadTlsCode, type ServerTlsOptions } from "../net/connection.ts";
import { type Listener, listen } from "../net/listener.ts";
import type { Backend, SessionInfo } from "./backend.ts";
import { ServerConnection } from "./server-connection.ts";

/** RFC 5321 §4.5.3.2.7: a server should wait at least 5 minutes for the next command. */
export const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60 * 1000;
export const DEFAULT_MAX_CONNECTIONS = 100;
/** Time a shutdown gives transactions in flight before it cuts them off. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;
/** After the grace period's 421, how long a peer may take to close its side. */
const FORCE_CLOSE_AFTER_MS = 1_000;

export interface ListenAddress {
  host: string;
  /** 0 picks a free port (see SmtpServer.listeners). */
  port: number;
  /** Implicit TLS on this port (smtps, RFC 8314); needs `tls`. */
  implicitTls?: boolean;
}

export interface SmtpServerOptions {
  backend: Backend;
  /** Our name in the greeting and EHLO reply; defaults to the system's host name. */
  hostname?: string;
  greeting?: string;
  /** Default: 127.0.0.1:1025, where Mailpit and MailHog listen. */
  listen?: ListenAddress[];
  /** Certificate and key: offers STARTTLS on plain listeners and serves implicit-TLS ones. */
  tls?: ServerTlsOptions;
  maxSize?: number;
  maxRecipients?: number;
  maxErrors?: number;
  /** Connections at once; more get 421 and are closed. 0: no limit. */
  maxConnections?: number;
  /** Connections at once from one IP address; 0 (default): no limit. */
  maxConnectionsPerIp?: number;
  /** Idle time before 421 and close (RFC 5321 §4.5.3.2); 0 disables. */
  idleTimeoutMs?: number;
  requireAuth?: boolean;
  requireTls?: boolean;
  allowInsecureAuth?: boolean;
  /** SASL mechanisms to offer: PLAIN, LOGIN, CRAM-MD5 (default all three); [] for no AUTH. */
  authMechanisms?: string[];
  pipelining?: boolean;
  eightBitMime?: boolean;
  smtpUtf8?: boolean;
  chunking?: boolean;
  binaryMime?: boolean;
  dsn?: boolean;
  enhancedStatusCodes?: boolean;
  /** A backend method threw something other than SmtpError (the client got 451); for logs. */
  onError?: (error: unknown, session: SessionInfo) => void;
}

export interface BoundAddress {
  host: string;
  port: number;
  implicitTls: boolean;
}

export interface SmtpServer {
  readonly hostname: string;
  /** Where the server listens, with the actual ports. */
  readonly listeners: readonly BoundAddress[];
  /** Connections open right now. */
  readonly connections: number;
  /**
   * Stops accepting, lets transactions in flight finish for up to `graceMs` (idle sessions get
   * 421 at once), then closes what is left with 421. Resolves when every connection is closed.
   */
  close(graceMs?: number): Promise<void>;
}

const LOOPBACK = /^(?:127\.|::1$|::ffff:127\.)/;

/** Loopback peers may use plain-text AUTH without TLS: nobody can listen in on them. */
export function isLoopback(address: string): boolean {
  return LOOPBACK.test(address);
}

export async function startSmtpServer(options: SmtpServerOptions): Promise<SmtpServer> {
  const hostname = options.hostname ?? systemHostname();
  const addresses = options.listen ?? [{ host: "127.0.0.1", port: 1025 }];
  const tls = options.tls;
  // Loaded before any STARTTLS can be answered (see loadTlsCode).
  if (tls !== undefined) await loadTlsCode();
  for (const address of addresses) {
    if (address.implicitTls === true && tls === undefined) {
      throw new Error(`implicit TLS on ${address.host}:${address.port} needs a certificate and key`);
    }
  }
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const maxPerIp = options.maxConnectionsPerIp ?? 0;
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;

  // Shared by every session; only `secure` and `loopback` differ per connection.
  const sessionOptions: ServerSessionOptions = {
    hostname,
    startTls: tls !== undefined,
    cramChallenge: () => cramMd5Challenge(randomBytes(12).toString("hex"), Date.now(), hostname),
  };
  const copy = [
    "greeting",
    "maxSize",
    "maxRecipients",
    "maxErrors",
    "requireAuth",
    "requireTls",
    "allowInsecureAuth",
    "authMechanisms",
    "pipelining",
    "eightBitMime",
    "smtpUtf8",
    "chunking",
    "binaryMime",
    "dsn",
    "enhancedStatusCodes",
  ] as const;
  for (const key of copy) {
    if (options[key] !== undefined) Object.assign(sessionOptions, { [key]: options[key] });
  }

  const open = new Set<ServerConnection>();
  const perIp = new Map<string, number>();
  const idPrefix = randomBytes(3).toString("hex");
  let nextId = 0;
  let closing = false;
  const tooMany = new TextEncoder().encode(
    formatReply(421, "4.7.0", ClosingReplies.tooManyConnections(hostname).message),
  );
  const shuttingDown = new TextEncoder().encode(
    formatReply(421, "4.3.2", ClosingReplies.shuttingDown(hostname).message),
  );

  const released = (connection: ServerConnection) => {
    open.delete(connection);
    const ip = connection.info.remoteAddress;
    const count = (perIp.get(ip) ?? 1) - 1;
    if (count <= 0) perIp.delete(ip);
    else perIp.set(ip, count);
  };

  const accept = (connection: Connection, secure: boolean) => {
    if (closing) {
      connection.write(shuttingDown);
      connection.end();
      return;
    }
    const ip = connection.remoteAddress;
    const fromIp = perIp.get(ip) ?? 0;
    if ((maxConnections > 0 && open.size >= maxConnections) || (maxPerIp > 0 && fromIp >= maxPerIp)) {
      connection.write(tooMany);
      connection.end();
      return;
    }
    perIp.set(ip, fromIp + 1);
    const info: SessionInfo = {
      id: `${idPrefix}${(nextId++).toString(36)}`,
      remoteAddress: ip,
      remotePort: connection.remotePort,
      // Read only if asked: each is a system call, and nothing on the hot path asks.
      get localAddress() {
        return connection.localAddress;
      },
      get localPort() {
        return connection.localPort;
      },
    };
    if (connection.tls !== undefined) info.tls = connection.tls;
    const session = new ServerSession(sessionOptions, { secure, loopback: isLoopback(ip) });
    open.add(
      new ServerConnection(connection, session, info, {
        backend: options.backend,
        tls,
        idleTimeoutMs,
        onError: options.onError,
        onClosed: released,
      }),
    );
  };

  const listeners: Listener[] = [];
  const bound: BoundAddress[] = [];
  try {
    for (const address of addresses) {
      const implicitTls = address.implicitTls === true;
      const listener = await listen({
        host: address.host,
        port: address.port,
        ...(implicitTls && tls !== undefined ? { tls } : {}),
        onConnection: (connection) => accept(connection, implicitTls),
      });
      listeners.push(listener);
      bound.push({ host: listener.host, port: listener.port, implicitTls });
    }
  } catch (error) {
    await Promise.all(listeners.map((l) => l.close({ force: true })));
    throw error;
  }

  let closed: Promise<void> | undefined;
  return {
    hostname,
    listeners: bound,
    get connections() {
      return open.size;
    },
    close(graceMs = DEFAULT_SHUTDOWN_GRACE_MS): Promise<void> {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const finish = () => {
          if (timer !== undefined) clearTimeout(timer);
          timer = undefined;
          resolve();
        };
        Promise.all(listeners.map((l) => l.close())).then(finish);
        for (const connection of open) connection.shutdown();
        timer = setTimeout(() => {
          for (const connection of open) connection.forceClose();
          // A peer that ignores our FIN after the 421 is cut off.
          timer = setTimeout(() => {
            Promise.all(listeners.map((l) => l.close({ force: true }))).then(finish);
          }, FORCE_CLOSE_AFTER_MS);
        }, graceMs);
      });
      return closed;
    },
  };
}
