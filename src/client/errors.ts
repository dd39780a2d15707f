import type { ClientStage } from "../core/client-session.ts";
import { ProtocolError } from "../core/errors.ts";
import type { Reply } from "../core/reply.ts";
import { NetError, type NetErrorKind } from "../net/net-error.ts";

/** Where a client error happened: a reply stage, or the steps around them. */
export type ClientErrorStage = ClientStage | "connect" | "tls" | "message";

/**
 * What went wrong, in terms a command can turn into an exit code and the queue into a retry
 * decision (the mapping to sysexits lives in src/commands):
 * - network:   a NetError below SMTP (see `netKind`: refused, timeout, reset, dns, tls-verify, ...)
 * - timeout:   no reply within the RFC 5321 §4.5.3.2 time for `stage`
 * - closed:    the server closed the connection while a reply was awaited
 * - protocol:  a malformed or unexpected reply
 * - reply:     a negative reply at a stage outside a transaction (greeting, EHLO, STARTTLS, ...)
 * - auth-failed, auth-unsupported, auth-plaintext: AUTH refused by the server, not possible
 *   with it, or refused by us because the connection is not encrypted
 * - tls-unavailable: STARTTLS required but not offered (or refused with a reply)
 * - size-exceeded: the message is larger than the server's SIZE (RFC 1870)
 * - smtputf8-unsupported, 8bitmime-unsupported, binarymime-unsupported: the message needs an
 *   extension the server lacks
 * - aborted: the message stream failed on our side
 */
export type ClientErrorKind =
  | "network"
  | "timeout"
  | "closed"
  | "protocol"
  | "reply"
  | "auth-failed"
  | "auth-unsupported"
  | "auth-plaintext"
  | "tls-unavailable"
  | "size-exceeded"
  | "smtputf8-unsupported"
  | "8bitmime-unsupported"
  | "binarymime-unsupported"
  | "aborted";

export interface SmtpClientErrorDetails {
  reply?: Reply;
  netKind?: NetErrorKind;
  /** Trying again later could help (4xx, connection trouble); false for 5xx and local refusals. */
  temporary?: boolean;
  cause?: unknown;
}

export class SmtpClientError extends Error {
  override name = "SmtpClientError";
  readonly reply: Reply | undefined;
  readonly netKind: NetErrorKind | undefined;
  readonly temporary: boolean;

  constructor(
    readonly kind: ClientErrorKind,
    readonly stage: ClientErrorStage,
    message: string,
    details: SmtpClientErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.reply = details.reply;
    this.netKind = details.netKind;
    this.temporary = details.temporary ?? defaultTemporary(kind, details.reply);
  }
}

function defaultTemporary(kind: ClientErrorKind, reply: Reply | undefined): boolean {
  if (reply !== undefined) return reply.code >= 400 && reply.code < 500;
  return kind === "network" || kind === "timeout" || kind === "closed";
}

/**
 * Wraps what a connect, a handshake or a socket threw, keeping a NetError's kind for exit codes
 * and retry decisions; anything unclassified counts as a reset connection.
 */
export function networkError(stage: ClientErrorStage, error: unknown): SmtpClientError {
  if (error instanceof SmtpClientError) return error;
  if (error instanceof NetError) {
    return new SmtpClientError("network", stage, error.message, {
      netKind: error.kind,
      temporary: error.temporary,
      cause: error,
    });
  }
  if (error instanceof ProtocolError) {
    return new SmtpClientError("protocol", stage, error.message, { cause: error, temporary: true });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new SmtpClientError("network", stage, message, { netKind: "reset", cause: error });
}
