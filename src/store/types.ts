import type { TagCount } from "./tags.ts";

/**
 * The mailbox `serve` keeps: what a store holds and the interface every backend implements, so a
 * second backend (for example PostgreSQL) can be added without touching the SMTP server or the API.
 */

/** The SMTP envelope and connection facts a message arrived with. */
export interface StoredEnvelope {
  /** MAIL FROM reverse-path; "" for the null sender `<>`. */
  mailFrom: string;
  rcptTo: string[];
  /** MAIL parameters (SIZE, BODY, SMTPUTF8, RET, ENVID, ...), keyword upper-cased. */
  mailParams: Record<string, string>;
  /** RCPT parameters, one record per entry of rcptTo (NOTIFY, ORCPT, ...). */
  rcptParams: Record<string, string>[];
  clientAddress: string;
  heloName?: string;
  tls?: { protocol: string; cipher: string };
  authUser?: string;
}

/** One address of a header field, decoded (RFC 2047 words in the name). */
export interface Mailbox {
  name: string;
  address: string;
}

/** What listings and searches return about a message; no body, no raw bytes. */
export interface MessageSummary {
  id: string;
  /** Message-ID header without the angle brackets. */
  messageId: string;
  read: boolean;
  from: Mailbox | null;
  to: Mailbox[];
  cc: Mailbox[];
  /** Bcc header addresses plus envelope recipients that appear in neither To nor Cc. */
  bcc: Mailbox[];
  replyTo: Mailbox[];
  subject: string;
  /** When the store received the message, ms since the epoch. */
  created: number;
  /** The Date header, ms since the epoch, or null when absent or unreadable. */
  date: number | null;
  /** Size of the raw message in octets. */
  size: number;
  /** Attachment count; body-derived, so filled in by the indexer (see `MessageStore`). */
  attachments: number;
  inline: number;
  /** Up to 250 characters of the text body, whitespace collapsed. */
  snippet: string;
  envelope: StoredEnvelope;
  /** Sorted by name, ignoring case (tags.ts). */
  tags: string[];
}

/** A page of summaries plus the counts the Mailpit API reports beside it. */
export interface MessagePage {
  /** Messages in the mailbox. */
  total: number;
  /** Unread messages in the mailbox. */
  unread: number;
  /** Messages matching the query (the whole mailbox for a plain listing). */
  matched: number;
  /** Unread messages matching the query. */
  matchedUnread: number;
  start: number;
  messages: MessageSummary[];
}

export interface PageOptions {
  start?: number;
  limit?: number;
}

export interface SearchOptions extends PageOptions {
  /** IANA time zone for before:/after: dates without an offset; the process's zone otherwise. */
  tz?: string;
  /** Only consider these message IDs (used to test new arrivals against a waiting query). */
  onlyIds?: readonly string[];
}

/** Which messages an update or deletion applies to. */
export type MessageSelection = { all: true } | { ids: readonly string[] } | { query: string; tz?: string };

/** Told after a group of messages is committed; the IDs are in arrival order. */
export type NewMessagesListener = (ids: readonly string[]) => void;

export interface StoreStats {
  /** Where the mailbox lives: a file path or ":memory:". */
  path: string;
  /** Database file plus write-ahead log, in octets (0 in memory). */
  sizeBytes: number;
  /** Since the store was opened. */
  addedMessages: number;
  addedBytes: number;
  deletedMessages: number;
}

/**
 * A message body the store has taken in (`MessageStore.stage`) but not yet stored: pass it to
 * `add`, or `discard` it.
 */
export interface StagedMessage {
  /** Octets of the whole message. */
  readonly size: number;
  /** The whole message when it was small enough to keep in memory; undefined when it went to disk. */
  readonly raw: Uint8Array | undefined;
  /** The message's header section (without the empty line after it). */
  readonly header: Uint8Array;
  /** Drops it: the message was refused after its end. */
  discard(): void;
}

export interface MessageStore {
  /**
   * Stores a message. Resolves with its ID only after the row is committed durably, so the SMTP
   * server may answer 250 then; rejects if the commit failed (answer 451). The store keeps a
   * reference to `raw`, not a copy, until the promise settles: do not reuse its buffer before.
   */
  add(raw: Uint8Array | StagedMessage, envelope: StoredEnvelope): Promise<string>;
  /**
   * Reads a message body as it arrives, `prefix` (a Received line) first. A large one is written
   * to disk while it is received instead of being gathered in memory. Rejects, leaving nothing
   * behind, if reading `body` throws.
   */
  stage(body: AsyncIterable<Uint8Array>, prefix?: Uint8Array): Promise<StagedMessage>;
  /** Newest first. */
  list(options?: PageOptions): Promise<MessagePage>;
  /** Mailpit's search syntax; throws `SearchQueryError` on a malformed query. Newest first. */
  search(query: string, options?: SearchOptions): Promise<MessagePage>;
  get(id: string): Promise<MessageSummary | undefined>;
  /** The newest message, or the newest that matches `query`. */
  latest(query?: string, tz?: string): Promise<MessageSummary | undefined>;
  /** The message exactly as received (with the server's Received line). */
  raw(id: string): Promise<Uint8Array | undefined>;
  /** Returns how many messages were deleted. */
  delete(selection: MessageSelection): Promise<number>;
  /** Returns how many messages changed state. */
  markRead(selection: MessageSelection, read: boolean): Promise<number>;
  count(): Promise<{ total: number; unread: number }>;
  /** Every tag in use and how many messages carry it, sorted by name ignoring case. */
  tags(): Promise<TagCount[]>;
  /** Replaces the tags of these messages (none clears them); returns how many of the IDs exist. */
  setTags(ids: readonly string[], tags: readonly string[]): Promise<number>;
  /** Renames a tag on every message that carries it; returns how many did. */
  renameTag(tag: string, name: string): Promise<number>;
  /** Takes a tag off every message; returns how many carried it. */
  deleteTag(tag: string): Promise<number>;
  /** Applies the retention limits now; returns how many messages were removed. */
  prune(): Promise<number>;
  /** Subscribes to new messages; returns the unsubscribe function. */
  onNewMessages(listener: NewMessagesListener): () => void;
  stats(): StoreStats;
  /** Commits what is pending and closes; later calls reject. */
  close(): void;
}

/** A search query the parser could not read; the API answers 400 with its message. */
export class SearchQueryError extends Error {
  override name = "SearchQueryError";
}

/** The store was used after `close()`. */
export class StoreClosedError extends Error {
  override name = "StoreClosedError";
  constructor() {
    super("the message store is closed");
  }
}
