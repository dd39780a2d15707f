/**
 * The durable outbound queue behind a small interface, so another backend (a queue shared by
 * several machines in PostgreSQL, say) can replace SQLite without touching the worker or the
 * commands. `openQueue` (open-queue.ts) gives the SQLite one.
 *
 * The life of a recipient: queued → active (leased by a worker) → delivered | deferred | failed;
 * deferred → active again when its next attempt is due; active → queued/deferred when the lease
 * is given back or its owner died. A message whose recipients are all delivered leaves the queue;
 * one with failed recipients stays (as Postfix's postsuper -r and `queue retry-failed` need it)
 * until it is deleted.
 */
import type { Path } from "../core/address.ts";
import type { Envelope } from "../core/envelope.ts";
import type { MailParams, RcptParams } from "../core/esmtp-params.ts";
import type { QueueRoute } from "./route.ts";

/** Sortable by arrival: see queue-id.ts. */
export type QueueId = string;

export type RecipientState = "queued" | "active" | "deferred" | "delivered" | "failed";

/** A reply as stored: RFC 5321 code, RFC 3463 enhanced code, text lines joined by "\n". */
export interface ReplyRecord {
  code: number;
  enhanced?: string;
  text: string;
}

/** "mail" for what was submitted; "dsn" for a delivery status notification we generated. */
export type MessageKind = "mail" | "dsn";

export interface EnqueueOptions {
  /** Arrival time (ms since the epoch); default now. */
  arrival?: number;
  kind?: MessageKind;
  /** Held messages are kept but not delivered until released. */
  held?: boolean;
}

/** A new message for the queue, as enqueue takes it (also how a DSN travels inside a settlement). */
export interface NewMessage {
  message: Uint8Array;
  envelope: Envelope;
  route: QueueRoute;
  options?: EnqueueOptions;
}

export interface QueueRecipient {
  index: number;
  path: Path;
  params: RcptParams;
  /** The grouping key the worker delivers by (route and, for MX delivery, the domain). */
  destination: string;
  state: RecipientState;
  attempts: number;
  /** When the next attempt is due, or when an active lease runs out; null once delivered or failed. */
  nextAttempt: number | null;
  lastAttempt: number | null;
  lastReply: ReplyRecord | null;
  /** A failure with no reply (connection refused, DNS, TLS...), as one line. */
  lastError: string | null;
  /** The host that gave the last reply. */
  remoteMta: string | null;
  /** RFC 3463 status reported for a failed recipient (in its DSN). */
  status: string | null;
  /** Who holds the lease while active ("host:pid:token"). */
  leaseOwner: string | null;
}

export interface QueueEntry {
  id: QueueId;
  arrival: number;
  /** The octets stored (the message as submitted). */
  size: number;
  from: Path;
  mailParams: MailParams;
  route: QueueRoute;
  kind: MessageKind;
  held: boolean;
  /** A delayed-delivery notice was sent for this message (RFC 3464 Action: delayed); sent once. */
  delayWarned: boolean;
  recipients: QueueRecipient[];
}

/** One delivery attempt for one recipient, as `queue show` lists them. */
export interface QueueAttempt {
  recipientIndex: number;
  at: number;
  state: "delivered" | "deferred" | "failed";
  reply: ReplyRecord | null;
  error: string | null;
  remoteMta: string | null;
}

/** Which messages an operation applies to: the given IDs, or every message. */
export interface Selection {
  ids?: readonly QueueId[];
}

export interface DueDestination {
  destination: string;
  route: QueueRoute;
  /** Messages with at least one due recipient there. */
  messages: number;
}

export interface LeaseRequest extends Selection {
  owner: string;
  /** Messages per lease; each brings all its due recipients for the destination. */
  limit: number;
  now: number;
  /** When the lease runs out unless renewed; the recipients are due again then. */
  until: number;
}

/** A message leased for one destination: only that destination's due recipients are in `envelope`. */
export interface LeasedMessage {
  id: QueueId;
  arrival: number;
  /** When max-age counts from: arrival, or the last `retry-failed`. */
  expiryBase: number;
  kind: MessageKind;
  route: QueueRoute;
  raw: Uint8Array;
  envelope: Envelope;
  /** The queue's recipient index for each recipient of `envelope`, in the same order. */
  recipientIndexes: number[];
  attempts: number[];
  delayWarned: boolean;
}

export type RecipientOutcome =
  | { state: "delivered"; reply?: ReplyRecord; remoteMta?: string }
  | { state: "deferred"; nextAttempt: number; reply?: ReplyRecord; error?: string; remoteMta?: string }
  | { state: "failed"; status: string; reply?: ReplyRecord; error?: string; remoteMta?: string }
  /** Not attempted after all (the worker is stopping): the lease is given back, no attempt counted. */
  | { state: "released" };

/** What one delivery attempt did to a leased message's recipients. */
export interface Settlement {
  id: QueueId;
  owner: string;
  at: number;
  recipients: { index: number; outcome: RecipientOutcome }[];
  /** Notifications to queue in the same transaction as the outcomes (never one without the other). */
  notifications?: NewMessage[];
  /** Set when `notifications` holds the delayed-delivery notice. */
  delayWarned?: boolean;
}

export interface QueueStats {
  messages: number;
  held: number;
  /** Recipients by state; held messages' pending recipients count under "held". */
  recipients: Record<RecipientState | "held", number>;
  destinations: { destination: string; recipients: Record<RecipientState | "held", number> }[];
  oldest: { id: QueueId; arrival: number } | null;
  bytes: number;
}

export interface ListOptions extends Selection {
  /** Leave out the recipients' details (faster for large queues). */
  summaryOnly?: boolean;
}

/**
 * The queue as the worker, `serve --relay` and the commands use it. Every call is asynchronous,
 * so that a backend on another machine (PostgreSQL, say) fits the same interface.
 */
export interface Queue {
  readonly path: string;

  /** Stores a message; resolves once it is durably committed (group commit), with its ID. */
  enqueue(
    message: Uint8Array,
    envelope: Envelope,
    route: QueueRoute,
    options?: EnqueueOptions,
  ): Promise<QueueId>;
  /** Called after each commit that added messages (in this process), e.g. to wake a worker. */
  onEnqueued(listener: (ids: readonly QueueId[]) => void): () => void;

  /** Destinations with recipients due at `now` (not held, not leased by a live worker). */
  dueDestinations(now: number, selection?: Selection): Promise<DueDestination[]>;
  /** The earliest time any pending recipient is due (leases count as due when they run out). */
  nextDue(selection?: Selection): Promise<number | undefined>;
  /** Leases due messages for one destination, oldest first. */
  lease(destination: string, request: LeaseRequest): Promise<LeasedMessage[]>;
  /** Pushes the owner's leases out to `until`; returns how many recipients it holds. */
  renewLeases(owner: string, until: number): Promise<number>;
  /** Gives back leases whose owner is dead (per `isAlive`) so they are due at `now`; returns how many. */
  recoverLeases(now: number, isAlive: (owner: string) => boolean): Promise<number>;
  /** Recipients in the selection leased by anyone but `owner`. */
  countLeased(owner: string, selection?: Selection): Promise<number>;
  /** Gives back every lease the owner holds (a worker stopping); returns how many. */
  releaseLeases(owner: string, now: number): Promise<number>;
  /**
   * Records attempts: delivered, deferred, failed per recipient, with any notifications to send.
   * Only recipients still leased by `owner` are changed. Batched like enqueue; resolves with the
   * IDs of the notifications it queued.
   */
  settle(settlement: Settlement): Promise<QueueId[]>;
  /**
   * Commits the writes still gathering for a batch now. Outcomes wait up to a tenth of a second
   * for more to join them; a worker that has nothing left to send calls this instead of waiting.
   */
  commitWaiting(): void;

  /** Makes the selection's pending recipients due at `now` (`queue flush`); returns how many. */
  makeDue(now: number, selection?: Selection): Promise<number>;
  list(options?: ListOptions): Promise<QueueEntry[]>;
  get(id: QueueId): Promise<QueueEntry | undefined>;
  attempts(id: QueueId): Promise<QueueAttempt[]>;
  raw(id: QueueId): Promise<Uint8Array | undefined>;
  /** Each returns the IDs it found (and changed); unknown IDs are left out. */
  hold(ids: readonly QueueId[]): Promise<QueueId[]>;
  release(ids: readonly QueueId[]): Promise<QueueId[]>;
  delete(selection: Selection): Promise<QueueId[]>;
  /** Failed recipients become queued again, due at `now`, with max-age counted from `now`. */
  retryFailed(now: number, selection?: Selection): Promise<QueueId[]>;
  /** Which of these IDs exist. */
  existing(ids: readonly QueueId[]): Promise<QueueId[]>;
  stats(): Promise<QueueStats>;

  /** Commits what is waiting and closes the database. */
  close(): Promise<void>;
}

export class QueueClosedError extends Error {
  override name = "QueueClosedError";
  constructor() {
    super("the queue is closed");
  }
}
