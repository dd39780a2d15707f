/**
 * The queue's read-only reports for `queue list`, `show` and `stats`: plain queries over the
 * SQLite tables, kept apart from the write paths of sqlite-queue.ts.
 */
import type { Database } from "bun:sqlite";
import type { Path } from "../core/address.ts";
import type { MailParams } from "../core/esmtp-params.ts";
import type { QueueRoute } from "./route.ts";
import {
  emptyCounts,
  IN_SELECTION,
  type MessageRow,
  parseReply,
  type RecipientRow,
  recipientFromRow,
  selectionParam,
} from "./sqlite-statements.ts";
import type {
  ListOptions,
  MessageKind,
  QueueAttempt,
  QueueEntry,
  QueueId,
  QueueRecipient,
  QueueStats,
  RecipientState,
} from "./types.ts";

/** Messages with all their recipients, oldest first. */
export function listEntries(
  db: Database,
  options: ListOptions,
  routeById: (id: number) => QueueRoute,
): QueueEntry[] {
  const selection = selectionParam(options);
  const messages = db
    .query<MessageRow, [string | null]>(
      "SELECT * FROM messages WHERE (?1 IS NULL OR id IN (SELECT value FROM json_each(?1))) ORDER BY id",
    )
    .all(selection);
  const recipients = db
    .query<RecipientRow, [string | null]>(
      `SELECT * FROM recipients r WHERE ${IN_SELECTION} ORDER BY r.message_id, r.idx`,
    )
    .all(selection);
  const byMessage = new Map<string, QueueRecipient[]>();
  for (const row of recipients) {
    const list = byMessage.get(row.message_id) ?? [];
    if (list.length === 0) byMessage.set(row.message_id, list);
    list.push(recipientFromRow(row));
  }
  return messages.map((row) => ({
    id: row.id,
    arrival: row.arrival,
    size: row.size,
    from: JSON.parse(row.sender) as Path,
    mailParams: JSON.parse(row.mail_params) as MailParams,
    route: routeById(row.route_id),
    kind: row.kind as MessageKind,
    held: row.held === 1,
    delayWarned: row.delay_warned === 1,
    recipients: byMessage.get(row.id) ?? [],
  }));
}

interface AttemptRow {
  idx: number;
  at: number;
  state: QueueAttempt["state"];
  reply: string | null;
  error: string | null;
  remote_mta: string | null;
}

/** A message's undelivered attempts, oldest first. */
export function listAttempts(db: Database, id: QueueId): QueueAttempt[] {
  return db
    .query<AttemptRow, [string]>(
      "SELECT idx, at, state, reply, error, remote_mta FROM attempts WHERE message_id = ? ORDER BY rowid",
    )
    .all(id)
    .map((row) => ({
      recipientIndex: row.idx,
      at: row.at,
      state: row.state,
      reply: parseReply(row.reply),
      error: row.error,
      remoteMta: row.remote_mta,
    }));
}

/** Counts by state, overall and per destination; held messages' pending recipients count as held. */
export function queueStats(db: Database): QueueStats {
  const totals = db
    .query<{ messages: number; held: number | null; bytes: number | null }, []>(
      "SELECT COUNT(*) AS messages, SUM(held) AS held, SUM(size) AS bytes FROM messages",
    )
    .get();
  const oldest = db
    .query<{ id: string; arrival: number }, []>("SELECT id, arrival FROM messages ORDER BY arrival LIMIT 1")
    .get();
  const rows = db
    .query<{ destination: string; state: RecipientState | "held"; n: number }, []>(
      `SELECT r.destination,
         CASE WHEN m.held = 1 AND r.state IN ('queued', 'deferred', 'active') THEN 'held' ELSE r.state END AS state,
         COUNT(*) AS n
       FROM recipients r JOIN messages m ON m.id = r.message_id
       GROUP BY r.destination, 2 ORDER BY r.destination`,
    )
    .all();
  const recipients = emptyCounts();
  const destinations = new Map<string, Record<RecipientState | "held", number>>();
  for (const row of rows) {
    recipients[row.state] += row.n;
    let counts = destinations.get(row.destination);
    if (counts === undefined) {
      counts = emptyCounts();
      destinations.set(row.destination, counts);
    }
    counts[row.state] += row.n;
  }
  return {
    messages: totals?.messages ?? 0,
    held: totals?.held ?? 0,
    recipients,
    destinations: [...destinations].map(([destination, counts]) => ({ destination, recipients: counts })),
    oldest: oldest ?? null,
    bytes: totals?.bytes ?? 0,
  };
}
