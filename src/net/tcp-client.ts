import type { TLSOptions } from "bun";
import { type Connection, loadTlsCode, SocketConnection } from "./connection.ts";
import type { Resolver } from "./dns.ts";
import { formatEndpoint, ipVersion } from "./endpoint.ts";
import { NetError, toNetError } from "./net-error.ts";
import type { ClientTlsOptions } from "./tls-upgrade.ts";

export interface ConnectOptions {
  /** A host name or an IP address. */
  host: string;
  port: number;
  family?: 4 | 6;
  /** For the TCP connect plus, with `tls`, the handshake; per address tried. */
  timeoutMs?: number;
  /** Implicit TLS (port 465, RFC 8314): the handshake starts as soon as TCP is up. */
  tls?: ClientTlsOptions;
  /**
   * Look the host name up here instead of the system resolver, and try its addresses in order
   * until one answers (RFC 5321 §5.1). Without it, the operating system resolves the name.
   */
  resolver?: Resolver;
}

/** RFC 5321 §4.5.3.2 sets no connect timeout; this bounds a black-holed address (SYNs unanswered). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** `tlsOptions`: Bun's options for implicit TLS, built by connect() once the TLS code is loaded. */
function connectAddress(
  address: string,
  name: string,
  options: ConnectOptions,
  timeoutMs: number,
  tlsOptions?: TLSOptions,
): Promise<SocketConnection> {
  const what =
    address === name
      ? `connection to ${formatEndpoint(address, options.port)}`
      : `connection to ${name} (${formatEndpoint(address, options.port)})`;
  return new Promise((resolve, reject) => {
    let settled = false;
    let connection: SocketConnection | undefined;
    const fail = (error: NetError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      connection?.destroy();
      reject(error);
    };
    const timer = setTimeout(() => {
      const stage = connection === undefined ? what : `TLS handshake on ${what}`;
      fail(new NetError("timeout", `${stage} timed out after ${timeoutMs} ms`, "ETIMEDOUT"));
    }, timeoutMs);
    const done = (opened: SocketConnection) => {
      if (settled) {
        opened.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      resolve(opened);
    };
    const tls = options.tls;
    Bun.connect<SocketConnection | undefined>({
      hostname: address,
      port: options.port,
      data: undefined,
      ...(tlsOptions === undefined ? {} : { tls: tlsOptions }),
      socket: {
        ...SocketConnection.handlers,
        open: (socket) => {
          // An IPv4 address is reported as dialed; an IPv6 one is read back in the socket's canonical form.
          const dialed = ipVersion(address) === 4 ? { address, port: options.port } : undefined;
          const opened = new SocketConnection(socket, "client", name, undefined, dialed);
          // A connect that timed out and completed later is closed at once.
          if (settled) {
            opened.destroy();
            return;
          }
          connection = opened;
          if (tls === undefined) done(opened);
          else
            opened.awaitHandshake(tls).then(
              () => done(opened),
              (error: unknown) => fail(toNetError(error, what)),
            );
        },
        connectError: (_socket, error) => fail(toNetError(error, what)),
      },
    }).catch((error: unknown) => fail(toNetError(error, what)));
  });
}

/**
 * Open a TCP connection, with implicit TLS if asked. Rejects with a NetError whose kind says what
 * failed: refused, timeout, reset, unreachable, dns, tls-verify, tls-handshake.
 */
export async function connect(options: ConnectOptions): Promise<Connection> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const tls =
    options.tls === undefined ? undefined : (await loadTlsCode()).clientTlsOptions(options.tls, options.host);
  if (ipVersion(options.host) !== 0)
    return connectAddress(options.host, options.host, options, timeoutMs, tls);
  if (options.resolver === undefined) {
    if (options.family === undefined)
      return connectAddress(options.host, options.host, options, timeoutMs, tls);
    // Bun.connect takes no address family: the system resolver picks the address for -4/-6.
    const { lookup } = await import("node:dns/promises");
    const found = await lookup(options.host, { family: options.family }).catch((error: unknown) => {
      throw toNetError(error, `connection to ${formatEndpoint(options.host, options.port)}`);
    });
    return connectAddress(found.address, options.host, options, timeoutMs, tls);
  }
  const addresses = await options.resolver.resolveAddresses(options.host, options.family);
  let lastError: unknown;
  for (const address of addresses) {
    try {
      return await connectAddress(address, options.host, options, timeoutMs, tls);
    } catch (error) {
      // A certificate problem is the host's, not the address's: another address will not fix it.
      if (error instanceof NetError && error.kind === "tls-verify") throw error;
      lastError = error;
    }
  }
  throw lastError ?? new NetError("dns", `${options.host} has no address`, "ENODATA", false);
}
