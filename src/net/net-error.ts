/**
 * What went wrong below SMTP: the kind drives exit codes and retry decisions, the message is one
 * line a person can act on. Commands map kinds to sysexits (refused/timeout/reset/unreachable 75,
 * dns 68, tls-verify 77, tls-handshake 76).
 */
export type NetErrorKind =
  | "refused"
  | "timeout"
  | "reset"
  | "unreachable"
  | "dns"
  | "tls-verify"
  | "tls-handshake";

export class NetError extends Error {
  override name = "NetError";

  constructor(
    readonly kind: NetErrorKind,
    message: string,
    /** The system or library code behind it (ECONNREFUSED, ENOTFOUND, CERT_HAS_EXPIRED ...), when there is one. */
    readonly code?: string,
    /** False when trying again later cannot help (no such domain, null MX, a certificate that does not verify). */
    readonly temporary: boolean = kind !== "dns" && kind !== "tls-verify",
  ) {
    super(message);
  }
}

// Arrays, not Sets: a Set costs a one-message `send` more at start-up (its first use, and heap
// blocks: each fresh page is a fault of about 10 µs on the machines we measured).
const REFUSED = ["ECONNREFUSED"];
const TIMEOUT = ["ETIMEDOUT", "ETIMEOUT"];
const RESET = ["ECONNRESET", "EPIPE", "ECONNABORTED", "ERR_STREAM_DESTROYED", "ERR_SOCKET_CLOSED"];
const UNREACHABLE = ["EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "ENETDOWN", "EADDRNOTAVAIL"];
const DNS = ["ENOTFOUND", "EAI_AGAIN", "EAI_NONAME", "EAI_FAIL", "ENODATA", "ESERVFAIL", "EREFUSED"];

/** OpenSSL's X.509 verification results, as Node reports them in `authorizationError`. */
const VERIFY_MESSAGES: Record<string, string> = {
  CERT_HAS_EXPIRED: "certificate has expired",
  CERT_NOT_YET_VALID: "certificate is not yet valid",
  DEPTH_ZERO_SELF_SIGNED_CERT: "self-signed certificate",
  SELF_SIGNED_CERT_IN_CHAIN: "self-signed certificate in certificate chain",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "unable to verify the first certificate: issuer not trusted",
  UNABLE_TO_GET_ISSUER_CERT: "unable to get issuer certificate",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "unable to get local issuer certificate: CA not trusted",
  CERT_SIGNATURE_FAILURE: "certificate signature failure",
  CERT_REVOKED: "certificate revoked",
  CERT_UNTRUSTED: "certificate not trusted",
  CERT_REJECTED: "certificate rejected",
  INVALID_CA: "invalid CA certificate",
  INVALID_PURPOSE: "unsupported certificate purpose",
  PATH_LENGTH_EXCEEDED: "path length constraint exceeded",
  HOSTNAME_MISMATCH: "hostname mismatch",
  ERR_TLS_CERT_ALTNAME_INVALID: "the certificate is not valid for this name",
};

/** A one-line description of a certificate verification code, with the code for searching. */
export function describeVerifyError(code: string): string {
  const text = VERIFY_MESSAGES[code];
  return text === undefined ? code : `${text} (${code})`;
}

export function isVerifyErrorCode(code: string): boolean {
  return code in VERIFY_MESSAGES;
}

/** The `code` a Node error carries (ECONNREFUSED, ENOTFOUND, EADDRINUSE ...), when it has one. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "code" in error && typeof error.code === "string") {
    return error.code;
  }
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Classify a socket-level error. `what` names the operation for the message, e.g.
 * "connection to mx.example.com:25".
 */
export function toNetError(error: unknown, what: string): NetError {
  if (error instanceof NetError) return error;
  const code = errorCode(error);
  if (code !== undefined) {
    if (REFUSED.includes(code)) return new NetError("refused", `${what} refused`, code);
    if (TIMEOUT.includes(code)) return new NetError("timeout", `${what} timed out`, code);
    if (RESET.includes(code)) return new NetError("reset", `${what} reset by peer`, code);
    if (UNREACHABLE.includes(code))
      return new NetError("unreachable", `${what} failed: network unreachable`, code);
    if (DNS.includes(code))
      return new NetError("dns", `${what} failed: host not found`, code, code === "EAI_AGAIN");
    if (isVerifyErrorCode(code)) {
      return new NetError(
        "tls-verify",
        `${what}: certificate did not verify: ${describeVerifyError(code)}`,
        code,
      );
    }
    if (code.startsWith("ERR_SSL") || code.startsWith("ERR_TLS")) {
      return new NetError("tls-handshake", `${what}: TLS handshake failed: ${messageOf(error)}`, code);
    }
  }
  return new NetError("reset", `${what} failed: ${messageOf(error)}`, code);
}
