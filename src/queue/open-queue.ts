import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { SqliteQueue } from "./sqlite-queue.ts";
import type { Queue } from "./types.ts";

/** The queue's file inside the data directory (next to serve's mailbox.sqlite). */
export const QUEUE_FILE_NAME = "queue.sqlite";

export interface OpenQueueOptions {
  /** A database file path, or ":memory:" for tests. The directory is created (mode 0700) if missing. */
  path: string;
  /** Clock for arrival times (tests). */
  now?: () => number;
}

/** `$XDG_DATA_HOME/smtpkit` (or `~/.local/share/smtpkit`), as serve uses it. */
export function defaultDataDir(env: Record<string, string | undefined> = process.env): string {
  return join(env.XDG_DATA_HOME || join(env.HOME ?? ".", ".local", "share"), "smtpkit");
}

export function queuePath(dataDir: string = defaultDataDir()): string {
  return join(dataDir, QUEUE_FILE_NAME);
}

/** Opens (creating or upgrading) the queue. Today the only backend is SQLite (bun:sqlite). */
export function openQueue(options: OpenQueueOptions): Queue {
  // Queued mail holds other people's messages: only the owner may read the directory.
  if (options.path !== ":memory:") mkdirSync(dirname(options.path), { recursive: true, mode: 0o700 });
  return new SqliteQueue(options);
}
