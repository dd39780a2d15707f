import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CheckpointResult, WalCheckpointer } from "../../src/store/checkpointer.ts";

const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

describe("WalCheckpointer", () => {
  test("copies the log into the database from its own thread while the writer keeps its connection", async () => {
    const directory = mkdtempSync(join(tmpdir(), "smtpkit-checkpoint-"));
    directories.push(directory);
    const path = join(directory, "mailbox.sqlite");
    const db = new Database(path, { create: true });
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA wal_autocheckpoint = 0");
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)");
    const insert = db.prepare("INSERT INTO t (b) VALUES (?)");
    for (let index = 0; index < 50; index++) insert.run(new Uint8Array(64 * 1024));

    const results: CheckpointResult[] = [];
    let done: () => void = () => {};
    const finished = new Promise<void>((resolve) => {
      done = resolve;
    });
    const checkpointer = new WalCheckpointer(path, 1000, (result) => {
      if (result) results.push(result);
      done();
    });
    checkpointer.request();
    checkpointer.request(); // ignored while the first runs
    await finished;
    checkpointer.close();

    expect(results).toHaveLength(1);
    expect(results[0]?.log).toBeGreaterThan(0);
    expect(results[0]?.checkpointed).toBe(results[0]?.log ?? -1);
    // Everything is still readable, and the writer can go on.
    insert.run(new Uint8Array(1));
    expect(db.query<{ n: number }, []>("SELECT COUNT(*) AS n FROM t").get()?.n).toBe(51);
    db.close();
  });
});
