/**
 * Large raw messages kept as files beside the mailbox instead of inside it. In the database a
 * megabyte is written twice (to the write-ahead log, then copied into the file by a checkpoint),
 * page by page on the main thread; a file is written once, in large pieces, from the thread pool
 * (raw-file-writer.ts). The database keeps the row that names the file, committed only after the
 * file and its directory entry are on disk, so a row never points at bytes a crash could lose.
 */
import { closeSync, existsSync, fsync, fsyncSync, mkdirSync, openSync, readdirSync } from "node:fs";
import { readFile, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { createRawFile, type RawFileWriter } from "./raw-file-writer.ts";

export type { RawFileWriter } from "./raw-file-writer.ts";

export class RawFiles {
  readonly #dir: string;
  /** Open once the directory exists: it is made with the first file, so most mailboxes never have one. */
  #dirFd: number | undefined;
  /** The directory sync in flight, and whether a request arrived after it started. */
  #dirSync: Promise<void> | undefined;
  #dirSyncAgain: Promise<void> | undefined;
  #syncsInFlight = 0;
  #closed = false;

  constructor(dir: string) {
    this.#dir = dir;
  }

  get dir(): string {
    return this.#dir;
  }

  /**
   * Writes `raw` as the file for `id` and resolves once its content and its name are durable. The
   * name must be new: an existing file is never overwritten.
   */
  async write(id: string, raw: Uint8Array): Promise<void> {
    const writer = await this.create(id);
    try {
      await writer.append([raw]);
    } catch (error) {
      await writer.abort();
      throw error;
    }
    await writer.finish();
  }

  /**
   * Creates the file for `id` (a new name), to be written piece by piece while the message arrives:
   * memory stays flat however large it is, and little is left to write once it has ended. The name
   * starts to be synced at once, beside the content.
   */
  async create(id: string): Promise<RawFileWriter> {
    const path = this.#path(id);
    this.#openDirectory();
    const file = await createRawFile(path);
    const named = this.#syncDirectory();
    // Reported by finish(); a writer aborted before then must not leave it unhandled.
    named.catch(() => {});
    const abort = async () => {
      await file.abort();
      await unlink(path).catch(() => {});
    };
    return {
      append: (parts) => file.append(parts),
      finish: async () => {
        try {
          await file.finish();
          await named;
        } catch (error) {
          await abort();
          throw error;
        }
      },
      abort,
    };
  }

  /** The message of `size` octets in the file for `id` (the file may go on with padding). */
  async read(id: string, size: number): Promise<Uint8Array> {
    const buffer = await readFile(this.#path(id));
    if (buffer.length < size) throw new Error(`the raw file of ${id} is short`);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, size);
  }

  /** Removes the files of deleted messages; a file already gone is no error. */
  remove(ids: Iterable<string>): Promise<void> {
    const removals: Promise<void>[] = [];
    for (const id of ids) removals.push(unlink(this.#path(id)).catch(() => {}));
    return Promise.all(removals).then(() => undefined);
  }

  /** The IDs that have a file. */
  list(): string[] {
    if (!existsSync(this.#dir)) return [];
    return readdirSync(this.#dir).filter((name) => !name.startsWith("."));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // A directory sync in flight owns the descriptor until it completes.
    if (this.#syncsInFlight === 0 && this.#dirFd !== undefined) closeSync(this.#dirFd);
  }

  /** Makes the directory (its own name synced in its parent) the first time a file is written. */
  #openDirectory(): number {
    if (this.#closed) throw new Error(`${this.#dir} is closed`);
    if (this.#dirFd !== undefined) return this.#dirFd;
    if (!existsSync(this.#dir)) {
      mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
      const parent = openSync(dirname(this.#dir), "r");
      try {
        fsyncSync(parent);
      } finally {
        closeSync(parent);
      }
    }
    this.#dirFd = openSync(this.#dir, "r");
    return this.#dirFd;
  }

  #path(id: string): string {
    // IDs are base-62 (message-id.ts); anything else never names a file here.
    if (!/^[0-9A-Za-z]+$/.test(id)) throw new Error(`not a message ID: ${id}`);
    return join(this.#dir, id);
  }

  /**
   * Makes the names created so far durable. Calls that arrive during a sync share the next one,
   * which starts after it: a sync covers only the names that existed when it began.
   */
  #syncDirectory(): Promise<void> {
    if (this.#dirSync === undefined) {
      this.#dirSync = this.#fsyncDirectory().finally(() => {
        this.#dirSync = undefined;
      });
      return this.#dirSync;
    }
    this.#dirSyncAgain ??= this.#dirSync
      .catch(() => {})
      .then(() => {
        this.#dirSyncAgain = undefined;
        return this.#syncDirectory();
      });
    return this.#dirSyncAgain;
  }

  #fsyncDirectory(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`${this.#dir} is closed`));
    const fd = this.#openDirectory();
    this.#syncsInFlight++;
    return new Promise((resolve, reject) => {
      fsync(fd, (error) => {
        this.#syncsInFlight--;
        if (this.#closed && this.#syncsInFlight === 0) closeSync(fd);
        if (error) reject(error);
        else resolve();
      });
    });
  }
}
