import type { Database } from "bun:sqlite";
import type { Path } from "../core/address.ts";
import type { RcptParams } from "../core/esmtp-params.ts";
import type { QueueRecipient, RecipientState, ReplyRecord, Selection } from "./types.ts";

/**
 * The SQL of the SQLite queue: row shapes, the prepared statements of the hot paths, and helpers
 * for the JSON lists of IDs that stand in for IN (...) lists (one statement for any number of IDs).
 */

export interface MessageRow {
  id: string;
  arrival: number;
  expiry_base: number;
  sender: string;
  mail_params: string;
  route_id: number;
  size: number;
  kind: string;
  held: number;
  delay_warned: number;
}

export interface RecipientRow {
  message_id: string;
  idx: number;
  path: string;
  params: string;
  destination: string;
  state: string;
  attempts: number;
  next_attempt: number | null;
  last_attempt: number | null;
  last_reply: string | null;
  last_error: string | null;
  remote_mta: string | null;
  status: string | null;
  lease_owner: string | null;
}

/** The bound value that means "every message" in `(? IS NULL OR id IN json_each(?))`. */
export function selectionParam(selection: Selection | undefined): string | null {
  return selection?.ids === undefined ? null : JSON.stringify(selection.ids);
}

export function idsParam(ids: readonly string[]): string {
  return JSON.stringify(ids);
}

export function replyText(reply: ReplyRecord | undefined): string | null {
  return reply === undefined ? null : JSON.stringify(reply);
}

export function parseReply(text: string | null): ReplyRecord | null {
  return text === null ? null : (JSON.parse(text) as ReplyRecord);
}

export const IN_SELECTION = "(?1 IS NULL OR r.message_id IN (SELECT value FROM json_each(?1)))";

/**
 * A held message's pending recipients have no next attempt (so the hot queries need no join
 * with messages); anything that would make one due again goes through this.
 */
export function unlessHeld(value: string, table = "recipients"): string {
  return `CASE WHEN EXISTS (SELECT 1 FROM messages h WHERE h.id = ${table}.message_id AND h.held = 1) THEN NULL ELSE ${value} END`;
}

/** The route ID at the front of a destination key (see destinationKey). */
export function routeIdOf(destination: string): number {
  return Number.parseInt(destination.slice(0, destination.indexOf("|")), 10);
}

/** Every statement the queue runs often, prepared once per connection. */
export function prepareQueueStatements(db: Database) {
  return {
    begin: db.prepare("BEGIN IMMEDIATE"),
    commit: db.prepare("COMMIT"),
    rollback: db.prepare("ROLLBACK"),
    syncFull: db.prepare("PRAGMA synchronous = FULL"),
    syncNormal: db.prepare("PRAGMA synchronous = NORMAL"),
    insertRoute: db.prepare("INSERT OR IGNORE INTO routes (spec) VALUES (?)"),
    routeId: db.prepare<{ id: number }, [string]>("SELECT id FROM routes WHERE spec = ?"),
    routeSpec: db.prepare<{ spec: string }, [number]>("SELECT spec FROM routes WHERE id = ?"),
    insertMessage: db.prepare(
      `INSERT INTO messages (id, arrival, expiry_base, sender, mail_params, route_id, size, kind, held)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertBody: db.prepare("INSERT INTO bodies (id, raw) VALUES (?, ?)"),
    insertRecipient: db.prepare(
      `INSERT INTO recipients (message_id, idx, path, params, destination, state, next_attempt)
       VALUES (?, ?, ?, ?, ?, 'queued', ?)`,
    ),
    release: db.prepare(
      `UPDATE recipients SET state = CASE WHEN attempts > 0 THEN 'deferred' ELSE 'queued' END,
         lease_owner = NULL, next_attempt = ${unlessHeld("?")}
       WHERE message_id = ? AND idx = ? AND lease_owner = ? AND state = 'active'`,
    ),
    settleDelivered: db.prepare(
      `UPDATE recipients SET state = 'delivered', attempts = attempts + 1, next_attempt = NULL,
         last_attempt = ?, last_reply = ?, last_error = NULL, remote_mta = ?, lease_owner = NULL
       WHERE message_id = ? AND idx = ? AND lease_owner = ? AND state = 'active'`,
    ),
    settleDeferred: db.prepare(
      `UPDATE recipients SET state = 'deferred', attempts = attempts + 1, next_attempt = ${unlessHeld("?")},
         last_attempt = ?, last_reply = ?, last_error = ?, remote_mta = ?, lease_owner = NULL
       WHERE message_id = ? AND idx = ? AND lease_owner = ? AND state = 'active'`,
    ),
    settleFailed: db.prepare(
      `UPDATE recipients SET state = 'failed', attempts = attempts + 1, next_attempt = NULL,
         last_attempt = ?, last_reply = ?, last_error = ?, remote_mta = ?, status = ?, lease_owner = NULL
       WHERE message_id = ? AND idx = ? AND lease_owner = ? AND state = 'active'`,
    ),
    insertAttempt: db.prepare(
      "INSERT INTO attempts (message_id, idx, at, state, reply, error, remote_mta) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ),
    deleteDelivered: db.prepare<{ id: string }, [string]>(
      `DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?))
         AND NOT EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = messages.id AND r.state != 'delivered')
       RETURNING id`,
    ),
    // [[id, owner, [idx...]], ...]: delete each message whose every recipient is in its entry.
    deleteWhollyDelivered: db.prepare<{ id: string }, [string]>(
      `DELETE FROM messages WHERE id IN (
         SELECT c.value ->> 0 FROM json_each(?) c
         WHERE NOT EXISTS (
           SELECT 1 FROM recipients r WHERE r.message_id = c.value ->> 0
             AND NOT (r.state = 'active' AND r.lease_owner = c.value ->> 1
                      AND r.idx IN (SELECT value FROM json_each(c.value -> 2)))))
       RETURNING id`,
    ),
    deleteBodies: db.prepare("DELETE FROM bodies WHERE id IN (SELECT value FROM json_each(?))"),
    deleteRecipients: db.prepare(
      "DELETE FROM recipients WHERE message_id IN (SELECT value FROM json_each(?))",
    ),
    deleteAttempts: db.prepare("DELETE FROM attempts WHERE message_id IN (SELECT value FROM json_each(?))"),
    markWarned: db.prepare("UPDATE messages SET delay_warned = 1 WHERE id = ?"),
    // Index order (destination, next_attempt, message_id): the oldest due come first, and the
    // scan stops at the limit instead of sorting every due recipient.
    leaseCandidates: db.prepare<{ message_id: string }, [string | null, string, number, number]>(
      `SELECT DISTINCT r.message_id FROM recipients r
       WHERE r.destination = ?2 AND r.next_attempt <= ?3 AND ${IN_SELECTION}
       ORDER BY r.next_attempt, r.message_id LIMIT ?4`,
    ),
    sizes: db.prepare<{ id: string; size: number }, [string]>(
      "SELECT id, size FROM messages WHERE id IN (SELECT value FROM json_each(?))",
    ),
    leaseUpdate: db.prepare(
      // "+" keeps SQLite off the due index, which would visit every due recipient of the destination.
      `UPDATE recipients SET state = 'active', lease_owner = ?1, next_attempt = ?2
       WHERE message_id IN (SELECT value FROM json_each(?5)) AND +destination = ?3 AND +next_attempt <= ?4`,
    ),
  };
}

export type QueueStatements = ReturnType<typeof prepareQueueStatements>;

export function emptyCounts(): Record<RecipientState | "held", number> {
  return { queued: 0, active: 0, deferred: 0, held: 0, delivered: 0, failed: 0 };
}

export function recipientFromRow(row: RecipientRow): QueueRecipient {
  return {
    index: row.idx,
    path: JSON.parse(row.path) as Path,
    params: JSON.parse(row.params) as RcptParams,
    destination: row.destination,
    state: row.state as RecipientState,
    attempts: row.attempts,
    nextAttempt: row.next_attempt,
    lastAttempt: row.last_attempt,
    lastReply: parseReply(row.last_reply),
    lastError: row.last_error,
    remoteMta: row.remote_mta,
    status: row.status,
    leaseOwner: row.lease_owner,
  };
}
