import { SqliteMessageStore } from "./sqlite-store.ts";
import type { MessageStore } from "./types.ts";

/** The mailbox file's name inside the data directory (`$XDG_DATA_HOME/smtpkit/` or `--data-dir`). */
export const MAILBOX_FILE_NAME = "mailbox.sqlite";

export interface OpenStoreOptions {
  /** A database file path, or ":memory:" for `--memory`. */
  path: string;
  /**
   * Oldest messages are pruned beyond this many; 0 keeps everything. Default 5000. Arrivals may
   * overshoot it by 1% before a commit prunes back to it (prune() goes back to it at once).
   */
  maxMessages?: number;
  /** Messages older than this are pruned; unset keeps them regardless of age. */
  maxAgeMs?: number;
}

/** Opens (creating or upgrading) the mailbox. Today the only backend is SQLite (bun:sqlite). */
export function openStore(options: OpenStoreOptions): MessageStore {
  return new SqliteMessageStore(options);
}
