import type { TLSOptions } from "bun";
import { errorCode, NetError, toNetError } from "./net-error.ts";
import { PIN_MISMATCH } from "./tls-fingerprint.ts";
import { sniFor, type TlsInfo } from "./tls-info.ts";

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
  /** Trust exactly the certificate with this SHA-256 fingerprint ("AA:BB:..."), and no other (tls-fingerprint.ts). */
  fingerprint?: string;
}

export interface ServerTlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
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
 * The client's verdict on a finished handshake. Verification is done here rather than by the TLS
 * library so that `insecure` can still report the reason, and so that a failure is a NetError of
 * kind "tls-verify" with the names in its message and the verification code as its code.
 */
export function verifiedOrThrow(
  info: TlsInfo,
  verifyError: Error | null,
  what: string,
  fingerprint?: string,
): TlsInfo {
  if (fingerprint !== undefined) {
    const presented = info.chain[0]?.fingerprintSha256;
    if (presented === fingerprint) {
      info.pinned = true;
      return info;
    }
    throw new NetError(
      "tls-verify",
      `${what}: the certificate is not the pinned one: its SHA-256 fingerprint is ${presented ?? "unknown"}`,
      PIN_MISMATCH,
    );
  }
  if (info.authorized) return info;
  throw new NetError(
    "tls-verify",
    `${what}: certificate did not verify: ${info.authorizationError ?? "unknown reason"}`,
    info.chainVerified ? "ERR_TLS_CERT_ALTNAME_INVALID" : errorCode(verifyError),
  );
}

/** Verification is ours (tls-info.ts), so the handshake itself never fails on the certificate. */
export function clientTlsOptions(options: ClientTlsOptions, defaultName: string | undefined): TLSOptions {
  return {
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    // "" sends no SNI; left out, Bun would send the address connected to, IP literals included.
    serverName: sniFor(options.servername ?? defaultName) ?? "",
    rejectUnauthorized: false,
  };
}
