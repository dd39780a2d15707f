/**
 * Group commit: items submitted close together are written by one transaction, and each
 * submitter's promise settles only after that transaction is durable. A batch is committed as soon
 * as a sync can start for it; while the syncs in flight fill the disk's queue, the next batch
 * gathers, and one sync then covers every message that arrived meanwhile. That is how a durable
 * store keeps up with thousands of messages a second.
 *
 * Syncs overlap: batch N+1 is written and its sync started while batch N's is still in flight, so
 * a message waits for one sync, not for the end of another one first. A sync makes durable
 * everything written before it started, so batches still settle in commit order, each after its
 * own sync and every earlier batch.
 */

export interface GroupCommitOptions<T, R> {
  /** Writes the items in one transaction and returns one result per item, or throws to fail them all. */
  commit(items: readonly T[]): R[];
  /**
   * Makes what `commit` wrote durable (an fsync off the main thread); the batch's promises settle
   * after it. Left out, a batch settles as soon as `commit` returns.
   */
  sync?: () => Promise<void>;
  /** Told the results of each batch once it is durable, before its submitters resume. */
  durable?: (results: readonly R[]) => void;
  /** Commit at once when this many items are waiting and a sync can start. */
  maxItems: number;
  /** Commit at once when the waiting items add up to this many octets and a sync can start. */
  maxBytes: number;
  sizeOf(item: T): number;
  /** Syncs allowed in flight at once; more batches gather until one finishes. Default 2. */
  maxSyncs?: number;
  /** When to run a commit for what is waiting; the next macrotask by default. */
  schedule?: (run: () => void) => void;
}

interface Waiting<T, R> {
  item: T;
  resolve(result: R): void;
  reject(error: unknown): void;
}

/** Two syncs in flight overlapped well on the disks measured; more mostly split batches smaller. */
const DEFAULT_MAX_SYNCS = 2;

export class GroupCommit<T, R> {
  #waiting: Waiting<T, R>[] = [];
  #waitingBytes = 0;
  #scheduled = false;
  #syncs = 0;
  #held = false;
  /** Settles when the last batch committed has settled: the next one settles after it. */
  #previous: Promise<boolean> = Promise.resolve(true);
  readonly #options: GroupCommitOptions<T, R>;
  readonly #maxSyncs: number;
  readonly #schedule: (run: () => void) => void;

  constructor(options: GroupCommitOptions<T, R>) {
    this.#options = options;
    this.#maxSyncs = Math.max(1, options.maxSyncs ?? DEFAULT_MAX_SYNCS);
    this.#schedule = options.schedule ?? ((run) => setImmediate(run));
  }

  /** Items submitted and not yet committed. */
  get pending(): number {
    return this.#waiting.length;
  }

  /** Syncs in flight. */
  get syncing(): number {
    return this.#syncs;
  }

  submit(item: T): Promise<R> {
    const promise = new Promise<R>((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
    });
    this.#waitingBytes += this.#options.sizeOf(item);
    if (!this.#canCommit()) return promise;
    if (this.#waiting.length >= this.#options.maxItems || this.#waitingBytes >= this.#options.maxBytes) {
      this.#commitWaiting();
    } else if (!this.#scheduled) {
      this.#scheduled = true;
      this.#schedule(() => {
        this.#scheduled = false;
        if (this.#canCommit()) this.#commitWaiting();
      });
    }
    return promise;
  }

  /**
   * Stops committing: submitted items wait until `release`. The store holds commits while the
   * write-ahead log is checkpointed to its end, so that the next commit can start it over.
   */
  hold(): void {
    this.#held = true;
  }

  release(): void {
    if (!this.#held) return;
    this.#held = false;
    if (this.#canCommit()) this.#commitWaiting();
  }

  /**
   * Commits everything waiting now, even while syncs are in flight or commits are held, and returns
   * the function that settles those items: the caller runs it once they are durable (after closing
   * the database, which syncs). Batches already syncing settle on their own.
   */
  commitForClose(): (error?: unknown) => void {
    const batch = this.#take();
    if (batch.length === 0) return () => {};
    try {
      const results = this.#options.commit(batch.map((entry) => entry.item));
      return (error) => {
        if (error === undefined) this.#options.durable?.(results);
        settle(batch, results, error);
      };
    } catch (error) {
      return () => settle(batch, [], error);
    }
  }

  #canCommit(): boolean {
    return !this.#held && this.#syncs < this.#maxSyncs;
  }

  #take(): Waiting<T, R>[] {
    const batch = this.#waiting;
    this.#waiting = [];
    this.#waitingBytes = 0;
    return batch;
  }

  #commitWaiting(): void {
    const batch = this.#take();
    if (batch.length === 0) return;
    let results: R[];
    try {
      results = this.#options.commit(batch.map((entry) => entry.item));
    } catch (error) {
      settle(batch, [], error);
      return;
    }
    const sync = this.#options.sync;
    if (!sync) {
      this.#options.durable?.(results);
      settle(batch, results);
      return;
    }
    this.#syncs++;
    let synced: Promise<void>;
    try {
      synced = sync();
    } catch (error) {
      synced = Promise.reject(error);
    }
    const previous = this.#previous;
    // A batch is durable when its own sync and every earlier batch are: its log frames follow theirs.
    const outcome = Promise.all([synced, previous]).then(
      ([, earlierDurable]) => {
        if (!earlierDurable) {
          settle(batch, results, new Error("an earlier commit failed to sync"));
          return false;
        }
        this.#options.durable?.(results);
        settle(batch, results);
        return true;
      },
      (error: unknown) => {
        settle(batch, results, error ?? new Error("sync failed"));
        return false;
      },
    );
    this.#previous = outcome;
    const finished = () => {
      this.#syncs--;
      if (this.#canCommit()) this.#commitWaiting();
    };
    synced.then(finished, finished);
  }
}

function settle<T, R>(batch: readonly Waiting<T, R>[], results: readonly R[], error?: unknown): void {
  batch.forEach((entry, index) => {
    const result = results[index];
    if (error !== undefined) entry.reject(error);
    else if (result === undefined) entry.reject(new Error("group commit returned too few results"));
    else entry.resolve(result);
  });
}
