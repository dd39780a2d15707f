/**
 * What a delivery attempt means for each recipient, decided from the client's report alone (pure,
 * so every rule has a unit test): 2xx delivered, 4xx or trouble on the connection temporary,
 * 5xx permanent. The worker then turns "temporary" into deferred or, past max-age, failed.
 */
import type { SmtpClientError } from "../client/errors.ts";
import type { DeliveryResult } from "../client/smtp-client.ts";
import type { Reply } from "../core/reply.ts";
import type { ReplyRecord } from "./types.ts";

export type Verdict =
  | { kind: "delivered"; reply?: ReplyRecord }
  | { kind: "temporary"; status: string; reply?: ReplyRecord; error?: string }
  | { kind: "permanent"; status: string; reply?: ReplyRecord; error?: string };

export function replyRecord(reply: Reply): ReplyRecord {
  const record: ReplyRecord = { code: reply.code, text: reply.lines.join("\n") };
  if (reply.enhanced !== undefined) record.enhanced = reply.enhanced;
  return record;
}

/** RFC 3463 status for a reply: its enhanced code, or the class with "0.0" (X.0.0: other/undefined). */
export function statusOf(reply: Reply | ReplyRecord): string {
  if (reply.enhanced !== undefined) return reply.enhanced;
  return `${Math.floor(reply.code / 100)}.0.0`;
}

/** A reply's verdict: 2xx (and 3xx, which never ends a transaction) delivered; 5xx permanent; else temporary. */
function verdictForReply(reply: Reply): Verdict {
  const record = replyRecord(reply);
  if (reply.code >= 500) return { kind: "permanent", status: statusOf(reply), reply: record };
  if (reply.code >= 400) return { kind: "temporary", status: statusOf(reply), reply: record };
  return { kind: "delivered", reply: record };
}

/** The reply that stopped a transaction: never a success, whatever its code says. */
function verdictForFailure(reply: Reply): Verdict {
  const verdict = verdictForReply(reply);
  if (verdict.kind !== "delivered") return verdict;
  return { kind: "temporary", status: "4.0.0", reply: replyRecord(reply), error: "unexpected reply" };
}

function temporary(status: string, error: string): Verdict {
  return { kind: "temporary", status, error };
}

/**
 * One verdict per recipient of the transaction, in the envelope's order. A recipient the server
 * accepted shares the fate of the message (the reply after the data, or the one that stopped the
 * transaction before it); a refused one has its own RCPT reply.
 */
export function verdictsForResult(result: DeliveryResult, recipients: number): Verdict[] {
  const verdicts: Verdict[] = [];
  // A refused MAIL (or RSET) decides for everyone: pipelined RCPTs after it only get "503 bad sequence".
  if (result.failedStage === "mail" || result.failedStage === "rset") {
    const verdict =
      result.failedReply === undefined
        ? temporary("4.0.0", `the server gave no reply to ${result.failedStage.toUpperCase()}`)
        : verdictForFailure(result.failedReply);
    return Array.from({ length: recipients }, () => verdict);
  }
  for (let i = 0; i < recipients; i++) {
    const outcome = result.recipients[i];
    if (outcome?.reply !== undefined && !outcome.accepted) {
      verdicts.push(verdictForReply(outcome.reply));
      continue;
    }
    if (result.ok && result.final !== undefined) {
      verdicts.push(
        outcome?.accepted === true
          ? verdictForReply(result.final)
          : temporary("4.0.0", "the server never answered this recipient's RCPT"),
      );
      continue;
    }
    const decisive = result.failedReply;
    if (decisive !== undefined) verdicts.push(verdictForFailure(decisive));
    else verdicts.push(temporary("4.0.0", "the transaction ended without a final reply"));
  }
  return verdicts;
}

/** RFC 3463 subjects for failures that have no reply. */
const STATUS = {
  /** X.4.1 no answer from host. */
  noAnswer: "4.4.1",
  /** X.4.2 bad connection. */
  badConnection: "4.4.2",
  /** X.4.3 directory server (DNS) failure. */
  dnsFailure: "4.4.3",
  /** X.1.2 bad destination system address: no such domain. */
  noSuchDomain: "5.1.2",
  /** RFC 7505 §4.2: the domain publishes a null MX. */
  nullMx: "5.1.10",
  /** X.3.4 message too big for system. */
  tooBig: "5.3.4",
  /** X.6.3 conversion required but not supported. */
  conversion: "5.6.3",
  /** RFC 6531 §3.7.5: SMTPUTF8 needed but not offered. */
  utf8: "5.6.7",
  /** X.7.5 cryptographic failure. */
  tls: "4.7.5",
  /** X.7.8 authentication credentials invalid (RFC 4954), kept temporary: it is our configuration. */
  auth: "4.7.8",
  /** X.5.0 other protocol status. */
  protocol: "4.5.0",
} as const;

/**
 * The verdict for every recipient when the attempt failed as a whole: the connection could not
 * be made (or was lost), or the client refused the message before sending it. Only what no
 * retry can change is permanent: no such domain, a null MX, and a message the server cannot take.
 * A 5xx greeting or a refused AUTH is deferred, as Postfix does: it is the server's or our
 * configuration's problem, and another host or a fixed password will do.
 */
export function verdictForError(error: SmtpClientError): Verdict {
  const message = error.message;
  switch (error.kind) {
    case "size-exceeded":
      return { kind: "permanent", status: STATUS.tooBig, error: message };
    case "8bitmime-unsupported":
    case "binarymime-unsupported":
      return { kind: "permanent", status: STATUS.conversion, error: message };
    case "smtputf8-unsupported":
      return { kind: "permanent", status: STATUS.utf8, error: message };
    case "auth-failed":
    case "auth-unsupported":
    case "auth-plaintext":
      return temporary(STATUS.auth, message);
    case "tls-unavailable":
      return temporary(STATUS.tls, message);
    case "protocol":
      return temporary(STATUS.protocol, message);
    case "reply": {
      const reply = error.reply;
      return reply === undefined
        ? temporary(STATUS.noAnswer, message)
        : {
            kind: "temporary",
            status: `4.${statusOf(reply).slice(2)}`,
            reply: replyRecord(reply),
            error: message,
          };
    }
    default:
      break;
  }
  if (error.netKind === "dns") {
    if (!error.temporary) {
      return {
        kind: "permanent",
        status: /null MX/.test(message) ? STATUS.nullMx : STATUS.noSuchDomain,
        error: message,
      };
    }
    return temporary(STATUS.dnsFailure, message);
  }
  if (error.netKind === "tls-verify" || error.netKind === "tls-handshake")
    return temporary(STATUS.tls, message);
  if (error.kind === "closed" || error.netKind === "reset") return temporary(STATUS.badConnection, message);
  return temporary(STATUS.noAnswer, message);
}

/** True for errors raised before anything was sent: the connection is still good for the next message. */
export function leavesConnectionUsable(error: SmtpClientError): boolean {
  return (
    error.kind === "size-exceeded" ||
    error.kind === "8bitmime-unsupported" ||
    error.kind === "binarymime-unsupported" ||
    error.kind === "smtputf8-unsupported"
  );
}
