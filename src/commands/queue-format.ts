/**
 * What `smtpkit queue` prints: text for people (in the spirit of Postfix's mailq) and the JSON
 * documents of --json. Pure functions of queue data and the time, so they are tested as such.
 */
import { formatMailbox, type Path } from "../core/address.ts";
import type { AttemptReport } from "../queue/delivery-engine.ts";
import { describeDestination, type QueueRoute } from "../queue/route.ts";
import type {
  QueueAttempt,
  QueueEntry,
  QueueRecipient,
  QueueStats,
  RecipientOutcome,
  RecipientState,
  ReplyRecord,
} from "../queue/types.ts";

/** What a message as a whole is doing, for one word in a listing. */
export type MessageState = RecipientState | "held";

const PENDING: readonly RecipientState[] = ["queued", "active", "deferred"];

export function addressText(path: Path): string {
  return path.mailbox === null ? "" : formatMailbox(path.mailbox);
}

/** held > active > deferred > queued > failed > delivered: the state that needs attention first. */
export function messageState(entry: QueueEntry): MessageState {
  const states = new Set(entry.recipients.map((r) => r.state));
  if (entry.held && PENDING.some((s) => states.has(s))) return "held";
  for (const state of ["active", "deferred", "queued", "failed"] as const)
    if (states.has(state)) return state;
  return "delivered";
}

export function recipientState(entry: QueueEntry, recipient: QueueRecipient): MessageState {
  return entry.held && PENDING.includes(recipient.state) ? "held" : recipient.state;
}

export function replyLine(reply: ReplyRecord): string {
  const text = reply.text.split("\n").join(" ").trim();
  return `${reply.code}${reply.enhanced === undefined ? "" : ` ${reply.enhanced}`}${text === "" ? "" : ` ${text}`}`;
}

/** "42s", "5m", "3h", "2d": coarse, as mailq readers want it. */
export function ageText(ms: number): string {
  return durationText(Math.max(0, Math.floor(ms / 1000)));
}

/** A time still to come, rounded up so "300 s from now" reads 5m, not 4m. */
export function untilText(ms: number): string {
  return durationText(Math.max(0, Math.ceil(ms / 1000 - 0.5)));
}

function durationText(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function routeText(route: QueueRoute): string {
  if (route.kind === "mx") return `MX${route.port === undefined ? "" : ` (port ${route.port})`}`;
  const scheme = route.implicitTls === true ? "smtps" : "smtp";
  const user = route.auth === undefined ? "" : `${route.auth.username}@`;
  const host = route.host.includes(":") ? `[${route.host}]` : route.host;
  return `${scheme}://${user}${host}:${route.port}${route.starttls === undefined ? "" : ` (STARTTLS ${route.starttls})`}`;
}

/** The last problem of a recipient, as one line. */
function lastProblem(recipient: QueueRecipient): string | undefined {
  if (recipient.state === "delivered") return undefined;
  if (recipient.lastReply !== null) return replyLine(recipient.lastReply);
  return recipient.lastError ?? undefined;
}

export function recipientJson(entry: QueueEntry, recipient: QueueRecipient) {
  return {
    address: addressText(recipient.path),
    state: recipientState(entry, recipient),
    destination: describeDestination(recipient.destination),
    attempts: recipient.attempts,
    nextAttempt: iso(PENDING.includes(recipient.state) ? recipient.nextAttempt : null),
    lastAttempt: iso(recipient.lastAttempt),
    lastReply: recipient.lastReply,
    lastError: recipient.lastError,
    remoteMta: recipient.remoteMta,
    status: recipient.status,
  };
}

export function routeJson(route: QueueRoute) {
  if (route.kind === "mx") return { kind: "mx" as const, port: route.port ?? null };
  return {
    kind: "smarthost" as const,
    host: route.host,
    port: route.port,
    implicitTls: route.implicitTls === true,
    starttls: route.starttls ?? "auto",
    user: route.auth?.username ?? null,
  };
}

/** One message of `queue list --json`. */
export function messageJson(entry: QueueEntry, now: number) {
  return {
    id: entry.id,
    arrival: new Date(entry.arrival).toISOString(),
    ageSeconds: Math.max(0, Math.floor((now - entry.arrival) / 1000)),
    size: entry.size,
    sender: addressText(entry.from),
    kind: entry.kind,
    held: entry.held,
    state: messageState(entry),
    route: routeJson(entry.route),
    recipients: entry.recipients.map((r) => recipientJson(entry, r)),
  };
}

const LIST_HEADER = `${"ID".padEnd(17)} ${"AGE".padStart(5)} ${"SIZE".padStart(9)}  SENDER`;

/** `queue list` / `mailq`: a line per message, then one per recipient with its state and last error. */
export function listText(entries: readonly QueueEntry[], now: number): string {
  if (entries.length === 0) return "Mail queue is empty\n";
  const lines = [LIST_HEADER];
  let bytes = 0;
  for (const entry of entries) {
    bytes += entry.size;
    const sender = entry.from.mailbox === null ? "<>" : addressText(entry.from);
    const tag = entry.kind === "dsn" ? "  (delivery notification)" : "";
    lines.push(
      `${entry.id.padEnd(17)} ${ageText(now - entry.arrival).padStart(5)} ${String(entry.size).padStart(9)}  ${sender}${tag}`,
    );
    for (const recipient of entry.recipients) {
      const problem = lastProblem(recipient);
      const state = recipientState(entry, recipient).padEnd(9);
      lines.push(
        `    ${state} ${addressText(recipient.path)}${problem === undefined ? "" : `  (${problem})`}`,
      );
    }
  }
  const count = entries.length;
  lines.push(`-- ${bytes} octets in ${count} message${count === 1 ? "" : "s"}`);
  return `${lines.join("\n")}\n`;
}

export function attemptJson(attempt: QueueAttempt, entry: QueueEntry | undefined) {
  const recipient = entry?.recipients.find((r) => r.index === attempt.recipientIndex);
  return {
    recipient: recipient === undefined ? null : addressText(recipient.path),
    at: new Date(attempt.at).toISOString(),
    state: attempt.state,
    reply: attempt.reply,
    error: attempt.error,
    remoteMta: attempt.remoteMta,
  };
}

function mailParamsText(entry: QueueEntry): string {
  const p = entry.mailParams;
  const words: string[] = [];
  if (p.body !== undefined) words.push(`BODY=${p.body}`);
  if (p.smtpUtf8 === true) words.push("SMTPUTF8");
  if (p.ret !== undefined) words.push(`RET=${p.ret}`);
  if (p.envid !== undefined) words.push(`ENVID=${p.envid}`);
  return words.join(" ");
}

/** `queue show ID`: the envelope, each recipient's state, and every attempt. */
export function showText(entry: QueueEntry, attempts: readonly QueueAttempt[], now: number): string {
  const params = mailParamsText(entry);
  const lines = [
    `Queue ID:   ${entry.id}${entry.kind === "dsn" ? " (delivery notification)" : ""}`,
    `Arrival:    ${new Date(entry.arrival).toISOString()} (${ageText(now - entry.arrival)} ago)`,
    `Size:       ${entry.size} octets`,
    `Sender:     <${addressText(entry.from)}>${params === "" ? "" : `  ${params}`}`,
    `Route:      ${routeText(entry.route)}`,
    `State:      ${messageState(entry)}${entry.delayWarned ? " (delay notice sent)" : ""}`,
    "Recipients:",
  ];
  for (const recipient of entry.recipients) {
    const state = recipientState(entry, recipient);
    const notify =
      recipient.params.notify === undefined ? "" : `  NOTIFY=${recipient.params.notify.join(",")}`;
    lines.push(`  <${addressText(recipient.path)}>  ${state}${notify}`);
    const facts = [
      `attempts ${recipient.attempts}`,
      `destination ${describeDestination(recipient.destination)}`,
    ];
    if (PENDING.includes(recipient.state) && recipient.nextAttempt !== null) {
      facts.push(
        `${recipient.state === "active" ? "lease until" : "next attempt"} ${new Date(recipient.nextAttempt).toISOString()}`,
      );
    }
    if (recipient.status !== null) facts.push(`status ${recipient.status}`);
    lines.push(`      ${facts.join(", ")}`);
    const problem = lastProblem(recipient);
    if (problem !== undefined) lines.push(`      last: ${problem}`);
  }
  lines.push(attempts.length === 0 ? "Attempts:   none yet" : "Attempts:");
  for (const attempt of attempts) {
    const recipient = entry.recipients.find((r) => r.index === attempt.recipientIndex);
    const what = attempt.reply !== null ? replyLine(attempt.reply) : (attempt.error ?? "");
    const where = attempt.remoteMta === null ? "" : ` (${attempt.remoteMta})`;
    lines.push(
      `  ${new Date(attempt.at).toISOString()}  <${recipient === undefined ? "?" : addressText(recipient.path)}>  ${attempt.state}${where}${what === "" ? "" : `: ${what}`}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** One line per recipient of an attempt, as `queue run` logs and `queue flush` prints them. */
export function attemptLines(report: AttemptReport, now: number): string[] {
  return report.recipients
    .map(({ address, outcome }) => {
      const via = report.remoteMta === undefined ? "" : ` via ${report.remoteMta}`;
      const why = outcomeReason(outcome);
      let line = `${report.id}: <${address}> ${outcome.state}${via}${why === undefined ? "" : ` (${why})`}`;
      if (outcome.state === "deferred") line += `, next attempt in ${untilText(outcome.nextAttempt - now)}`;
      if (outcome.state === "failed") line += `, status ${outcome.status}`;
      return line;
    })
    .concat(report.notices.map((id) => `${report.id}: delivery notification ${id} queued for the sender`));
}

function outcomeReason(outcome: Exclude<RecipientOutcome, { state: "released" }>): string | undefined {
  if (outcome.reply !== undefined) return replyLine(outcome.reply);
  return outcome.state === "delivered" ? undefined : outcome.error;
}

export function attemptReportJson(report: AttemptReport) {
  return {
    id: report.id,
    destination: report.destination,
    at: new Date(report.at).toISOString(),
    remoteMta: report.remoteMta ?? null,
    recipients: report.recipients.map(({ address, outcome }) => ({
      address,
      state: outcome.state,
      reply: outcome.reply ?? null,
      error: outcome.state === "delivered" ? null : (outcome.error ?? null),
      nextAttempt: outcome.state === "deferred" ? new Date(outcome.nextAttempt).toISOString() : null,
      status: outcome.state === "failed" ? outcome.status : null,
    })),
    notices: report.notices,
  };
}

export function statsJson(stats: QueueStats, now: number) {
  return {
    messages: stats.messages,
    held: stats.held,
    bytes: stats.bytes,
    recipients: stats.recipients,
    destinations: stats.destinations.map((d) => ({
      destination: describeDestination(d.destination),
      recipients: d.recipients,
    })),
    oldest:
      stats.oldest === null
        ? null
        : {
            id: stats.oldest.id,
            arrival: new Date(stats.oldest.arrival).toISOString(),
            ageSeconds: Math.max(0, Math.floor((now - stats.oldest.arrival) / 1000)),
          },
  };
}

const STAT_COLUMNS = ["queued", "active", "deferred", "held", "failed"] as const;

export function statsText(stats: QueueStats, now: number): string {
  const oldest =
    stats.oldest === null ? "" : `, oldest ${stats.oldest.id} (${ageText(now - stats.oldest.arrival)})`;
  const lines = [
    `messages:   ${stats.messages} (${stats.held} held), ${stats.bytes} octets${oldest}`,
    `recipients: ${STAT_COLUMNS.map((c) => `${c} ${stats.recipients[c]}`).join(", ")}`,
  ];
  if (stats.destinations.length > 0) {
    const names = stats.destinations.map((d) => describeDestination(d.destination));
    const width = Math.max(11, ...names.map((n) => n.length));
    lines.push("", `${"destination".padEnd(width)} ${STAT_COLUMNS.map((c) => c.padStart(8)).join(" ")}`);
    stats.destinations.forEach((d, i) => {
      lines.push(
        `${(names[i] ?? "").padEnd(width)} ${STAT_COLUMNS.map((c) => String(d.recipients[c]).padStart(8)).join(" ")}`,
      );
    });
  }
  return `${lines.join("\n")}\n`;
}
