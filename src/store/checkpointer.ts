/**
 * Copies the write-ahead log back into the database file from a worker thread. SQLite would run
 * these checkpoints inside a commit, on the main thread, writing and syncing megabytes while no
 * SMTP client is served; a PASSIVE checkpoint on a second connection never blocks the writer.
 */

/** Worker source, loaded from a Blob URL so it needs no file of its own in the compiled binary. */
const WORKER_SOURCE = `
import { Database } from "bun:sqlite";
let db;
self.onmessage = (event) => {
  const message = event.data;
  try {
    if (message.type === "open") {
      db = new Database(message.path);
      db.exec("PRAGMA busy_timeout = " + message.busyTimeoutMs);
      postMessage({ type: "opened" });
    } else if (message.type === "checkpoint" && db) {
      const row = db.query("PRAGMA wal_checkpoint(PASSIVE)").get();
      postMessage({ type: "checkpointed", log: row.log, checkpointed: row.checkpointed });
    } else if (message.type === "close") {
      db?.close();
      db = undefined;
      postMessage({ type: "closed" });
    }
  } catch (error) {
    postMessage({ type: "failed", message: String(error) });
  }
};
`;

export interface CheckpointResult {
  /** Frames in the log. */
  log: number;
  /** Frames of it now in the database file. */
  checkpointed: number;
}

export class WalCheckpointer {
  readonly #worker: Worker;
  #running = false;
  #closed = false;

  /**
   * `onResult` hears how far each checkpoint got (undefined when one failed), so the owner can step
   * in if the log keeps growing; `onFailure` that the worker could not run, so the owner
   * checkpoints itself again.
   */
  constructor(
    path: string,
    busyTimeoutMs: number,
    onResult: (result: CheckpointResult | undefined) => void,
    onFailure: () => void = () => {},
  ) {
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
    this.#worker = new Worker(url);
    this.#worker.unref();
    this.#worker.onmessage = (event: MessageEvent<{ type: string; log?: number; checkpointed?: number }>) => {
      const reply = event.data;
      // The worker loads its source asynchronously: the URL must live until it answers.
      if (reply.type === "opened") URL.revokeObjectURL(url);
      if (reply.type === "checkpointed" || reply.type === "failed") this.#running = false;
      if (reply.type === "checkpointed")
        onResult({ log: reply.log ?? 0, checkpointed: reply.checkpointed ?? 0 });
      if (reply.type === "failed") onResult(undefined);
      if (reply.type === "closed") this.#worker.terminate();
    };
    this.#worker.onerror = () => {
      this.#closed = true;
      URL.revokeObjectURL(url);
      onFailure();
    };
    this.#worker.postMessage({ type: "open", path, busyTimeoutMs });
  }

  /** Starts a checkpoint unless one is running. */
  request(): void {
    if (this.#closed || this.#running) return;
    this.#running = true;
    this.#worker.postMessage({ type: "checkpoint" });
  }

  /** Closes the worker's connection (after a checkpoint in progress) and ends the worker. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.postMessage({ type: "close" });
  }
}
