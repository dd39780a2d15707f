/**
 * From verdicts to what the queue records: deferred with the next attempt's time, or failed once
 * max-age has passed, and the notifications the sender asked for (RFC 3461 NOTIFY), queued in the
 * same transaction as the outcomes. Pure (time is passed in), so the policy is unit-tested.
 */

import { expired, retryDelay } from "./backoff.ts";
import { buildDsn, type DsnRecipient, wantsNotice } from "./dsn.ts";
import type { Verdict } from "./outcome.ts";
import type { QueueRoute } from "./route.ts";
import type { LeasedMessage, NewMessage, RecipientOutcome, Settlement } from "./types.ts";

/** RFC 3463 X.4.7: delivery time expired. */
export const EXPIRED_STATUS = "5.4.7";

export interface RetryPolicy {
  backoffMinMs: number;
  backoffMaxMs: number;
  maxAgeMs: number;
  /** Send one "delayed" notice once a message has waited this long; undefined: never. */
  delayWarningMs?: number;
  /** Reporting-MTA of notifications. */
  reportingMta: string;
  /** Where notifications go; default: the route of the message they report on. */
  noticeRoute?: QueueRoute;
}

function daysText(ms: number): string {
  const days = ms / 86_400_000;
  if (days >= 1) return `${Number(days.toFixed(1))} days`;
  const hours = ms / 3_600_000;
  if (hours >= 1) return `${Number(hours.toFixed(1))} hours`;
  return `${Math.round(ms / 1000)} seconds`;
}

export function outcomeFor(
  verdict: Verdict,
  attempts: number,
  message: Pick<LeasedMessage, "expiryBase">,
  now: number,
  policy: RetryPolicy,
  remoteMta: string | undefined,
): Exclude<RecipientOutcome, { state: "released" }> {
  const where = remoteMta === undefined ? {} : { remoteMta };
  const reply = verdict.reply === undefined ? {} : { reply: verdict.reply };
  if (verdict.kind === "delivered") return { state: "delivered", ...reply, ...where };
  const error = verdict.error === undefined ? {} : { error: verdict.error };
  if (verdict.kind === "permanent")
    return { state: "failed", status: verdict.status, ...reply, ...error, ...where };
  if (expired(message.expiryBase, now, policy.maxAgeMs)) {
    const last = verdict.error ?? (verdict.reply === undefined ? verdict.status : undefined);
    return {
      state: "failed",
      status: EXPIRED_STATUS,
      ...reply,
      error: `gave up after ${daysText(now - message.expiryBase)} in the queue${last === undefined ? "" : `; last: ${last}`}`,
      ...where,
    };
  }
  return {
    state: "deferred",
    nextAttempt: now + retryDelay(attempts + 1, policy.backoffMinMs, policy.backoffMaxMs),
    ...reply,
    ...error,
    ...where,
  };
}

function noticeRecipient(
  message: LeasedMessage,
  position: number,
  outcome: RecipientOutcome,
  now: number,
  policy: RetryPolicy,
): DsnRecipient | undefined {
  const recipient = message.envelope.recipients[position];
  if (recipient === undefined || (outcome.state !== "failed" && outcome.state !== "deferred"))
    return undefined;
  const base: DsnRecipient = {
    path: recipient.path,
    params: recipient.params,
    action: outcome.state === "failed" ? "failed" : "delayed",
    status:
      outcome.state === "failed"
        ? outcome.status
        : outcome.reply?.enhanced !== undefined
          ? outcome.reply.enhanced
          : "4.0.0",
    lastAttempt: now,
  };
  if (outcome.reply !== undefined) base.reply = outcome.reply;
  if (outcome.error !== undefined) base.error = outcome.error;
  if (outcome.remoteMta !== undefined) base.remoteMta = outcome.remoteMta;
  if (outcome.state === "deferred") base.willRetryUntil = message.expiryBase + policy.maxAgeMs;
  return base;
}

function notice(
  message: LeasedMessage,
  recipients: DsnRecipient[],
  now: number,
  policy: RetryPolicy,
): NewMessage {
  const dsn = buildDsn({
    reportingMta: policy.reportingMta,
    queueId: message.id,
    arrival: message.arrival,
    now,
    original: { from: message.envelope.from, mailParams: message.envelope.mailParams, raw: message.raw },
    recipients,
  });
  return {
    message: dsn.message,
    envelope: dsn.envelope,
    route: policy.noticeRoute ?? message.route,
    options: { kind: "dsn", arrival: now },
  };
}

/**
 * The settlement for one attempt at a leased message. `verdicts` follows the order of
 * `message.envelope.recipients`. No notification is made about a message from "<>" (a
 * notification itself, RFC 3461 §6.2) or for a recipient whose NOTIFY excludes it.
 */
export function planSettlement(
  message: LeasedMessage,
  verdicts: readonly Verdict[],
  remoteMta: string | undefined,
  owner: string,
  now: number,
  policy: RetryPolicy,
): Settlement {
  const recipients = message.recipientIndexes.map((index, position) => {
    const verdict = verdicts[position] ?? { kind: "temporary", status: "4.0.0", error: "not attempted" };
    return {
      index,
      outcome: outcomeFor(verdict, message.attempts[position] ?? 0, message, now, policy, remoteMta),
    };
  });
  const settlement: Settlement = { id: message.id, owner, at: now, recipients };
  if (message.envelope.from.mailbox === null) return settlement;

  const failed: DsnRecipient[] = [];
  const delayed: DsnRecipient[] = [];
  recipients.forEach(({ outcome }, position) => {
    const params = message.envelope.recipients[position]?.params;
    if (params === undefined) return;
    const entry = noticeRecipient(message, position, outcome, now, policy);
    if (entry === undefined) return;
    if (outcome.state === "failed" && wantsNotice(params, "failure")) failed.push(entry);
    if (outcome.state === "deferred" && wantsNotice(params, "delay")) delayed.push(entry);
  });
  const notifications: NewMessage[] = [];
  if (failed.length > 0) notifications.push(notice(message, failed, now, policy));
  const warnAfter = policy.delayWarningMs;
  if (
    warnAfter !== undefined &&
    !message.delayWarned &&
    delayed.length > 0 &&
    now - message.arrival >= warnAfter
  ) {
    notifications.push(notice(message, delayed, now, policy));
    settlement.delayWarned = true;
  }
  if (notifications.length > 0) settlement.notifications = notifications;
  return settlement;
}
