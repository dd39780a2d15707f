import { Database, type Statement } from "bun:sqlite";
import { closeSync, fdatasync, fdatasyncSync, openSync, statSync } from "node:fs";
import { join } from "node:path";
import { type CheckpointResult, WalCheckpointer } from "./checkpointer.ts";
import { GroupCommit } from "./group-commit.ts";
import { HEADER_SECTION_LIMIT } from "./header-section.ts";
import { type HeaderSummary, summarizeHeaders } from "./header-summary.ts";
import { newMessageId } from "./message-id.ts";
import { indexRaw } from "./parse-message.ts";
import { RawFiles } from "./raw-files.ts";
import { migrate } from "./schema.ts";
import { needsBodyIndex, parseSearchQuery } from "./search-query.ts";
import { type SqlCondition, searchCondition } from "./search-sql.ts";
import { StagedRaw, stageMessage } from "./staged-message.ts";
import { cleanTags, compareTags, type TagCount, TagTable } from "./tags.ts";
import {
  type Mailbox,
  type MessagePage,
  type MessageSelection,
  type MessageStore,
  type MessageSummary,
  type NewMessagesListener,
  type PageOptions,
  type SearchOptions,
  type StagedMessage,
  StoreClosedError,
  type StoredEnvelope,
  type StoreStats,
} from "./types.ts";

/** The default: `--max-messages 5000`, oldest pruned first. 0 keeps everything. */
export const DEFAULT_MAX_MESSAGES = 5000;
/** Mailpit's default page size. */
export const DEFAULT_PAGE_LIMIT = 50;
/** A group commit never holds more than this many messages... */
const GROUP_COMMIT_MAX_MESSAGES = 1000;
/** ...or this many octets (a few 25 MiB messages), so memory stays bounded under load. */
const GROUP_COMMIT_MAX_BYTES = 64 * 1024 * 1024;
/** How far past maxMessages the mailbox may grow before a commit prunes it back. */
const PRUNE_SLACK_FRACTION = 0.01;
/** Body indexing waits until no message arrived for this long, so it never competes with SMTP. */
const IDLE_INDEX_DELAY_MS = 250;
/** Messages parsed per indexing step; between steps the event loop serves other work. */
const INDEX_BATCH = 32;
/** SQLite's default limit on bound parameters is 32766; stay far below it. */
const IDS_PER_STATEMENT = 500;
/** Age-based pruning runs at most this often... */
const MAX_PRUNE_INTERVAL_MS = 60_000;
/** ...and at least this far apart. */
const MIN_PRUNE_INTERVAL_MS = 1000;
/** Wait this long for another process holding the database lock before failing. */
const BUSY_TIMEOUT_MS = 5000;
/**
 * Raw messages of at least this many octets are kept as files (raw-files.ts), not in the database:
 * written once and in one piece instead of page by page into the log and again by a checkpoint.
 * Below it a file costs more than it saves (a name to create, sync and later remove).
 */
const RAW_FILE_MIN_BYTES = 128 * 1024;
/**
 * Messages up to RAW_FILE_MIN_BYTES still live in the database, mostly as overflow pages written
 * one per system call: 16 KiB pages need a quarter of the calls of SQLite's default 4 KiB. For
 * 1 KiB messages a commit then writes more log (whole pages), yet 4 KiB pages measured no faster
 * under smtp-source (4158 vs 4140 msg/s, five rounds each).
 */
const PAGE_SIZE = 16 * 1024;
/** A checkpoint is started after roughly this much was written to the log (SQLite's own default is 1000 pages). */
const CHECKPOINT_AFTER_BYTES = 4 * 1024 * 1024;
/**
 * Pages a commit rewrites besides the raw bytes: the last leaf of messages, of its ID index, of
 * message_raw, and the database header. The log grows by whole pages, so small batches cost this each.
 */
const PAGES_PER_COMMIT = 4;
/**
 * The log starts over from its beginning only after a checkpoint copied all of it, which passive
 * checkpoints cannot do while commits keep coming. Once it holds this much, commits wait for a
 * second, short checkpoint of what the first one missed, and the next commit starts the log over.
 * Rewriting a log file in place also syncs faster than growing one: no file size to journal.
 */
const RESTART_LOG_BYTES = 8 * 1024 * 1024;
/** Commits are held for at most this long while the log is checkpointed to its end. */
const RESTART_HOLD_LIMIT_MS = 200;
/** The log file is cut back to this size when it restarts (it is reused up to it). */
const WAL_SIZE_LIMIT = 2 * RESTART_LOG_BYTES;
/** A raw file with no row is removed at start-up only when it is this old: it may be another process's, in flight. */
const ORPHAN_FILE_AGE_MS = 60_000;

export interface SqliteStoreOptions {
  path: string;
  maxMessages?: number;
  maxAgeMs?: number;
  /** Clock for `created`; tests pass their own. */
  now?: () => number;
}

interface PendingMessage {
  id: string;
  created: number;
  raw: Uint8Array;
  /** Octets of the message. */
  size: number;
  /** The raw bytes are in their own file (already durable), not in the row; `raw` is then empty. */
  inFile: boolean;
  envelope: StoredEnvelope;
  /**
   * Known at once for a message in a file (its header section came aside while it was staged);
   * for the others the summary is made after the 250 (#summarizePending).
   */
  headers: HeaderSummary | undefined;
}

interface SummaryRow {
  seq: number;
  id: string;
  created: number;
  read: number;
  size: number;
  envelope: string;
  message_id: string;
  subject: string;
  date: number | null;
  addresses: string | null;
  indexed: number;
  attachments: number;
  inline: number;
  snippet: string;
  /** Newline-separated (a tag holds none); null without tags. */
  tags: string | null;
}

interface StoredAddresses {
  from: Mailbox | null;
  to: Mailbox[];
  cc: Mailbox[];
  bcc: Mailbox[];
  replyTo: Mailbox[];
}

type Param = string | number | null | Uint8Array;

/** Messages with their header summary and their body index, when those have been made. */
const SUMMARY_JOIN = "LEFT JOIN message_summary s ON s.seq = m.seq";
const INDEX_JOIN = "LEFT JOIN message_index i ON i.seq = m.seq";
const MESSAGES_FROM = `messages m ${SUMMARY_JOIN} ${INDEX_JOIN}`;
const SUMMARY_COLUMNS = `m.seq AS seq, m.id AS id, m.created AS created, m.read AS read, m.size AS size,
  m.envelope AS envelope, IFNULL(s.message_id, '') AS message_id, IFNULL(s.subject, '') AS subject,
  s.date AS date, s.addresses AS addresses, i.seq IS NOT NULL AS indexed,
  IFNULL(i.attachments, 0) AS attachments, IFNULL(i.inline, 0) AS inline, IFNULL(i.snippet, '') AS snippet,
  (SELECT group_concat(t.tag, char(10)) FROM message_tags t WHERE t.seq = m.seq) AS tags`;
/** Conditions name columns of the summary or of the body index only when they need that join. */
const SUMMARY_COLUMN_NAMES =
  /\b(message_id|subject|date|addresses|from_search|to_search|cc_search|bcc_search|reply_to_search|subject_search|header_search)\b/;
const INDEX_COLUMNS = /\b(attachments|inline|search_text)\b/;
/** Header summaries made per transaction, when idle or before a read needs them. */
const SUMMARY_BATCH = 200;

export class SqliteMessageStore implements MessageStore {
  readonly #db: Database;
  readonly #path: string;
  readonly #maxMessages: number;
  readonly #maxAgeMs: number | undefined;
  readonly #now: () => number;
  readonly #committer: GroupCommit<PendingMessage, string>;
  readonly #listeners = new Set<NewMessagesListener>();
  readonly #insertMessage: Statement;
  readonly #insertRaw: Statement;
  readonly #insertSummary: Statement;
  readonly #tags: TagTable;
  readonly #updateIndex: Statement;
  #total: number;
  #closed = false;
  /** performance.now() of the last commit; the indexer waits for a quiet spell after it. */
  #lastCommitAt = 0;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #pruneTimer: ReturnType<typeof setInterval> | undefined;
  #draining: Promise<void> | undefined;
  /** Every message up to this seq has its body index (or is gone). */
  #indexedThrough = 0;
  /** Every message up to this seq has its header summary (or is gone). */
  #summarizedThrough = 0;
  /** Counts API deletions, so an indexing batch that ran across one does not move the mark. */
  #deletions = 0;
  /** The write-ahead log, opened once to sync it; undefined in memory or when WAL is unavailable. */
  #walFd: number | undefined;
  #syncInFlight: Promise<void> | undefined;
  #checkpointer: WalCheckpointer | undefined;
  /** Commits are held for a checkpoint that lets the log start over; the timer ends the hold regardless. */
  #restartHold: ReturnType<typeof setTimeout> | undefined;
  /** Raw files of committed rows still being written or synced: readers wait for them. */
  readonly #filesInFlight = new Map<string, Promise<void>>();
  /** Messages announced by #addStagedFile rather than by their batch. */
  readonly #announceLater = new Set<string>();
  /** Large raw messages; undefined in memory. */
  readonly #rawFiles: RawFiles | undefined;
  /** PAGE_SIZE for a mailbox created by this version; an older file keeps the size it was made with. */
  readonly #pageSize: number;
  #logBytes = 0;
  #added = 0;
  #addedBytes = 0;
  #deleted = 0;

  constructor(options: SqliteStoreOptions) {
    this.#path = options.path;
    this.#maxMessages = options.maxMessages ?? DEFAULT_MAX_MESSAGES;
    this.#maxAgeMs = options.maxAgeMs;
    this.#now = options.now ?? Date.now;
    this.#db = new Database(options.path, { create: true, strict: true });
    const durableBySync = this.#configure(options.path === ":memory:");
    migrate(this.#db);
    this.#pageSize =
      this.#db.query<{ page_size: number }, []>("PRAGMA page_size").get()?.page_size ?? PAGE_SIZE;
    if (durableBySync) this.#walFd = this.#openWal(options.path);
    if (this.#walFd !== undefined) {
      this.#db.exec("PRAGMA wal_autocheckpoint = 0");
      this.#checkpointer = new WalCheckpointer(
        options.path,
        BUSY_TIMEOUT_MS,
        (result) => this.#checkpointed(result),
        // Without the worker, SQLite checkpoints inside commits again (1000 pages is its default).
        () => {
          this.#endRestartHold();
          if (!this.#closed) this.#db.exec("PRAGMA wal_autocheckpoint = 1000");
        },
      );
    }
    this.#rawFiles = options.path === ":memory:" ? undefined : new RawFiles(`${options.path}-raw`);
    this.#insertMessage = this.#db.prepare(
      "INSERT INTO messages (id, created, size, envelope) VALUES (?, ?, ?, ?)",
    );
    // A message deleted before its summary was made gets none, even if a new one took its seq.
    this.#insertSummary = this.#db.prepare(
      `INSERT OR REPLACE INTO message_summary (seq, message_id, subject, date, addresses, from_search,
         to_search, cc_search, bcc_search, reply_to_search, subject_search, header_search)
       SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12
       WHERE EXISTS (SELECT 1 FROM messages WHERE seq = ?1 AND id = ?13)`,
    );
    this.#tags = new TagTable(this.#db);
    this.#insertRaw = this.#db.prepare("INSERT INTO message_raw (seq, raw, in_file) VALUES (?, ?, ?)");
    // A message deleted while it was being parsed gets no index row, even if a new one took its seq.
    this.#updateIndex = this.#db.prepare(
      `INSERT OR REPLACE INTO message_index (seq, attachments, inline, snippet, search_text)
       SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM messages WHERE seq = ?1 AND id = ?6)`,
    );
    this.#reconcileRawFiles();
    this.#total = this.#countWhere({ sql: "1", params: [] }).total;
    this.#committer = new GroupCommit({
      commit: (batch) => this.#commit(batch),
      sync: this.#walFd === undefined ? undefined : () => this.#syncWal(),
      // Listeners (the API's wait and events) hear of a message only once it is durable; a staged
      // large message once its file is too (#addStagedFile).
      durable: (ids) =>
        this.#emit(this.#announceLater.size === 0 ? ids : ids.filter((id) => !this.#announceLater.has(id))),
      maxItems: GROUP_COMMIT_MAX_MESSAGES,
      maxBytes: GROUP_COMMIT_MAX_BYTES,
      // Bounds the memory a batch holds: a message in a file holds none.
      sizeOf: (message) => message.raw.length,
    });
    if (this.#maxAgeMs !== undefined && this.#maxAgeMs > 0) {
      const every = Math.min(MAX_PRUNE_INTERVAL_MS, Math.max(MIN_PRUNE_INTERVAL_MS, this.#maxAgeMs / 10));
      this.#pruneTimer = setInterval(() => this.#pruneNow(), every);
      this.#pruneTimer.unref();
    }
    if (this.#unindexedSeqs(0, 1).length > 0) this.#armIdleIndexer();
  }

  /**
   * Durability: a message is acknowledged only once its commit is on disk. With synchronous=FULL
   * SQLite would fsync the write-ahead log inside every commit, on the main thread, which then
   * serves no SMTP client for the length of the fsync. Instead the log is written with
   * synchronous=NORMAL (WAL stays consistent, checkpoints are still synced) and then fdatasync'd
   * off the main thread by `#syncWal` before the batch's promises resolve: the same guarantee as
   * FULL for every acknowledged message, while the next batch gathers during the sync.
   * Returns whether that scheme is in use; without WAL (in memory, or a file system that refuses
   * it) commits fall back to synchronous=FULL.
   */
  #configure(inMemory: boolean): boolean {
    // Only takes effect on a new database, before its tables exist. Older mailboxes keep their
    // page size and auto_vacuum; new ones have none, whose pointer-map pages were one more page
    // written by every commit (freed pages are reused by new mail instead of given back).
    this.#db.exec(`PRAGMA page_size = ${PAGE_SIZE}`);
    this.#db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    this.#db.exec(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT}`);
    if (inMemory) return false;
    const mode = this.#db.query<{ journal_mode: string }, []>("PRAGMA journal_mode = WAL").get();
    const wal = mode?.journal_mode.toLowerCase() === "wal";
    this.#db.exec(wal ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL");
    return wal;
  }

  #openWal(path: string): number | undefined {
    try {
      return openSync(`${path}-wal`, "r");
    } catch {
      this.#db.exec("PRAGMA synchronous = FULL");
      return undefined;
    }
  }

  #syncWal(): Promise<void> {
    const fd = this.#walFd;
    if (fd === undefined) return Promise.resolve();
    const sync = new Promise<void>((resolve, reject) => {
      fdatasync(fd, (error) => (error ? reject(error) : resolve()));
    });
    this.#syncInFlight = sync.then(
      () => undefined,
      () => undefined,
    );
    return sync;
  }

  add(raw: Uint8Array | StagedMessage, envelope: StoredEnvelope): Promise<string> {
    if (raw instanceof Uint8Array) return this.#addBytes(raw, envelope);
    if (raw instanceof StagedRaw && raw.fileId !== undefined) return this.#addStagedFile(raw, envelope);
    if (raw.raw !== undefined) return this.#addBytes(raw.raw, envelope);
    return Promise.reject(new Error("a staged message from another store"));
  }

  stage(body: AsyncIterable<Uint8Array>, prefix?: Uint8Array): Promise<StagedMessage> {
    if (this.#closed) return Promise.reject(new StoreClosedError());
    return stageMessage(body, prefix, {
      rawFiles: this.#rawFiles,
      fileMinBytes: RAW_FILE_MIN_BYTES,
      newId: () => newMessageId(this.#now()),
    });
  }

  #addBytes(raw: Uint8Array, envelope: StoredEnvelope): Promise<string> {
    if (this.#closed) return Promise.reject(new StoreClosedError());
    const created = this.#now();
    const id = newMessageId(created);
    const rawFiles = this.#rawFiles;
    const inFile = rawFiles !== undefined && raw.length >= RAW_FILE_MIN_BYTES;
    // A message in a file is summarized now, while its header section is in memory anyway.
    const headers = inFile ? summarizeHeaders(raw, envelope) : undefined;
    const message: PendingMessage = { id, created, raw, size: raw.length, inFile, envelope, headers };
    if (!inFile || rawFiles === undefined) return this.#committer.submit(message);
    // The file is durable before the row that names it is committed.
    return rawFiles.write(id, raw).then(() => this.#submitWithFile(message, () => rawFiles.remove([id])));
  }

  /**
   * The row of a staged large message is committed while its file's last writes and sync are
   * still under way; the message is acknowledged (and announced) once both are done. Readers of
   * its raw bytes wait for the file meanwhile. A crash between the two leaves a row whose file is
   * missing or short, which start-up drops (#reconcileRawFiles): it was never acknowledged.
   */
  #addStagedFile(staged: StagedRaw, envelope: StoredEnvelope): Promise<string> {
    const id = staged.fileId;
    if (staged.discarded || id === undefined)
      return Promise.reject(new Error("the staged message was discarded"));
    if (this.#closed) {
      staged.discard();
      return Promise.reject(new StoreClosedError());
    }
    const created = this.#now();
    const message: PendingMessage = {
      id,
      created,
      raw: EMPTY,
      size: staged.size,
      inFile: true,
      envelope,
      headers: summarizeHeaders(staged.header, envelope),
    };
    const durable = staged.durable;
    this.#filesInFlight.set(id, durable);
    this.#announceLater.add(id);
    const committed = this.#committer.submit(message);
    return Promise.allSettled([committed, durable]).then(([row, file]) => {
      this.#filesInFlight.delete(id);
      this.#announceLater.delete(id);
      if (row.status === "fulfilled" && file.status === "fulfilled") {
        this.#emit([id]);
        return id;
      }
      // The row may have come without its file: it goes again, and so does the file.
      if (row.status === "fulfilled" && !this.#closed) this.#deleteWhere(idCondition([id]));
      staged.discard();
      throw row.status === "rejected" ? row.reason : file.status === "rejected" ? file.reason : undefined;
    });
  }

  /** Commits the row of a message whose raw file is durable; the file goes if the row does not come. */
  #submitWithFile(message: PendingMessage, removeFile: () => unknown): Promise<string> {
    if (this.#closed) {
      removeFile();
      return Promise.reject(new StoreClosedError());
    }
    return this.#committer.submit(message).catch((error: unknown) => {
      removeFile();
      throw error;
    });
  }

  #commit(batch: readonly PendingMessage[]): string[] {
    const before = { total: this.#total, deleted: this.#deleted };
    let prunedFiles: string[];
    try {
      prunedFiles = this.#insertBatch(batch);
    } catch (error) {
      // Rolled back: the counts the transaction moved go back too.
      this.#total = before.total;
      this.#deleted = before.deleted;
      throw error;
    }
    this.#removeRawFiles(prunedFiles);
    let bytes = PAGES_PER_COMMIT * this.#pageSize;
    for (const message of batch) if (!message.inFile) bytes += message.size;
    this.#wroteToLog(bytes);
    this.#added += batch.length;
    for (const message of batch) this.#addedBytes += message.size;
    this.#lastCommitAt = performance.now();
    this.#armIdleIndexer();
    return batch.map((message) => message.id);
  }

  /** Returns the IDs of pruned messages whose raw files are to be removed once this has committed. */
  #insertBatch(batch: readonly PendingMessage[]): string[] {
    let prunedFiles: string[] = [];
    this.#db.transaction(() => {
      for (const message of batch) {
        const result = this.#insertMessage.run(
          message.id,
          message.created,
          message.size,
          JSON.stringify(message.envelope),
        );
        const seq = Number(result.lastInsertRowid);
        if (message.headers) {
          this.#insertSummary.run(...summaryParams(seq, message.id, message.headers));
          this.#tags.add(seq, message.id, message.headers.tags);
        }
        this.#insertRaw.run(seq, message.inFile ? EMPTY : message.raw, message.inFile ? 1 : 0);
      }
      this.#total += batch.length;
      prunedFiles = this.#pruneByCount(Math.floor(this.#maxMessages * PRUNE_SLACK_FRACTION));
    })();
    return prunedFiles;
  }

  #wroteToLog(bytes: number): void {
    this.#logBytes += bytes;
    if (this.#logBytes < CHECKPOINT_AFTER_BYTES || !this.#checkpointer) return;
    this.#logBytes = 0;
    this.#checkpointer.request();
  }

  /**
   * After a checkpoint that left part of a long log behind (commits went on meanwhile), commits
   * are held and a second checkpoint copies the rest; the first commit after it starts the log
   * over. The main thread never copies pages or syncs the database itself.
   */
  #checkpointed(result: CheckpointResult | undefined): void {
    if (this.#restartHold !== undefined) {
      this.#endRestartHold();
      return;
    }
    const checkpointer = this.#checkpointer;
    // Even a checkpoint that copied all it saw leaves behind the commits made while it ran.
    if (this.#closed || !result || !checkpointer || result.log * this.#pageSize < RESTART_LOG_BYTES) return;
    this.#committer.hold();
    this.#restartHold = setTimeout(() => this.#endRestartHold(), RESTART_HOLD_LIMIT_MS);
    checkpointer.request();
  }

  #endRestartHold(): void {
    if (this.#restartHold === undefined) return;
    clearTimeout(this.#restartHold);
    this.#restartHold = undefined;
    this.#committer.release();
  }

  #emit(ids: readonly string[]): void {
    for (const listener of this.#listeners) {
      try {
        listener(ids);
      } catch {
        // A listener's failure is its own; the messages are stored and the SMTP client gets its 250.
      }
    }
  }

  onNewMessages(listener: NewMessagesListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async list(options: PageOptions = {}): Promise<MessagePage> {
    return this.#page({ sql: "1", params: [] }, options);
  }

  async search(query: string, options: SearchOptions = {}): Promise<MessagePage> {
    const condition = await this.#searchCondition(query, options.tz, options.onlyIds);
    return this.#page(condition, options);
  }

  async get(id: string): Promise<MessageSummary | undefined> {
    this.#assertOpen();
    this.#summarizePending();
    const row = this.#db
      .query<SummaryRow, [string]>(`SELECT ${SUMMARY_COLUMNS} FROM ${MESSAGES_FROM} WHERE m.id = ?`)
      .get(id);
    if (!row) return undefined;
    const [summary] = await this.#summaries([row]);
    return summary;
  }

  async latest(query?: string, tz?: string): Promise<MessageSummary | undefined> {
    const page =
      query && query.trim().length > 0
        ? await this.search(query, { tz, start: 0, limit: 1 })
        : await this.list({ start: 0, limit: 1 });
    return page.messages[0];
  }

  async raw(id: string): Promise<Uint8Array | undefined> {
    this.#assertOpen();
    const row = this.#db
      .query<{ raw: Uint8Array; in_file: number; size: number }, [string]>(
        "SELECT r.raw AS raw, r.in_file AS in_file, m.size AS size FROM messages m JOIN message_raw r ON r.seq = m.seq WHERE m.id = ?",
      )
      .get(id);
    if (!row) return undefined;
    return row.in_file ? this.#readRawFile(id, row.size) : row.raw;
  }

  /** A raw file that is gone means the message was deleted meanwhile. */
  async #readRawFile(id: string, size: number): Promise<Uint8Array | undefined> {
    try {
      await this.#filesInFlight.get(id);
      return await this.#rawFiles?.read(id, size);
    } catch {
      return undefined;
    }
  }

  async delete(selection: MessageSelection): Promise<number> {
    this.#assertOpen();
    // Without AUTOINCREMENT the seqs of deleted newest messages are given out again, possibly
    // below the indexer's mark: it starts over (cheaply, skipping what is indexed).
    this.#indexedThrough = 0;
    this.#summarizedThrough = 0;
    this.#deletions++;
    if ("all" in selection) return this.#deleteWhere({ sql: "1", params: [] });
    if ("ids" in selection) {
      let deleted = 0;
      for (const chunk of chunks(selection.ids, IDS_PER_STATEMENT))
        deleted += this.#deleteWhere(idCondition(chunk));
      return deleted;
    }
    return this.#deleteWhere(await this.#searchCondition(selection.query, selection.tz));
  }

  async markRead(selection: MessageSelection, read: boolean): Promise<number> {
    this.#assertOpen();
    const value = read ? 1 : 0;
    const update = (condition: SqlCondition): number =>
      this.#once(
        `UPDATE messages SET read = ? WHERE read != ? AND seq IN (${selectSeqs(condition)})`,
        (statement) => statement.run(value, value, ...condition.params),
      ).changes;
    if ("all" in selection) return update({ sql: "1", params: [] });
    if ("ids" in selection) {
      let changed = 0;
      for (const chunk of chunks(selection.ids, IDS_PER_STATEMENT)) changed += update(idCondition(chunk));
      return changed;
    }
    return update(await this.#searchCondition(selection.query, selection.tz));
  }

  async count(): Promise<{ total: number; unread: number }> {
    this.#assertOpen();
    const counts = this.#countWhere({ sql: "1", params: [] });
    return { total: counts.total, unread: counts.unread };
  }

  /* Tags: every call first summarizes what arrived, so X-Tags headers are applied before the change. */

  async tags(): Promise<TagCount[]> {
    this.#assertOpen();
    this.#summarizePending();
    return this.#tags.counts();
  }

  async setTags(ids: readonly string[], tags: readonly string[]): Promise<number> {
    this.#assertOpen();
    this.#summarizePending();
    return this.#tags.replace(ids, cleanTags(tags));
  }

  async renameTag(tag: string, name: string): Promise<number> {
    this.#assertOpen();
    this.#summarizePending();
    return this.#tags.rename(tag, name);
  }

  async deleteTag(tag: string): Promise<number> {
    this.#assertOpen();
    this.#summarizePending();
    return this.#tags.remove(tag);
  }

  async prune(): Promise<number> {
    this.#assertOpen();
    return this.#pruneNow();
  }

  stats(): StoreStats {
    const inFiles =
      this.#rawFiles === undefined
        ? 0
        : (this.#db
            .query<{ n: number | null }, []>(
              "SELECT SUM(m.size) AS n FROM message_raw r JOIN messages m ON m.seq = r.seq WHERE r.in_file = 1",
            )
            .get()?.n ?? 0);
    return {
      path: this.#path,
      sizeBytes:
        this.#path === ":memory:" ? 0 : fileSize(this.#path) + fileSize(`${this.#path}-wal`) + inFiles,
      addedMessages: this.#added,
      addedBytes: this.#addedBytes,
      deletedMessages: this.#deleted,
    };
  }

  close(): void {
    if (this.#closed) return;
    const settle = this.#committer.commitForClose();
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    clearInterval(this.#pruneTimer);
    clearTimeout(this.#restartHold);
    this.#restartHold = undefined;
    this.#listeners.clear();
    this.#checkpointer?.close();
    this.#rawFiles?.close();
    try {
      // The batch just committed is durable once the log is synced; closing then checkpoints it.
      if (this.#walFd !== undefined) fdatasyncSync(this.#walFd);
      this.#db.close();
      settle();
    } catch (error) {
      settle(error);
      throw error;
    } finally {
      const fd = this.#walFd;
      this.#walFd = undefined;
      if (fd !== undefined) {
        // A sync still in flight owns the descriptor until it completes.
        if (this.#syncInFlight) void this.#syncInFlight.then(() => closeSync(fd));
        else closeSync(fd);
      }
    }
  }

  /**
   * Runs a statement whose text depends on the query and finalizes it: db.query() would cache every
   * distinct search shape for the life of the store.
   */
  #once<T>(sql: string, use: (statement: Statement<unknown, Param[]>) => T): T {
    const statement = this.#db.prepare<unknown, Param[]>(sql);
    try {
      return use(statement);
    } finally {
      statement.finalize();
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreClosedError();
  }

  async #searchCondition(query: string, tz?: string, onlyIds?: readonly string[]): Promise<SqlCondition> {
    this.#assertOpen();
    this.#summarizePending();
    const terms = parseSearchQuery(query, tz);
    const condition = searchCondition(terms);
    if (onlyIds !== undefined) {
      const ids = idCondition(onlyIds.slice(0, IDS_PER_STATEMENT));
      if (needsBodyIndex(terms)) await this.#indexWhere(ids);
      return { sql: `(${condition.sql}) AND ${ids.sql}`, params: [...condition.params, ...ids.params] };
    }
    if (needsBodyIndex(terms)) await this.#indexAll();
    this.#assertOpen();
    return condition;
  }

  async #page(condition: SqlCondition, options: PageOptions): Promise<MessagePage> {
    this.#assertOpen();
    this.#summarizePending();
    const start = Math.max(0, Math.floor(options.start ?? 0));
    const limit = Math.max(1, Math.floor(options.limit ?? DEFAULT_PAGE_LIMIT));
    const rows = this.#once(
      `SELECT ${SUMMARY_COLUMNS} FROM ${MESSAGES_FROM} WHERE ${condition.sql} ORDER BY m.seq DESC LIMIT ? OFFSET ?`,
      (statement) => statement.all(...condition.params, limit, start) as SummaryRow[],
    );
    const all = this.#countWhere({ sql: "1", params: [] });
    const matched = condition.sql === "1" ? all : this.#countWhere(condition);
    const messages = await this.#summaries(rows);
    return {
      total: all.total,
      unread: all.unread,
      matched: matched.total,
      matchedUnread: matched.unread,
      start,
      messages,
    };
  }

  #countWhere(condition: SqlCondition): { total: number; unread: number } {
    if (condition.sql === "1") {
      // The whole mailbox: counted from the ID index and the read index, not by reading every row.
      const count = (sql: string) => this.#db.query<{ n: number }, []>(sql).get()?.n ?? 0;
      const total = count("SELECT COUNT(*) AS n FROM messages");
      return { total, unread: total - count("SELECT COUNT(*) AS n FROM messages WHERE read = 1") };
    }
    const row = this.#once(
      `SELECT COUNT(*) AS total, SUM(read = 0) AS unread FROM ${fromFor(condition)} WHERE ${condition.sql}`,
      (statement) => statement.get(...condition.params) as { total: number; unread: number | null } | null,
    );
    return { total: row?.total ?? 0, unread: row?.unread ?? 0 };
  }

  /** Summaries for rows, indexing the bodies of any that the idle indexer has not reached yet. */
  async #summaries(rows: SummaryRow[]): Promise<MessageSummary[]> {
    const unindexed = rows.filter((row) => row.indexed === 0);
    if (unindexed.length > 0) {
      await this.#indexSeqs(unindexed.map((row) => row.seq));
      this.#assertOpen();
      const fresh = this.#db.query<Pick<SummaryRow, "attachments" | "inline" | "snippet">, [number]>(
        "SELECT attachments, inline, snippet FROM message_index WHERE seq = ?",
      );
      for (const row of unindexed) {
        const update = fresh.get(row.seq);
        if (update) Object.assign(row, update);
      }
    }
    return rows.map(toSummary);
  }

  #deleteWhere(condition: SqlCondition): number {
    let deleted = 0;
    let files: string[] = [];
    this.#db.transaction(() => {
      // The condition may read the summary or the index, which go too: the doomed seqs are noted
      // first (a temporary table, this connection's own), then every table loses them.
      this.#db.exec("CREATE TEMP TABLE IF NOT EXISTS doomed (seq INTEGER PRIMARY KEY)");
      this.#db.exec("DELETE FROM doomed");
      this.#once(`INSERT INTO doomed ${selectSeqs(condition)}`, (statement) =>
        statement.run(...condition.params),
      );
      files = this.#db
        .query<{ id: string }, []>(
          `SELECT m.id AS id FROM doomed d JOIN messages m ON m.seq = d.seq JOIN message_raw r ON r.seq = d.seq
           WHERE r.in_file = 1`,
        )
        .all()
        .map((row) => row.id);
      for (const table of ["message_raw", "message_index", "message_summary", "message_tags"])
        this.#db.exec(`DELETE FROM ${table} WHERE seq IN (SELECT seq FROM doomed)`);
      deleted = this.#db.query("DELETE FROM messages WHERE seq IN (SELECT seq FROM doomed)").run().changes;
      this.#db.exec("DELETE FROM doomed");
    })();
    this.#total -= deleted;
    this.#deleted += deleted;
    this.#removeRawFiles(files);
    // Gives free pages back on mailboxes made with auto_vacuum (before schema 2); a no-op otherwise.
    if (deleted > 0) this.#db.exec("PRAGMA incremental_vacuum");
    return deleted;
  }

  /**
   * Files go only after the rows that name them were deleted. A crash in between leaves files
   * without rows, and a deletion that was not yet durable may come back without its file: both
   * are tidied at start-up (#reconcileRawFiles).
   */
  #removeRawFiles(ids: readonly string[]): void {
    if (ids.length > 0) void this.#rawFiles?.remove(ids);
  }

  #reconcileRawFiles(): void {
    const rawFiles = this.#rawFiles;
    if (!rawFiles) return;
    const files = new Set(rawFiles.list());
    const lost: number[] = [];
    const rows = this.#db
      .query<{ seq: number; id: string; size: number }, []>(
        "SELECT m.seq AS seq, m.id AS id, m.size AS size FROM message_raw r JOIN messages m ON m.seq = r.seq WHERE r.in_file = 1",
      )
      .all();
    for (const row of rows) {
      // A file shorter than its message was still being written when the process died.
      if (!files.delete(row.id) || fileSize(join(rawFiles.dir, row.id)) < row.size) lost.push(row.seq);
    }
    if (lost.length > 0) {
      this.#db.transaction(() => {
        for (const seqs of chunks(lost, IDS_PER_STATEMENT)) {
          const list = seqs.join(", ");
          for (const table of ["message_raw", "message_index", "message_summary", "message_tags", "messages"])
            this.#db.exec(`DELETE FROM ${table} WHERE seq IN (${list})`);
        }
      })();
    }
    const old = Date.now() - ORPHAN_FILE_AGE_MS;
    const orphans = [...files].filter((id) => fileModified(join(rawFiles.dir, id)) < old);
    void rawFiles.remove(orphans);
  }

  /**
   * Prunes down to maxMessages once the mailbox holds more than maxMessages + slack. Commits pass a
   * slack of 1% (as Mailpit, which prunes on a timer, overshoots too): deleting the oldest rows
   * rewrites pages at the start of every table, and doing that for 50 messages at once instead of
   * for each batch saves a good share of what a commit writes.
   */
  /** Returns the IDs of pruned messages that have raw files, for removal once this has committed. */
  #pruneByCount(slack = 0): string[] {
    if (this.#maxMessages <= 0 || this.#total <= this.#maxMessages + slack) return [];
    const excess = this.#total - this.#maxMessages;
    const cutoff = this.#db
      .query<{ seq: number }, [number]>("SELECT seq FROM messages ORDER BY seq LIMIT 1 OFFSET ?")
      .get(excess - 1);
    if (!cutoff) return [];
    const files = this.#db
      .query<{ id: string }, [number]>(
        "SELECT m.id AS id FROM message_raw r JOIN messages m ON m.seq = r.seq WHERE r.seq <= ? AND r.in_file = 1",
      )
      .all(cutoff.seq)
      .map((row) => row.id);
    this.#db.query("DELETE FROM message_raw WHERE seq <= ?").run(cutoff.seq);
    this.#db.query("DELETE FROM message_index WHERE seq <= ?").run(cutoff.seq);
    this.#db.query("DELETE FROM message_summary WHERE seq <= ?").run(cutoff.seq);
    this.#db.query("DELETE FROM message_tags WHERE seq <= ?").run(cutoff.seq);
    const deleted = this.#db.query("DELETE FROM messages WHERE seq <= ?").run(cutoff.seq).changes;
    this.#total -= deleted;
    this.#deleted += deleted;
    return files;
  }

  #pruneNow(): number {
    if (this.#closed) return 0;
    let removed = 0;
    if (this.#maxAgeMs !== undefined && this.#maxAgeMs > 0) {
      removed += this.#deleteWhere({ sql: "created < ?", params: [this.#now() - this.#maxAgeMs] });
    }
    if (this.#maxMessages > 0 && this.#total > this.#maxMessages) {
      const before = this.#total;
      let files: string[] = [];
      this.#db.transaction(() => {
        files = this.#pruneByCount();
      })();
      this.#removeRawFiles(files);
      removed += before - this.#total;
    }
    return removed;
  }

  /**
   * Makes the header summaries of messages that have none yet, up to `limit` of them, oldest
   * first, and returns how many it made. Listings and searches call it first (so they see every
   * message with its fields); the idle indexer calls it in batches.
   */
  #summarizePending(limit = Number.POSITIVE_INFINITY): number {
    if (this.#closed) return 0;
    const deletions = this.#deletions;
    let made = 0;
    while (made < limit) {
      const rows = this.#db
        .query<
          { seq: number; id: string; envelope: string; raw: Uint8Array; in_file: number },
          [number, number]
        >(
          `SELECT m.seq AS seq, m.id AS id, m.envelope AS envelope, r.in_file AS in_file,
             substr(r.raw, 1, ${HEADER_SECTION_LIMIT}) AS raw
           FROM messages m JOIN message_raw r ON r.seq = m.seq ${SUMMARY_JOIN}
           WHERE s.seq IS NULL AND m.seq > ? ORDER BY m.seq LIMIT ?`,
        )
        .all(this.#summarizedThrough, Math.min(SUMMARY_BATCH, limit - made));
      if (rows.length === 0) break;
      this.#db.transaction(() => {
        for (const row of rows) {
          const envelope = JSON.parse(row.envelope) as StoredEnvelope;
          // Messages in files got theirs when they were added; one without is summarized empty.
          const headers = summarizeHeaders(row.in_file ? EMPTY : row.raw, envelope);
          this.#insertSummary.run(...summaryParams(row.seq, row.id, headers));
          this.#tags.add(row.seq, row.id, headers.tags);
        }
      })();
      made += rows.length;
      if (deletions === this.#deletions)
        this.#summarizedThrough = rows.at(-1)?.seq ?? this.#summarizedThrough;
      this.#wroteToLog(PAGES_PER_COMMIT * this.#pageSize + rows.length * 400);
      if (rows.length < SUMMARY_BATCH) break;
    }
    return made;
  }

  /**
   * Body indexing runs once no commit happened for IDLE_INDEX_DELAY_MS, a batch per timer turn, and
   * steps back as soon as messages arrive again.
   */
  #armIdleIndexer(delay = IDLE_INDEX_DELAY_MS): void {
    if (this.#idleTimer !== undefined || this.#closed) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      void this.#indexWhenIdle();
    }, delay);
    this.#idleTimer.unref();
  }

  async #indexWhenIdle(): Promise<void> {
    if (this.#closed) return;
    const quietFor = performance.now() - this.#lastCommitAt;
    if (quietFor < IDLE_INDEX_DELAY_MS) {
      this.#armIdleIndexer(IDLE_INDEX_DELAY_MS - quietFor);
      return;
    }
    try {
      // Header summaries first (cheap, and every listing wants them), then body indexes.
      if (this.#summarizePending(SUMMARY_BATCH) === SUMMARY_BATCH || (await this.#indexBatch()))
        this.#armIdleIndexer(0);
      // Idle and indexed: a good moment to fold the log into the database and restart it.
      else this.#checkpointer?.request();
    } catch {
      // The store closed under the indexer; nothing left to do.
    }
  }

  /**
   * Indexes the oldest unindexed messages (appending to message_index in order keeps its pages
   * full; listings index the newest on demand); returns whether any remain.
   */
  async #indexBatch(): Promise<boolean> {
    if (this.#closed) return false;
    const deletions = this.#deletions;
    const seqs = this.#unindexedSeqs(this.#indexedThrough, INDEX_BATCH);
    if (seqs.length === 0) return false;
    await this.#indexSeqs(seqs);
    if (deletions === this.#deletions)
      this.#indexedThrough = Math.max(this.#indexedThrough, seqs.at(-1) ?? 0);
    return seqs.length === INDEX_BATCH;
  }

  #unindexedSeqs(after: number, limit: number): number[] {
    return this.#db
      .query<{ seq: number }, [number, number]>(
        `SELECT m.seq AS seq FROM ${MESSAGES_FROM} WHERE i.seq IS NULL AND m.seq > ? ORDER BY m.seq LIMIT ?`,
      )
      .all(after, limit)
      .map((row) => row.seq);
  }

  /** Brings every message's body index up to date (a free-text or attachment search needs it). */
  #indexAll(): Promise<void> {
    this.#draining ??= (async () => {
      try {
        while (await this.#indexBatch()) {
          // Each batch yields to the event loop, so SMTP keeps being served during a long drain.
        }
      } finally {
        this.#draining = undefined;
      }
    })();
    return this.#draining;
  }

  async #indexWhere(condition: SqlCondition): Promise<void> {
    const seqs = this.#once(
      `SELECT m.seq AS seq FROM ${MESSAGES_FROM} WHERE i.seq IS NULL AND ${condition.sql}`,
      (statement) => (statement.all(...condition.params) as { seq: number }[]).map((row) => row.seq),
    );
    if (seqs.length > 0) await this.#indexSeqs(seqs);
  }

  async #indexSeqs(seqs: readonly number[]): Promise<void> {
    const readRaw = this.#db.query<{ raw: Uint8Array; id: string; in_file: number; size: number }, [number]>(
      "SELECT r.raw AS raw, r.in_file AS in_file, m.id AS id, m.size AS size FROM message_raw r JOIN messages m ON m.seq = r.seq WHERE r.seq = ?",
    );
    const updates: [number, number, number, string, string, string][] = [];
    for (const seq of seqs) {
      if (this.#closed) return;
      const row = readRaw.get(seq);
      if (!row) continue;
      try {
        const raw = row.in_file ? await this.#readRawFile(row.id, row.size) : row.raw;
        if (raw === undefined) throw new Error("raw file gone");
        const index = await indexRaw(raw);
        updates.push([seq, index.attachments, index.inline, index.snippet, index.searchText, row.id]);
      } catch {
        // A message postal-mime cannot read (or whose file is gone) still lists and searches by its headers.
        updates.push([seq, 0, 0, "", "", row.id]);
      }
    }
    if (this.#closed || updates.length === 0) return;
    this.#db.transaction(() => {
      for (const update of updates) this.#updateIndex.run(...update);
    })();
    this.#wroteToLog(
      PAGES_PER_COMMIT * this.#pageSize +
        updates.reduce((sum, update) => sum + update[3].length + update[4].length, 0),
    );
  }
}

/** The message_summary row of a message, as #insertSummary binds it. */
function summaryParams(seq: number, id: string, headers: HeaderSummary): Param[] {
  const addresses: StoredAddresses = {
    from: headers.from,
    to: headers.to,
    cc: headers.cc,
    bcc: headers.bcc,
    replyTo: headers.replyTo,
  };
  const fromSearch = addressSearchText(headers.from ? [headers.from] : []);
  const toSearch = addressSearchText(headers.to);
  const ccSearch = addressSearchText(headers.cc);
  const bccSearch = addressSearchText(headers.bcc);
  const replyToSearch = addressSearchText(headers.replyTo);
  const subjectSearch = headers.subject.toLowerCase();
  const headerSearch = [subjectSearch, fromSearch, toSearch, ccSearch, bccSearch, replyToSearch]
    .concat(headers.messageId.toLowerCase())
    .join(" ");
  return [
    seq,
    headers.messageId,
    headers.subject,
    headers.date,
    JSON.stringify(addresses),
    fromSearch,
    toSearch,
    ccSearch,
    bccSearch,
    replyToSearch,
    subjectSearch,
    headerSearch,
    id,
  ];
}

const NO_ADDRESSES: StoredAddresses = { from: null, to: [], cc: [], bcc: [], replyTo: [] };

function toSummary(row: SummaryRow): MessageSummary {
  const addresses = row.addresses === null ? NO_ADDRESSES : (JSON.parse(row.addresses) as StoredAddresses);
  return {
    id: row.id,
    messageId: row.message_id,
    read: row.read === 1,
    from: addresses.from,
    to: addresses.to,
    cc: addresses.cc,
    bcc: addresses.bcc,
    replyTo: addresses.replyTo,
    subject: row.subject,
    created: row.created,
    date: row.date,
    size: row.size,
    attachments: row.attachments,
    inline: row.inline,
    snippet: row.snippet,
    envelope: JSON.parse(row.envelope) as StoredEnvelope,
    tags: row.tags === null ? [] : row.tags.split("\n").sort(compareTags),
  };
}

/** What the address filters match against: "name <address>" entries, lower-cased. */
function addressSearchText(mailboxes: readonly Mailbox[]): string {
  return mailboxes
    .map((mailbox) => (mailbox.name ? `${mailbox.name} <${mailbox.address}>` : `<${mailbox.address}>`))
    .join(", ")
    .toLowerCase();
}

function fromFor(condition: SqlCondition): string {
  const summary = SUMMARY_COLUMN_NAMES.test(condition.sql) ? ` ${SUMMARY_JOIN}` : "";
  const index = INDEX_COLUMNS.test(condition.sql) ? ` ${INDEX_JOIN}` : "";
  return `messages m${summary}${index}`;
}

/** The seqs of the messages a condition selects, as a subquery. */
function selectSeqs(condition: SqlCondition): string {
  return `SELECT m.seq FROM ${fromFor(condition)} WHERE ${condition.sql}`;
}

function idCondition(ids: readonly string[]): SqlCondition {
  if (ids.length === 0) return { sql: "0", params: [] };
  return { sql: `id IN (${ids.map(() => "?").join(", ")})`, params: [...ids] };
}

function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let index = 0; index < items.length; index += size) yield items.slice(index, index + size);
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function fileModified(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

const EMPTY = new Uint8Array(0);
