import type * as net from "node:net";
import * as tls from "node:tls";
import { NetError, toNetError } from "./net-error.ts";
import { sniFor, type TlsInfo, tlsInfoOf } from "./tls-info.ts";

export interface ClientTlsOptions {
  /** The name the server's certificate must carry; defaults to the host connected to. Sent as SNI unless it is an IP address. */
  servername?: string;
  /** Trusted CA certificates (PEM); replaces the system set, as in node:tls. */
  ca?: string | Buffer;
  /** A client certificate and key, for servers that ask for one. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Verify but do not fail: the handshake completes and TlsInfo reports authorized=false with the reason. */
  insecure?: boolean;
}

export interface ServerTlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
}

/** The TLS socket exists at once (so the caller can watch it close); `handshake` settles when it is usable. */
export interface TlsUpgrade {
  socket: tls.TLSSocket;
  handshake: Promise<TlsInfo>;
}

/**
 * Building a secure context parses the key and certificate; a server upgrading thousands of
 * connections with the same options object must do that once.
 */
const serverContexts = new WeakMap<ServerTlsOptions, tls.SecureContext>();

export function secureContextFor(options: ServerTlsOptions): tls.SecureContext {
  let context = serverContexts.get(options);
  if (context === undefined) {
    context = tls.createSecureContext({ cert: options.cert, key: options.key });
    serverContexts.set(options, context);
  }
  return context;
}

/** Classify an error seen during a handshake: socket failures keep their kind, the rest is TLS's complaint. */
export function handshakeError(error: unknown, what: string): NetError {
  const netError = toNetError(error, what);
  const socketFailure = netError.kind !== "reset" || /^E[A-Z]+$/.test(netError.code ?? "");
  if (socketFailure) return netError;
  const text = error instanceof Error ? error.message : String(error);
  return new NetError("tls-handshake", `${what}: TLS handshake failed: ${text}`, netError.code);
}

/**
 * Settle once on the first of: handshake done, error, close. Listeners are removed afterwards so
 * only the caller's remain.
 */
function awaitHandshake(
  socket: tls.TLSSocket,
  doneEvent: "secureConnect" | "secure",
  what: string,
  onSecure: () => TlsInfo,
): Promise<TlsInfo> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      socket.off(doneEvent, onDone);
      socket.off("error", onError);
      socket.off("close", onClose);
    };
    const onDone = () => {
      cleanup();
      try {
        resolve(onSecure());
      } catch (error) {
        // Destroying with the error lets the connection's close handler report it too.
        socket.destroy(error instanceof Error ? error : undefined);
        reject(error);
      }
    };
    const onError = (error: Error) => {
      cleanup();
      socket.destroy();
      reject(handshakeError(error, what));
    };
    const onClose = () => {
      cleanup();
      reject(new NetError("tls-handshake", `${what}: connection closed during the TLS handshake`));
    };
    socket.once(doneEvent, onDone);
    socket.once("error", onError);
    socket.once("close", onClose);
  });
}

/**
 * Client side of TLS over an open socket (implicit TLS right after connect, or after STARTTLS's 220).
 * Verification is done here rather than by node:tls so that `insecure` can still report the reason,
 * and so that a failure is a NetError of kind "tls-verify" with the names in its message.
 */
export function upgradeClient(
  plain: net.Socket,
  options: ClientTlsOptions,
  defaultName: string | undefined,
  what: string,
): TlsUpgrade {
  const expectedName = options.servername ?? defaultName;
  const socket = tls.connect({
    socket: plain,
    servername: sniFor(expectedName),
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    rejectUnauthorized: false,
  });
  const handshake = awaitHandshake(socket, "secureConnect", what, () => {
    const info = tlsInfoOf(socket, { expectedName });
    if (!info.authorized && options.insecure !== true) {
      // The code of the reason the message gives: the chain's error first, else the name.
      const code = info.chainVerified ? "ERR_TLS_CERT_ALTNAME_INVALID" : socket.authorizationError;
      throw new NetError(
        "tls-verify",
        `${what}: certificate did not verify: ${info.authorizationError ?? "unknown reason"}`,
        code === null || code === undefined ? undefined : String(code),
      );
    }
    return info;
  });
  return { socket, handshake };
}

/** Server side of TLS over an accepted socket (implicit TLS, or after answering STARTTLS with 220). */
export function upgradeServer(plain: net.Socket, options: ServerTlsOptions, what: string): TlsUpgrade {
  const socket = new tls.TLSSocket(plain, { isServer: true, secureContext: secureContextFor(options) });
  return { socket, handshake: awaitHandshake(socket, "secure", what, () => tlsInfoOf(socket, undefined)) };
}
