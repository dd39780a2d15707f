/**
 * Group commit: items submitted close together are written by one transaction, and each
 * submitter's promise settles only after that transaction is durable. While one batch waits for
 * its sync to reach the disk, the next batch gathers; one sync then covers every message that
 * arrived meanwhile, which is how a durable store keeps up with thousands of messages a second.
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
  /** Commit at once when this many items are waiting and no sync is in flight. */
  maxItems: number;
  /** Commit at once when the waiting items add up to this many octets and no sync is in flight. */
  maxBytes: number;
  sizeOf(item: T): number;
  /** When to run a commit for what is waiting; the next macrotask by default. */
  schedule?: (run: () => void) => void;
}

interface Waiting<T, R> {
  item: T;
  resolve(result: R): void;
  reject(error: unknown): void;
}

export class GroupCommit<T, R> {
  #waiting: Waiting<T, R>[] = [];
  #waitingBytes = 0;
  #scheduled = false;
  #syncing: Promise<void> | undefined;
  readonly #options: GroupCommitOptions<T, R>;
  readonly #schedule: (run: () => void) => void;

  constructor(options: GroupCommitOptions<T, R>) {
    this.#options = options;
    this.#schedule = options.schedule ?? ((run) => setImmediate(run));
  }

  /** Items submitted and not yet settled. */
  get pending(): number {
    return this.#waiting.length;
  }

  submit(item: T): Promise<R> {
    const promise = new Promise<R>((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
    });
    this.#waitingBytes += this.#options.sizeOf(item);
    // While a sync is in flight the batch keeps growing; its end starts the next commit.
    if (this.#syncing) return promise;
    if (this.#waiting.length >= this.#options.maxItems || this.#waitingBytes >= this.#options.maxBytes) {
      this.#commitWaiting();
    } else if (!this.#scheduled) {
      this.#scheduled = true;
      this.#schedule(() => {
        this.#scheduled = false;
        if (!this.#syncing) this.#commitWaiting();
      });
    }
    return promise;
  }

  /**
   * Commits everything waiting now, even while a sync is in flight, and returns the function that
   * settles those items: the caller runs it once they are durable (after closing the database,
   * which syncs). Batches already syncing settle on their own.
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
    this.#syncing = sync()
      .then(
        () => {
          this.#options.durable?.(results);
          settle(batch, results);
        },
        (error: unknown) => settle(batch, results, error ?? new Error("sync failed")),
      )
      .finally(() => {
        this.#syncing = undefined;
        this.#commitWaiting();
      });
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
