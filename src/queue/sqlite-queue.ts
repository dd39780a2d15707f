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
import { Database } from "bun:sqlite";
import type { Path } from "../core/address.ts";
import type { Envelope, Recipient } from "../core/envelope.ts";
import type { MailParams, RcptParams } from "../core/esmtp-params.ts";
import { newQueueId } from "./queue-id.ts";
import { canonicalRoute, destinationKey, parseStoredRoute, type QueueRoute } from "./route.ts";
import { migrateQueue } from "./schema.ts";
import { listAttempts, listEntries, queueStats } from "./sqlite-reports.ts";
import {
  IN_SELECTION,
  idsParam,
  type MessageRow,
  prepareQueueStatements,
  type QueueStatements,
  type RecipientRow,
  replyText,
  routeIdOf,
  selectionParam,
  unlessHeld,
} from "./sqlite-statements.ts";
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
  type QueueStats,
  type RecipientOutcome,
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

function domainOf(recipient: Recipient): string {
  return recipient.path.mailbox?.domain ?? "";
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
  readonly #sql: QueueStatements;

  constructor(options: SqliteQueueOptions) {
    this.path = options.path;
    this.#now = options.now ?? Date.now;
    this.#db = new Database(options.path, { create: true, strict: true });
    this.#db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    if (options.path !== ":memory:") {
      this.#db.exec("PRAGMA journal_mode = WAL");
      // Reads through a memory map instead of a system call per page (the worker reads every body).
      this.#db.exec(`PRAGMA mmap_size = ${MMAP_BYTES}`);
    }
    // Every commit reaches the disk before it returns; group commit keeps that to one per batch.
    this.#db.exec("PRAGMA synchronous = FULL");
    migrateQueue(this.#db);
    this.#sql = prepareQueueStatements(this.#db);
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

  commitWaiting(): void {
    if (!this.#closed) this.#commitPending();
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
    // The connection stays in the mode of its last transaction: switching costs a statement.
    if (this.#durable !== durable) {
      (durable ? this.#sql.syncFull : this.#sql.syncNormal).run();
      this.#durable = durable;
    }
    this.#sql.begin.run();
    let result: T;
    try {
      result = body();
      this.#sql.commit.run();
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
    return listEntries(this.#db, options, (id) => this.#routeById(id));
  }

  async get(id: QueueId): Promise<QueueEntry | undefined> {
    return (await this.list({ ids: [id] }))[0];
  }

  async attempts(id: QueueId): Promise<QueueAttempt[]> {
    this.#assertOpen();
    this.#commitPending();
    return listAttempts(this.#db, id);
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
    return queueStats(this.#db);
  }

  async close(): Promise<void> {
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
