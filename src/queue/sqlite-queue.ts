/**
 * The queue in SQLite (bun:sqlite): WAL so readers (`queue list`) never block the worker, and
 * synchronous=FULL so a commit is on disk before enqueue resolves. Writes that arrive together
 * (messages from many SMTP sessions, outcomes from many connections) share one transaction and
 * one fsync: group commit, so durability costs one sync per batch, not per message.
 *
 * The worker's own bookkeeping (leases, and outcomes when no new message is in the batch) is
 * committed with synchronous=NORMAL: in WAL mode that is atomic and survives a crash of the
 * process, and only a power failure could undo it, which would at worst send a message again
 * (its lease or its "delivered" lost), never lose one. That keeps fsyncs off the delivery path.
 *
 * Several processes may use one queue at a time (`queue run`, `queue flush`, `send --queue`,
 * `serve --relay`): leases are taken inside IMMEDIATE transactions, so two workers never lease
 * the same recipient, and busy_timeout makes a writer wait for another's commit.
 */
import { Database, type Statement } from "bun:sqlite";
import type { Path } from "../core/address.ts";
import type { Envelope, Recipient } from "../core/envelope.ts";
import type { MailParams, RcptParams } from "../core/esmtp-params.ts";
import { newQueueId } from "./queue-id.ts";
import { canonicalRoute, destinationKey, parseStoredRoute, type QueueRoute } from "./route.ts";
import { migrateQueue } from "./schema.ts";
import {
  type DueDestination,
  type EnqueueOptions,
  type LeasedMessage,
  type LeaseRequest,
  type ListOptions,
  type MessageKind,
  type NewMessage,
  type Queue,
  type QueueAttempt,
  QueueClosedError,
  type QueueEntry,
  type QueueId,
  type QueueRecipient,
  type QueueStats,
  type RecipientOutcome,
  type RecipientState,
  type ReplyRecord,
  type Selection,
  type Settlement,
} from "./types.ts";

/** Wait this long for another process's write to finish before failing with "database is locked". */
const BUSY_TIMEOUT_MS = 10_000;
/** A group commit takes at most this many writes... */
const MAX_BATCH_WRITES = 1000;
/** ...or this many message octets, so memory stays bounded when large messages pour in. */
const MAX_BATCH_BYTES = 64 * 1024 * 1024;
/** A lease holds the bodies it brings in memory: at most this many octets (but always one message). */
const LEASE_MAX_BYTES = 32 * 1024 * 1024;
/** Distinct envelope JSON texts kept parsed (see #parsed). */
const PARSE_CACHE_ENTRIES = 1000;
/** Up to this much of the database file is read through mmap. */
const MMAP_BYTES = 256 * 1024 * 1024;
/**
 * Outcomes wait this long for company before they are committed: nobody waits for them, and a
 * crash loses at most this much bookkeeping (those messages are sent again, never lost).
 */
const SETTLE_BATCH_MS = 100;

export interface SqliteQueueOptions {
  /** A file path, or ":memory:" (tests). */
  path: string;
  /** Clock for arrival times; tests pass their own. */
  now?: () => number;
}

type Write =
  | {
      kind: "enqueue";
      id: QueueId;
      item: NewMessage;
      arrival: number;
      resolve: (id: QueueId) => void;
      reject: (error: unknown) => void;
    }
  | {
      kind: "settle";
      settlement: Settlement;
      notices: QueueId[];
      resolve: (notices: QueueId[]) => void;
      reject: (error: unknown) => void;
    };

interface MessageRow {
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

interface RecipientRow {
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
function selectionParam(selection: Selection | undefined): string | null {
  return selection?.ids === undefined ? null : JSON.stringify(selection.ids);
}

function idsParam(ids: readonly string[]): string {
  return JSON.stringify(ids);
}

function replyText(reply: ReplyRecord | undefined): string | null {
  return reply === undefined ? null : JSON.stringify(reply);
}

function parseReply(text: string | null): ReplyRecord | null {
  return text === null ? null : (JSON.parse(text) as ReplyRecord);
}

function domainOf(recipient: Recipient): string {
  return recipient.path.mailbox?.domain ?? "";
}

const IN_SELECTION = "(?1 IS NULL OR r.message_id IN (SELECT value FROM json_each(?1)))";

/**
 * A held message's pending recipients have no next attempt (so the hot queries need no join
 * with messages); anything that would make one due again goes through this.
 */
function unlessHeld(value: string, table = "recipients"): string {
  return `CASE WHEN EXISTS (SELECT 1 FROM messages h WHERE h.id = ${table}.message_id AND h.held = 1) THEN NULL ELSE ${value} END`;
}

/** The route ID at the front of a destination key (see destinationKey). */
function routeIdOf(destination: string): number {
  return Number.parseInt(destination.slice(0, destination.indexOf("|")), 10);
}

export class SqliteQueue implements Queue {
  readonly path: string;
  readonly #db: Database;
  readonly #now: () => number;
  readonly #routeIds = new Map<string, number>();
  readonly #routes = new Map<number, QueueRoute>();
  readonly #listeners = new Set<(ids: readonly QueueId[]) => void>();
  #pending: Write[] = [];
  #pendingBytes = 0;
  #immediate = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** Whether the connection is in synchronous=FULL (true) or NORMAL (false) now. */
  #durable = true;
  readonly #parseCache = new Map<string, unknown>();
  readonly #sql: {
    begin: Statement;
    commit: Statement;
    rollback: Statement;
    syncFull: Statement;
    syncNormal: Statement;
    insertRoute: Statement;
    routeId: Statement<{ id: number }, [string]>;
    routeSpec: Statement<{ spec: string }, [number]>;
    insertMessage: Statement;
    insertBody: Statement;
    insertRecipient: Statement;
    release: Statement;
    settleDelivered: Statement;
    settleDeferred: Statement;
    settleFailed: Statement;
    insertAttempt: Statement;
    deleteDelivered: Statement<{ id: string }, [string]>;
    deleteWhollyDelivered: Statement<{ id: string }, [string]>;
    deleteBodies: Statement;
    deleteRecipients: Statement;
    deleteAttempts: Statement;
    markWarned: Statement;
    leaseCandidates: Statement<{ message_id: string }, [string | null, string, number, number]>;
    leaseUpdate: Statement;
    sizes: Statement<{ id: string; size: number }, [string]>;
  };

  constructor(options: SqliteQueueOptions) {
    this.path = options.path;
    this.#now = options.now ?? Date.now;
    this.#db = new Database(options.path, { create: true, strict: true });
    this.#db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    if (process.env.QPRAGMA) for (const p of process.env.QPRAGMA.split(";")) this.#db.exec(`PRAGMA ${p}`);
    if (options.path !== ":memory:") {
      this.#db.exec("PRAGMA journal_mode = WAL");
      // Reads through a memory map instead of a system call per page (the worker reads every body).
      this.#db.exec(`PRAGMA mmap_size = ${MMAP_BYTES}`);
    }
    // Every commit reaches the disk before it returns; group commit keeps that to one per batch.
    this.#db.exec("PRAGMA synchronous = FULL");
    migrateQueue(this.#db);
    const db = this.#db;
    this.#sql = {
      begin: db.prepare("BEGIN IMMEDIATE"),
      commit: db.prepare("COMMIT"),
      rollback: db.prepare("ROLLBACK"),
      syncFull: db.prepare("PRAGMA synchronous = FULL"),
      syncNormal: db.prepare("PRAGMA synchronous = NORMAL"),
      insertRoute: db.prepare("INSERT OR IGNORE INTO routes (spec) VALUES (?)"),
      routeId: db.prepare("SELECT id FROM routes WHERE spec = ?"),
      routeSpec: db.prepare("SELECT spec FROM routes WHERE id = ?"),
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
      deleteDelivered: db.prepare(
        `DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?))
           AND NOT EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = messages.id AND r.state != 'delivered')
         RETURNING id`,
      ),
      // [[id, owner, [idx...]], ...]: delete each message whose every recipient is in its entry.
      deleteWhollyDelivered: db.prepare(
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
      leaseCandidates: db.prepare(
        `SELECT DISTINCT r.message_id FROM recipients r
         WHERE r.destination = ?2 AND r.next_attempt <= ?3 AND ${IN_SELECTION}
         ORDER BY r.next_attempt, r.message_id LIMIT ?4`,
      ),
      sizes: db.prepare("SELECT id, size FROM messages WHERE id IN (SELECT value FROM json_each(?))"),
      leaseUpdate: db.prepare(
        // "+" keeps SQLite off the due index, which would visit every due recipient of the destination.
        `UPDATE recipients SET state = 'active', lease_owner = ?1, next_attempt = ?2
         WHERE message_id IN (SELECT value FROM json_each(?5)) AND +destination = ?3 AND +next_attempt <= ?4`,
      ),
    };
  }

  // ── writes that are group-committed ─────────────────────────────────────

  enqueue(
    message: Uint8Array,
    envelope: Envelope,
    route: QueueRoute,
    options: EnqueueOptions = {},
  ): Promise<QueueId> {
    if (this.#closed) return Promise.reject(new QueueClosedError());
    if (envelope.recipients.length === 0) return Promise.reject(new TypeError("a message needs recipients"));
    const arrival = options.arrival ?? this.#now();
    const id = newQueueId(arrival);
    return new Promise((resolve, reject) => {
      this.#submit(
        { kind: "enqueue", id, item: { message, envelope, route, options }, arrival, resolve, reject },
        message.length,
      );
    });
  }

  settle(settlement: Settlement): Promise<QueueId[]> {
    if (this.#closed) return Promise.reject(new QueueClosedError());
    const bytes = (settlement.notifications ?? []).reduce((sum, n) => sum + n.message.length, 0);
    return new Promise((resolve, reject) => {
      this.#submit({ kind: "settle", settlement, notices: [], resolve, reject }, bytes);
    });
  }

  onEnqueued(listener: (ids: readonly QueueId[]) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  #submit(write: Write, bytes: number): void {
    this.#pending.push(write);
    this.#pendingBytes += bytes;
    if (this.#pending.length >= MAX_BATCH_WRITES || this.#pendingBytes >= MAX_BATCH_BYTES) {
      this.#commitPending();
    } else if (write.kind === "enqueue") {
      // A client waits for its 250: everything submitted in this turn of the event loop joins the batch.
      if (!this.#immediate) {
        this.#immediate = true;
        setImmediate(() => {
          this.#immediate = false;
          this.#commitPending();
        });
      }
    } else if (this.#timer === undefined) {
      // Nobody waits for an outcome: gather them a little longer, fewer and larger commits.
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#commitPending();
      }, SETTLE_BATCH_MS);
    }
  }

  /** Commits every waiting write in one transaction, then settles their promises. */
  #commitPending(): void {
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // Outcomes in ID order: neighbouring rows share pages, so each page is written once per commit.
    const enqueues = batch.filter((write) => write.kind === "enqueue");
    const settles = batch
      .filter((write) => write.kind === "settle")
      .sort((a, b) => (a.settlement.id < b.settlement.id ? -1 : a.settlement.id > b.settlement.id ? 1 : 0));
    const added: QueueId[] = [];
    try {
      this.#transaction(enqueues.length > 0, () => {
        for (const write of enqueues) {
          this.#insert(write.id, write.item, write.arrival);
          added.push(write.id);
        }
        const done = this.#removeWhollyDelivered(settles.map((write) => write.settlement));
        const settled: QueueId[] = [];
        for (const write of settles) {
          if (done.has(write.settlement.id)) continue;
          write.notices = this.#applySettlement(write.settlement);
          added.push(...write.notices);
          settled.push(write.settlement.id);
        }
        if (settled.length > 0) this.#removeDelivered(settled);
      });
    } catch (error) {
      // Route rows inserted by the rolled-back transaction are gone again.
      this.#routeIds.clear();
      for (const write of batch) write.reject(error);
      return;
    }
    for (const write of batch) {
      if (write.kind === "enqueue") write.resolve(write.id);
      else write.resolve(write.notices);
    }
    if (added.length > 0) for (const listener of this.#listeners) listener(added);
  }

  /**
   * An IMMEDIATE transaction (it takes the write lock at once, so two processes never deadlock
   * upgrading a read); `durable` false commits it with synchronous=NORMAL (see the top of the file).
   */
  #transaction<T>(durable: boolean, body: () => T): T {
    const g = globalThis as unknown as { __t: number; __n: number; __c: number };
    const t0 = performance.now();
    try {
      return this.#transaction2(durable, body);
    } finally {
      const d = performance.now() - t0;
      g.__t = (g.__t ?? 0) + d;
      g.__n = (g.__n ?? 0) + 1;
    }
  }
  #transaction2<T>(durable: boolean, body: () => T): T {
    // The connection stays in the mode of its last transaction: switching costs a statement.
    if (this.#durable !== durable) {
      (durable ? this.#sql.syncFull : this.#sql.syncNormal).run();
      this.#durable = durable;
    }
    this.#sql.begin.run();
    const g = globalThis as unknown as { __c: number };
    const tc = performance.now();
    let result: T;
    try {
      result = body();
    } catch (error) {
      if (this.#db.inTransaction) this.#sql.rollback.run();
      throw error;
    }
    const tcc = performance.now();
    g.__c = (g.__c ?? 0) - (tcc - tc) * 0;
    try {
      this.#sql.commit.run();
      (g as unknown as { __cm: number }).__cm =
        ((g as unknown as { __cm: number }).__cm ?? 0) + performance.now() - tcc;
    } catch (error) {
      if (this.#db.inTransaction) this.#sql.rollback.run();
      throw error;
    }
    return result;
  }

  #routeIdFor(route: QueueRoute): number {
    const spec = canonicalRoute(route);
    const known = this.#routeIds.get(spec);
    if (known !== undefined) return known;
    this.#sql.insertRoute.run(spec);
    const row = this.#sql.routeId.get(spec);
    if (row === null) throw new Error("route row vanished after insert");
    this.#routeIds.set(spec, row.id);
    return row.id;
  }

  #routeById(id: number): QueueRoute {
    const known = this.#routes.get(id);
    if (known !== undefined) return known;
    const row = this.#sql.routeSpec.get(id);
    if (row === null) throw new Error(`the queue database lacks route ${id}`);
    const route = parseStoredRoute(row.spec);
    this.#routes.set(id, route);
    return route;
  }

  #insert(id: QueueId, item: NewMessage, arrival: number): void {
    const { message, envelope, route } = item;
    const options = item.options ?? {};
    const routeId = this.#routeIdFor(route);
    this.#sql.insertMessage.run(
      id,
      arrival,
      arrival,
      JSON.stringify(envelope.from),
      JSON.stringify(envelope.mailParams),
      routeId,
      message.length,
      options.kind ?? "mail",
      options.held === true ? 1 : 0,
    );
    this.#sql.insertBody.run(id, message);
    envelope.recipients.forEach((recipient, index) => {
      this.#sql.insertRecipient.run(
        id,
        index,
        JSON.stringify(recipient.path),
        JSON.stringify(recipient.params),
        destinationKey(routeId, route, domainOf(recipient)),
        options.held === true ? null : arrival,
      );
    });
  }

  /** Returns the IDs of notifications it queued. */
  #applySettlement(settlement: Settlement): QueueId[] {
    const { id, owner, at } = settlement;
    const changed: { index: number; outcome: Exclude<RecipientOutcome, { state: "released" }> }[] = [];
    for (const { index, outcome } of settlement.recipients) {
      let changes = 0;
      switch (outcome.state) {
        case "released":
          this.#sql.release.run(at, id, index, owner);
          continue;
        case "delivered":
          changes = this.#sql.settleDelivered.run(
            at,
            replyText(outcome.reply),
            outcome.remoteMta ?? null,
            id,
            index,
            owner,
          ).changes;
          break;
        case "deferred":
          changes = this.#sql.settleDeferred.run(
            outcome.nextAttempt,
            at,
            replyText(outcome.reply),
            outcome.error ?? null,
            outcome.remoteMta ?? null,
            id,
            index,
            owner,
          ).changes;
          break;
        case "failed":
          changes = this.#sql.settleFailed.run(
            at,
            replyText(outcome.reply),
            outcome.error ?? null,
            outcome.remoteMta ?? null,
            outcome.status,
            id,
            index,
            owner,
          ).changes;
          break;
      }
      if (changes > 0) changed.push({ index, outcome });
    }
    // The lease was lost (another worker took over after it ran out): its outcome is theirs to record.
    if (changed.length === 0) return [];
    if (settlement.delayWarned === true) this.#sql.markWarned.run(id);
    // Delivered recipients keep their last reply in their row; the attempt log is for the rest.
    for (const { index, outcome } of changed) {
      if (outcome.state === "delivered") continue;
      this.#sql.insertAttempt.run(
        id,
        index,
        at,
        outcome.state,
        replyText(outcome.reply),
        outcome.error ?? null,
        outcome.remoteMta ?? null,
      );
    }
    return this.#insertNotifications(settlement);
  }

  /**
   * The common case, a message delivered to every one of its recipients in one attempt, leaves
   * the queue at once, for a whole batch in four statements, instead of being updated first and
   * swept after. A message is only removed while every one of its recipients is still leased by
   * the settling owner and named in the settlement (another destination's recipients, or a lease
   * that ran out, keep it); those go the ordinary way. Returns the IDs removed.
   */
  #removeWhollyDelivered(settlements: readonly Settlement[]): Set<QueueId> {
    const candidates: [QueueId, string, number[]][] = [];
    for (const settlement of settlements) {
      if (settlement.notifications !== undefined || settlement.delayWarned === true) continue;
      if (!settlement.recipients.every((r) => r.outcome.state === "delivered")) continue;
      candidates.push([settlement.id, settlement.owner, settlement.recipients.map((r) => r.index)]);
    }
    if (candidates.length === 0) return new Set();
    const removed = this.#sql.deleteWhollyDelivered.all(JSON.stringify(candidates)).map((row) => row.id);
    if (removed.length > 0) {
      const param = idsParam(removed);
      this.#sql.deleteBodies.run(param);
      this.#sql.deleteRecipients.run(param);
      this.#sql.deleteAttempts.run(param);
    }
    return new Set(removed);
  }

  #insertNotifications(settlement: Settlement): QueueId[] {
    const at = settlement.at;
    const added: QueueId[] = [];
    for (const notification of settlement.notifications ?? []) {
      const noticeId = newQueueId(at);
      this.#insert(noticeId, notification, notification.options?.arrival ?? at);
      added.push(noticeId);
    }
    return added;
  }

  /** Messages among `ids` whose every recipient is delivered leave the queue. */
  #removeDelivered(ids: readonly QueueId[]): void {
    const done = this.#sql.deleteDelivered.all(idsParam(ids)).map((row) => row.id);
    if (done.length === 0) return;
    const param = idsParam(done);
    this.#sql.deleteBodies.run(param);
    this.#sql.deleteRecipients.run(param);
    this.#sql.deleteAttempts.run(param);
  }

  // ── the worker's reads and leases ───────────────────────────────────────

  // Outcomes still waiting for their group commit only concern leased recipients, which none of
  // the worker's reads below would return anyway: they do not force a commit.

  async dueDestinations(now: number, selection?: Selection): Promise<DueDestination[]> {
    this.#assertOpen();
    const rows = this.#db
      .query<{ destination: string; recipients: number }, [string | null, number]>(
        `SELECT r.destination, COUNT(*) AS recipients FROM recipients r
         WHERE r.next_attempt <= ?2 AND ${IN_SELECTION}
         GROUP BY r.destination`,
      )
      .all(selectionParam(selection), now);
    return rows.map((row) => ({
      destination: row.destination,
      route: this.#routeById(routeIdOf(row.destination)),
      messages: row.recipients,
    }));
  }

  async nextDue(selection?: Selection): Promise<number | undefined> {
    this.#assertOpen();
    const row = this.#db
      .query<{ next: number | null }, [string | null]>(
        `SELECT MIN(r.next_attempt) AS next FROM recipients r
         WHERE r.next_attempt IS NOT NULL AND ${IN_SELECTION}`,
      )
      .get(selectionParam(selection));
    return row?.next ?? undefined;
  }

  async lease(destination: string, request: LeaseRequest): Promise<LeasedMessage[]> {
    this.#assertOpen();
    return this.#transaction(false, (): LeasedMessage[] => {
      const candidates = this.#sql.leaseCandidates
        .all(selectionParam(request), destination, request.now, request.limit)
        .map((row) => row.message_id);
      if (candidates.length === 0) return [];
      const ids = idsParam(this.#withinBudget(candidates));
      this.#sql.leaseUpdate.run(request.owner, request.until, destination, request.now, ids);
      return this.#readLeased(ids, request.owner, destination);
    });
  }

  /** The leading candidates whose bodies fit LEASE_MAX_BYTES (always at least one). */
  #withinBudget(candidates: string[]): string[] {
    const sizes = new Map(this.#sql.sizes.all(idsParam(candidates)).map((row) => [row.id, row.size]));
    let total = 0;
    for (const [index, id] of candidates.entries()) {
      total += sizes.get(id) ?? 0;
      if (total > LEASE_MAX_BYTES && index > 0) return candidates.slice(0, index);
    }
    return candidates;
  }

  #readLeased(ids: string, owner: string, destination: string): LeasedMessage[] {
    const messages = this.#db
      .query<
        Pick<
          MessageRow,
          "id" | "arrival" | "expiry_base" | "sender" | "mail_params" | "route_id" | "kind" | "delay_warned"
        > & {
          raw: Uint8Array;
        },
        [string]
      >(
        `SELECT m.id, m.arrival, m.expiry_base, m.sender, m.mail_params, m.route_id, m.kind, m.delay_warned, b.raw
         FROM messages m JOIN bodies b ON b.id = m.id
         WHERE m.id IN (SELECT value FROM json_each(?)) ORDER BY m.id`,
      )
      .all(ids);
    const recipients = this.#db
      .query<
        Pick<RecipientRow, "message_id" | "idx" | "path" | "params" | "attempts">,
        [string, string, string]
      >(
        `SELECT message_id, idx, path, params, attempts FROM recipients
         WHERE message_id IN (SELECT value FROM json_each(?)) AND +lease_owner = ? AND +destination = ?
           AND +state = 'active'
         ORDER BY message_id, idx`,
      )
      .all(ids, owner, destination);
    const byMessage = new Map<string, typeof recipients>();
    for (const row of recipients) {
      const list = byMessage.get(row.message_id);
      if (list) list.push(row);
      else byMessage.set(row.message_id, [row]);
    }
    const out: LeasedMessage[] = [];
    for (const row of messages) {
      const rows = byMessage.get(row.id);
      if (rows === undefined) continue;
      out.push({
        id: row.id,
        arrival: row.arrival,
        expiryBase: row.expiry_base,
        kind: row.kind as MessageKind,
        route: this.#routeById(row.route_id),
        raw: row.raw,
        envelope: {
          from: this.#parsed<Path>(row.sender),
          mailParams: this.#parsed<MailParams>(row.mail_params),
          recipients: rows.map((r) => ({
            path: this.#parsed<Path>(r.path),
            params: this.#parsed<RcptParams>(r.params),
          })),
        },
        recipientIndexes: rows.map((r) => r.idx),
        attempts: rows.map((r) => r.attempts),
        delayWarned: row.delay_warned === 1,
      });
    }
    return out;
  }

  /**
   * JSON from the envelope columns, parsed once per distinct text: bulk mail repeats the same
   * sender, parameters and often recipients thousands of times. The objects are shared, so the
   * worker treats envelopes as read-only (the client builds its own).
   */
  #parsed<T>(text: string): T {
    let value = this.#parseCache.get(text);
    if (value === undefined) {
      value = JSON.parse(text);
      if (this.#parseCache.size >= PARSE_CACHE_ENTRIES) this.#parseCache.clear();
      this.#parseCache.set(text, value);
    }
    return value as T;
  }

  async renewLeases(owner: string, until: number): Promise<number> {
    this.#assertOpen();
    return this.#transaction(
      false,
      () =>
        this.#db
          .query("UPDATE recipients SET next_attempt = ? WHERE lease_owner = ? AND state = 'active'")
          .run(until, owner).changes,
    );
  }

  async recoverLeases(now: number, isAlive: (owner: string) => boolean): Promise<number> {
    this.#assertOpen();
    this.#commitPending();
    const owners = this.#db
      .query<{ lease_owner: string }, []>(
        "SELECT DISTINCT lease_owner FROM recipients WHERE lease_owner IS NOT NULL",
      )
      .all()
      .map((row) => row.lease_owner);
    let recovered = 0;
    for (const owner of owners) {
      if (!isAlive(owner)) recovered += this.#releaseOwner(owner, now);
    }
    return recovered;
  }

  async countLeased(owner: string, selection?: Selection): Promise<number> {
    this.#assertOpen();
    this.#commitPending();
    const row = this.#db
      .query<{ n: number }, [string | null, string]>(
        `SELECT COUNT(*) AS n FROM recipients r
         WHERE r.lease_owner IS NOT NULL AND r.lease_owner != ?2 AND r.state = 'active' AND ${IN_SELECTION}`,
      )
      .get(selectionParam(selection), owner);
    return row?.n ?? 0;
  }

  async releaseLeases(owner: string, now: number): Promise<number> {
    this.#assertOpen();
    this.#commitPending();
    return this.#releaseOwner(owner, now);
  }

  #releaseOwner(owner: string, now: number): number {
    return this.#transaction(
      false,
      () =>
        this.#db
          .query(
            `UPDATE recipients SET state = CASE WHEN attempts > 0 THEN 'deferred' ELSE 'queued' END,
               lease_owner = NULL, next_attempt = ${unlessHeld("?")}
             WHERE lease_owner = ? AND state = 'active'`,
          )
          .run(now, owner).changes,
    );
  }

  // ── management ──────────────────────────────────────────────────────────

  async makeDue(now: number, selection?: Selection): Promise<number> {
    this.#assertOpen();
    this.#commitPending();
    return this.#transaction(
      false,
      () =>
        this.#db
          .query(
            `UPDATE recipients AS r SET next_attempt = ?2
             WHERE r.next_attempt > ?2 AND r.state IN ('queued', 'deferred') AND ${IN_SELECTION}`,
          )
          .run(selectionParam(selection), now).changes,
    );
  }

  async list(options: ListOptions = {}): Promise<QueueEntry[]> {
    this.#assertOpen();
    this.#commitPending();
    const selection = selectionParam(options);
    const messages = this.#db
      .query<MessageRow, [string | null]>(
        `SELECT * FROM messages WHERE (?1 IS NULL OR id IN (SELECT value FROM json_each(?1))) ORDER BY id`,
      )
      .all(selection);
    const recipients = this.#db
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
    return messages.map((row) => this.#entry(row, byMessage.get(row.id) ?? []));
  }

  async get(id: QueueId): Promise<QueueEntry | undefined> {
    return (await this.list({ ids: [id] }))[0];
  }

  #entry(row: MessageRow, recipients: QueueRecipient[]): QueueEntry {
    return {
      id: row.id,
      arrival: row.arrival,
      size: row.size,
      from: JSON.parse(row.sender) as Path,
      mailParams: JSON.parse(row.mail_params) as MailParams,
      route: this.#routeById(row.route_id),
      kind: row.kind as MessageKind,
      held: row.held === 1,
      delayWarned: row.delay_warned === 1,
      recipients,
    };
  }

  async attempts(id: QueueId): Promise<QueueAttempt[]> {
    this.#assertOpen();
    this.#commitPending();
    return this.#db
      .query<
        {
          idx: number;
          at: number;
          state: QueueAttempt["state"];
          reply: string | null;
          error: string | null;
          remote_mta: string | null;
        },
        [string]
      >("SELECT idx, at, state, reply, error, remote_mta FROM attempts WHERE message_id = ? ORDER BY rowid")
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

  async raw(id: QueueId): Promise<Uint8Array | undefined> {
    this.#assertOpen();
    this.#commitPending();
    const row = this.#db.query<{ raw: Uint8Array }, [string]>("SELECT raw FROM bodies WHERE id = ?").get(id);
    return row?.raw;
  }

  async hold(ids: readonly QueueId[]): Promise<QueueId[]> {
    return this.#setHeld(ids, 1);
  }

  async release(ids: readonly QueueId[]): Promise<QueueId[]> {
    return this.#setHeld(ids, 0);
  }

  #setHeld(ids: readonly QueueId[], held: 0 | 1): QueueId[] {
    this.#assertOpen();
    this.#commitPending();
    const param = idsParam(ids);
    return this.#transaction(true, () => {
      const changed = this.#db
        .query<{ id: string }, [number, string]>(
          "UPDATE messages SET held = ? WHERE id IN (SELECT value FROM json_each(?)) RETURNING id",
        )
        .all(held, param)
        .map((row) => row.id)
        .sort();
      // Recipients being delivered right now finish; the others wait (held) or are due at once (released).
      if (held === 1) {
        this.#db
          .query(
            `UPDATE recipients SET next_attempt = NULL
             WHERE message_id IN (SELECT value FROM json_each(?)) AND state IN ('queued', 'deferred')`,
          )
          .run(param);
      } else {
        this.#db
          .query(
            `UPDATE recipients SET next_attempt = ?
             WHERE message_id IN (SELECT value FROM json_each(?)) AND state IN ('queued', 'deferred')
               AND next_attempt IS NULL`,
          )
          .run(this.#now(), param);
      }
      return changed;
    });
  }

  async delete(selection: Selection): Promise<QueueId[]> {
    this.#assertOpen();
    this.#commitPending();
    const param = selectionParam(selection);
    return this.#transaction(true, (): QueueId[] => {
      const where = "(?1 IS NULL OR id IN (SELECT value FROM json_each(?1)))";
      const ids = this.#db
        .query<{ id: string }, [string | null]>(`DELETE FROM messages WHERE ${where} RETURNING id`)
        .all(param)
        .map((row) => row.id);
      this.#db.query(`DELETE FROM bodies WHERE ${where}`).run(param);
      const byMessage = "(?1 IS NULL OR message_id IN (SELECT value FROM json_each(?1)))";
      this.#db.query(`DELETE FROM recipients WHERE ${byMessage}`).run(param);
      this.#db.query(`DELETE FROM attempts WHERE ${byMessage}`).run(param);
      return ids.sort();
    });
  }

  async retryFailed(now: number, selection?: Selection): Promise<QueueId[]> {
    this.#assertOpen();
    this.#commitPending();
    const param = selectionParam(selection);
    return this.#transaction(true, (): QueueId[] => {
      const ids = [
        ...new Set(
          this.#db
            .query<{ message_id: string }, [string | null, number]>(
              `UPDATE recipients AS r SET state = 'queued', next_attempt = ${unlessHeld("?2", "r")}, status = NULL
                 WHERE r.state = 'failed' AND ${IN_SELECTION} RETURNING message_id`,
            )
            .all(param, now)
            .map((row) => row.message_id),
        ),
      ].sort();
      this.#db
        .query("UPDATE messages SET expiry_base = ? WHERE id IN (SELECT value FROM json_each(?))")
        .run(now, idsParam(ids));
      return ids;
    });
  }

  async existing(ids: readonly QueueId[]): Promise<QueueId[]> {
    this.#assertOpen();
    this.#commitPending();
    return this.#db
      .query<{ id: string }, [string]>("SELECT id FROM messages WHERE id IN (SELECT value FROM json_each(?))")
      .all(idsParam(ids))
      .map((row) => row.id);
  }

  async stats(): Promise<QueueStats> {
    this.#assertOpen();
    this.#commitPending();
    const totals = this.#db
      .query<{ messages: number; held: number | null; bytes: number | null }, []>(
        "SELECT COUNT(*) AS messages, SUM(held) AS held, SUM(size) AS bytes FROM messages",
      )
      .get();
    const oldest = this.#db
      .query<{ id: string; arrival: number }, []>("SELECT id, arrival FROM messages ORDER BY arrival LIMIT 1")
      .get();
    const rows = this.#db
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

  async close(): Promise<void> {
    const g = globalThis as unknown as { __t: number; __n: number; __cm: number };
    if (process.env.QTRACE)
      process.stderr.write(
        `db ${g.__t?.toFixed(0)}ms in ${g.__n} tx, commit ${g.__cm?.toFixed(0)}ms cpu ${JSON.stringify(process.cpuUsage())}\n`,
      );
    if (this.#closed) return;
    this.#commitPending();
    this.#closed = true;
    this.#listeners.clear();
    this.#db.close();
  }

  #assertOpen(): void {
    if (this.#closed) throw new QueueClosedError();
  }
}

function emptyCounts(): Record<RecipientState | "held", number> {
  return { queued: 0, active: 0, deferred: 0, held: 0, delivered: 0, failed: 0 };
}

function recipientFromRow(row: RecipientRow): QueueRecipient {
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
