import type { Database } from "bun:sqlite";

/** Bumped with each change to the tables below; PRAGMA user_version holds the database's. */
export const QUEUE_SCHEMA_VERSION = 1;

/**
 * - routes: each distinct route once (canonical JSON, secrets by reference only).
 * - messages: the envelope's sender and MAIL parameters, arrival, hold and notice flags.
 * - bodies: the message octets, apart so that listing never pages them in.
 * - recipients: one row per recipient with its state; `next_attempt` is when it is due, and for an
 *   active (leased) recipient when its lease runs out, so an expired lease is simply due again.
 *   Delivered and failed rows have none, which keeps them out of the partial indexes. There is no
 *   index on the lease owner: every lease and outcome would pay for it, and the queries by owner
 *   (renewing, giving back, recovering leases) run seldom.
 * - attempts: every attempt's outcome for `queue show`, dropped with its message.
 */
const SCHEMA_V1 = `
CREATE TABLE routes (
  id INTEGER PRIMARY KEY,
  spec TEXT NOT NULL UNIQUE
);
CREATE TABLE messages (
  id TEXT PRIMARY KEY,
  arrival INTEGER NOT NULL,
  expiry_base INTEGER NOT NULL,
  sender TEXT NOT NULL,
  mail_params TEXT NOT NULL,
  route_id INTEGER NOT NULL REFERENCES routes(id),
  size INTEGER NOT NULL,
  kind TEXT NOT NULL,
  held INTEGER NOT NULL DEFAULT 0,
  delay_warned INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE bodies (
  id TEXT PRIMARY KEY,
  raw BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE recipients (
  message_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  path TEXT NOT NULL,
  params TEXT NOT NULL,
  destination TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt INTEGER,
  last_attempt INTEGER,
  last_reply TEXT,
  last_error TEXT,
  remote_mta TEXT,
  status TEXT,
  lease_owner TEXT,
  PRIMARY KEY (message_id, idx)
) WITHOUT ROWID;
CREATE INDEX recipients_due ON recipients(destination, next_attempt, message_id) WHERE next_attempt IS NOT NULL;
CREATE INDEX recipients_next ON recipients(next_attempt) WHERE next_attempt IS NOT NULL;
CREATE TABLE attempts (
  message_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  at INTEGER NOT NULL,
  state TEXT NOT NULL,
  reply TEXT,
  error TEXT,
  remote_mta TEXT
);
CREATE INDEX attempts_message ON attempts(message_id);
`;

/** Creates the tables or checks they are ours; several processes may open the queue at once. */
export function migrateQueue(db: Database): void {
  db.transaction(() => {
    const row = db.query<{ user_version: number }, []>("PRAGMA user_version").get();
    const version = row?.user_version ?? 0;
    if (version === QUEUE_SCHEMA_VERSION) return;
    if (version > QUEUE_SCHEMA_VERSION) {
      throw new Error(
        `the queue database has schema version ${version}; this smtpkit knows ${QUEUE_SCHEMA_VERSION} (a newer smtpkit made it)`,
      );
    }
    db.exec(SCHEMA_V1);
    db.exec(`PRAGMA user_version = ${QUEUE_SCHEMA_VERSION}`);
  }).immediate();
}
