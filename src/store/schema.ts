import type { Database } from "bun:sqlite";

/**
 * The mailbox schema, versioned with PRAGMA user_version: migration N takes a database from version
 * N to N + 1, so an old mailbox is upgraded in place and a newer one is refused rather than misread.
 */

const MIGRATIONS: readonly string[] = [
  // 0 -> 1. The raw bytes live in their own table so that scanning summaries for a search never pages
  // through megabytes of message; `seq` orders messages by arrival (newest first = seq DESC). No
  // AUTOINCREMENT and no index on `created`: each would add a page to what every commit writes.
  // Body-derived fields are filled in after arrival, in their own table: rows written once and
  // appended keep pages full, where growing every message row in place would split them.
  `
  CREATE TABLE messages (
    seq             INTEGER PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    created         INTEGER NOT NULL,
    read            INTEGER NOT NULL DEFAULT 0,
    size            INTEGER NOT NULL,
    envelope        TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    date            INTEGER,
    addresses       TEXT    NOT NULL,
    from_search     TEXT    NOT NULL,
    to_search       TEXT    NOT NULL,
    cc_search       TEXT    NOT NULL,
    bcc_search      TEXT    NOT NULL,
    reply_to_search TEXT    NOT NULL,
    subject_search  TEXT    NOT NULL,
    header_search   TEXT    NOT NULL
  );
  CREATE INDEX messages_unread ON messages (seq) WHERE read = 0;
  CREATE TABLE message_raw (
    seq INTEGER PRIMARY KEY,
    raw BLOB    NOT NULL
  );
  CREATE TABLE message_index (
    seq         INTEGER PRIMARY KEY,
    attachments INTEGER NOT NULL,
    inline      INTEGER NOT NULL,
    snippet     TEXT    NOT NULL,
    search_text TEXT    NOT NULL
  );
  `,
  // 1 -> 2. Raw messages of many octets may live in files beside the mailbox (raw-files.ts):
  // `in_file` says so, and `raw` is then empty. The unread index becomes a read index: every new
  // message is unread, so the old one gained an entry (and a page to write) in every commit, while
  // a message becomes read only when someone opens it. Unread counts are total minus read.
  `
  ALTER TABLE message_raw ADD COLUMN in_file INTEGER NOT NULL DEFAULT 0;
  DROP INDEX messages_unread;
  CREATE INDEX messages_read ON messages (seq) WHERE read = 1;
  `,
  // 2 -> 3. The header-derived fields move to message_summary, filled after arrival (when idle,
  // or before a listing or search needs them), so that taking a message in costs no header
  // parsing and its commit writes a short row. The table is rebuilt to lose the columns.
  `
  CREATE TABLE message_summary (
    seq             INTEGER PRIMARY KEY,
    message_id      TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    date            INTEGER,
    addresses       TEXT    NOT NULL,
    from_search     TEXT    NOT NULL,
    to_search       TEXT    NOT NULL,
    cc_search       TEXT    NOT NULL,
    bcc_search      TEXT    NOT NULL,
    reply_to_search TEXT    NOT NULL,
    subject_search  TEXT    NOT NULL,
    header_search   TEXT    NOT NULL
  );
  INSERT INTO message_summary
    SELECT seq, message_id, subject, date, addresses, from_search, to_search, cc_search, bcc_search,
      reply_to_search, subject_search, header_search FROM messages;
  CREATE TABLE messages_v3 (
    seq      INTEGER PRIMARY KEY,
    id       TEXT    NOT NULL UNIQUE,
    created  INTEGER NOT NULL,
    read     INTEGER NOT NULL DEFAULT 0,
    size     INTEGER NOT NULL,
    envelope TEXT    NOT NULL
  );
  INSERT INTO messages_v3 SELECT seq, id, created, read, size, envelope FROM messages;
  DROP TABLE messages;
  ALTER TABLE messages_v3 RENAME TO messages;
  CREATE INDEX messages_read ON messages (seq) WHERE read = 1;
  `,
  // 3 -> 4. Tags (tags.ts), one row per message and tag, names compared without regard to case.
  // Messages summarized before this version keep no tags from their X-Tags headers.
  `
  CREATE TABLE message_tags (
    seq INTEGER NOT NULL,
    tag TEXT    NOT NULL COLLATE NOCASE,
    PRIMARY KEY (seq, tag)
  ) WITHOUT ROWID;
  CREATE INDEX message_tags_tag ON message_tags (tag);
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export class SchemaVersionError extends Error {
  override name = "SchemaVersionError";
}

export function migrate(db: Database): void {
  const row = db.query<{ user_version: number }, []>("PRAGMA user_version").get();
  const version = row?.user_version ?? 0;
  if (version > SCHEMA_VERSION) {
    throw new SchemaVersionError(
      `the mailbox was written by a newer smtpkit (schema ${version}, this one knows ${SCHEMA_VERSION})`,
    );
  }
  for (let next = version; next < SCHEMA_VERSION; next++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[next] ?? "");
      db.exec(`PRAGMA user_version = ${next + 1}`);
    })();
  }
}
