/**
 * Turns what the client reports into the DESIGN.md exit codes and one-line failures. Shared by
 * `send` and `sendmail`; the `--json` document is delivery-json.ts.
 */
import type { ClientErrorKind, SmtpClientError } from "../client/errors.ts";
import type { DomainDelivery } from "../client/mx-delivery.ts";
import { formatPath } from "../core/address.ts";
import type { Reply } from "../core/reply.ts";
import { NetError } from "../net/net-error.ts";
import { PIN_MISMATCH } from "../net/tls-fingerprint.ts";
import { ExitCode } from "./exit-codes.ts";

const ERROR_EXIT: Record<ClientErrorKind, ExitCode> = {
  network: ExitCode.tempFail,
  timeout: ExitCode.tempFail,
  closed: ExitCode.tempFail,
  protocol: ExitCode.protocol,
  reply: ExitCode.unavailable,
  "auth-failed": ExitCode.noPermission,
  "auth-unsupported": ExitCode.noPermission,
  "auth-plaintext": ExitCode.noPermission,
  "tls-unavailable": ExitCode.protocol,
  "size-exceeded": ExitCode.unavailable,
  "smtputf8-unsupported": ExitCode.dataError,
  "8bitmime-unsupported": ExitCode.dataError,
  "binarymime-unsupported": ExitCode.dataError,
  aborted: ExitCode.noInput,
};

export function exitCodeForError(error: SmtpClientError): ExitCode {
  if (error.kind === "network") {
    if (error.netKind === "dns") return ExitCode.noHost;
    if (error.netKind === "tls-verify") return ExitCode.noPermission;
    if (error.netKind === "tls-handshake") return ExitCode.protocol;
  }
  if (error.reply && error.reply.code >= 400 && error.reply.code < 500) return ExitCode.tempFail;
  return ERROR_EXIT[error.kind];
}

/** The exit code for one domain's delivery: DESIGN.md's table, read per stage. */
export function exitCodeForDelivery(delivery: DomainDelivery, allowPartial: boolean): ExitCode {
  if (delivery.error) return exitCodeForError(delivery.error);
  const result = delivery.result;
  if (!result) return ExitCode.tempFail;
  const refused = result.recipients.filter((r) => !r.accepted);
  // MAIL (or RSET) refused: no recipient was tried, so the MAIL reply decides, not the recipients.
  const beforeRecipients = result.failedStage === "mail" || result.failedStage === "rset";
  if (beforeRecipients && result.failedReply) {
    return result.failedReply.code >= 500 ? ExitCode.unavailable : ExitCode.tempFail;
  }
  if (result.failedStage === "rcpt" || (refused.length === result.recipients.length && refused.length > 0)) {
    const anyTemporary = refused.some((r) => (r.reply?.code ?? 400) < 500);
    return anyTemporary ? ExitCode.tempFail : ExitCode.allRecipientsRejected;
  }
  const decisive = result.failedReply;
  if (!result.ok || decisive) {
    if (decisive && decisive.code >= 500) return ExitCode.unavailable;
    return ExitCode.tempFail;
  }
  if (refused.length > 0 && !allowPartial) {
    return refused.some((r) => (r.reply?.code ?? 400) < 500)
      ? ExitCode.tempFail
      : ExitCode.allRecipientsRejected;
  }
  return ExitCode.ok;
}

/** The worst of several deliveries' codes: any failure beats success; a permanent one beats 75. */
export function combineExitCodes(codes: readonly ExitCode[]): ExitCode {
  const failures = codes.filter((c) => c !== ExitCode.ok);
  return failures.find((c) => c !== ExitCode.tempFail) ?? failures[0] ?? ExitCode.ok;
}

/** Every recipient of this domain was refused at RCPT (the server took part, nothing else failed). */
function onlyRecipientsRefused(delivery: DomainDelivery): boolean {
  const result = delivery.result;
  if (delivery.error || !result || result.recipients.length === 0) return false;
  return result.failedStage === "rcpt" || result.recipients.every((r) => !r.accepted);
}

/**
 * The exit code for a whole run, one delivery per domain (one in all through a smarthost). With
 * --allow-partial, a domain whose recipients were all refused is only part of a partial failure
 * when another domain took the message, just as refused recipients are within one domain.
 */
export function exitCodeForDeliveries(
  deliveries: readonly DomainDelivery[],
  allowPartial: boolean,
): ExitCode {
  const codes = deliveries.map((d) => exitCodeForDelivery(d, allowPartial));
  const someDelivered = codes.some((c) => c === ExitCode.ok);
  if (!allowPartial || !someDelivered) return combineExitCodes(codes);
  return combineExitCodes(codes.filter((_, i) => !onlyRecipientsRefused(deliveries[i] as DomainDelivery)));
}

/** What the user can do about an error, when there is something obvious. */
function hintFor(error: SmtpClientError): string {
  if (error.netKind === "tls-verify") {
    if (error.cause instanceof NetError && error.cause.code === PIN_MISMATCH)
      return "; compare --tls-fingerprint with the certificate's sha256 (smtpkit probe --insecure shows it)";
    return "; trust its CA with --ca FILE, check the name with --tls-servername, or accept it with --insecure";
  }
  if (error.kind === "auth-plaintext") return "; use --starttls always or --tls, or --allow-plaintext-auth";
  if (error.kind === "tls-unavailable")
    return "; the server does not offer STARTTLS: use --starttls never to send in clear";
  return "";
}

/** A reply as the server wrote it, on one line: code, enhanced code, text. */
function replyLine(reply: Reply): string {
  const text = reply.lines.join(" ").trim();
  return [String(reply.code), reply.enhanced, text]
    .filter((part) => part !== undefined && part !== "")
    .join(" ");
}

/** One line for a person: what failed and what to do about it. */
export function describeFailure(delivery: DomainDelivery): string | undefined {
  if (delivery.error) return `${delivery.error.message}${hintFor(delivery.error)}`;
  const result = delivery.result;
  if (!result) return undefined;
  const refused = result.recipients.filter((r) => !r.accepted);
  if (result.failedStage && result.failedStage !== "rcpt" && result.failedReply) {
    return `server refused the message at ${result.failedStage}: ${replyLine(result.failedReply)}`;
  }
  if (refused.length > 0) {
    const list = refused
      .map((r) => `${formatPath(r.path)} (${r.reply ? replyLine(r.reply) : "not tried"})`)
      .join(", ");
    return `${refused.length} of ${result.recipients.length} recipients refused: ${list}`;
  }
  return undefined;
}
