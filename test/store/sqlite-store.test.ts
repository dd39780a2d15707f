import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import MailComposer from "nodemailer/lib/mail-composer";
import { MAILBOX_FILE_NAME, openStore } from "../../src/store/open-store.ts";
import { SCHEMA_VERSION, SchemaVersionError } from "../../src/store/schema.ts";
import { SqliteMessageStore } from "../../src/store/sqlite-store.ts";
import { StagedRaw } from "../../src/store/staged-message.ts";
import {
  type MessageStore,
  SearchQueryError,
  StoreClosedError,
  type StoredEnvelope,
} from "../../src/store/types.ts";

const directories: string[] = [];
const stores: MessageStore[] = [];

function mailboxPath(): string {
  const directory = mkdtempSync(join(tmpdir(), "smtpkit-store-"));
  directories.push(directory);
  return join(directory, MAILBOX_FILE_NAME);
}

function track<T extends MessageStore>(store: T): T {
  stores.push(store);
  return store;
}

afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

function envelope(rcptTo: string[], extra: Partial<StoredEnvelope> = {}): StoredEnvelope {
  return {
    mailFrom: "sender@example.com",
    rcptTo,
    mailParams: { BODY: "8BITMIME" },
    rcptParams: rcptTo.map(() => ({ NOTIFY: "NEVER" })),
    clientAddress: "127.0.0.1",
    ...extra,
  };
}

async function compose(options: ConstructorParameters<typeof MailComposer>[0]): Promise<Uint8Array> {
  return new Uint8Array(await new MailComposer(options).compile().build());
}

function plain(subject: string, body = "hello"): Uint8Array {
  return new TextEncoder().encode(
    `From: Ann <ann@example.com>\r\nTo: bob@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, "")}@example.com>\r\n\r\n${body}\r\n`,
  );
}

describe("durability", () => {
  test("everything added is there after close and reopen, byte for byte", async () => {
    const path = mailboxPath();
    const store = openStore({ path });
    const raw = await compose({
      from: "Ann <ann@example.com>",
      to: "bob@example.com",
      subject: "persist me",
      text: "body\r\n.leading dot\r\n",
      attachments: [{ filename: "data.bin", content: Buffer.from([0, 1, 2, 255]) }],
    });
    const env = envelope(["bob@example.com", "hidden@example.com"], {
      heloName: "client.example",
      tls: { protocol: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256" },
      authUser: "ann",
    });
    const id = await store.add(raw, env);
    const other = await store.add(plain("second"), envelope(["bob@example.com"]));
    await store.markRead({ ids: [other] }, true);
    store.close();

    const reopened = track(openStore({ path }));
    expect(await reopened.raw(id)).toEqual(raw);
    const summary = await reopened.get(id);
    expect(summary?.subject).toBe("persist me");
    expect(summary?.envelope).toEqual(env);
    expect(summary?.bcc).toEqual([{ name: "", address: "hidden@example.com" }]);
    expect(summary?.attachments).toBe(1);
    expect((await reopened.get(other))?.read).toBe(true);
    expect(await reopened.count()).toEqual({ total: 2, unread: 1 });
  });

  test("adds arriving together share one commit, and each resolves only once its row is committed", async () => {
    const path = mailboxPath();
    const store = track(openStore({ path, maxMessages: 0 }));
    const commits: (readonly string[])[] = [];
    store.onNewMessages((ids) => commits.push(ids));
    const observer = new Database(path, { readonly: true });
    const visible = observer.query<{ n: number }, [string]>(
      "SELECT COUNT(*) AS n FROM messages WHERE id = ?",
    );
    const seenOnResolve = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        store
          .add(plain(`batch ${index}`), envelope(["bob@example.com"]))
          .then((id) => visible.get(id)?.n ?? 0),
      ),
    );
    observer.close();
    expect(seenOnResolve).toEqual(Array(20).fill(1));
    expect(commits).toHaveLength(1);
    expect(commits[0]).toHaveLength(20);
  });

  test("a message acknowledged before the process is killed is in the store afterwards", async () => {
    const path = mailboxPath();
    const storeModule = new URL("../../src/store/open-store.ts", import.meta.url).pathname;
    // The child adds messages from ten concurrent "sessions" and prints each ID once add() resolved,
    // the moment the SMTP server would send 250; then it is killed without warning.
    const child = Bun.spawn(
      [
        process.execPath,
        "-e",
        `
        const { openStore } = await import(${JSON.stringify(storeModule)});
        const store = openStore({ path: ${JSON.stringify(path)}, maxMessages: 0 });
        const env = { mailFrom: "a@example.com", rcptTo: ["b@example.com"], mailParams: {}, rcptParams: [{}], clientAddress: "127.0.0.1" };
        let n = 0;
        const session = async () => {
          for (;;) {
            const i = n++;
            const id = await store.add(new TextEncoder().encode("Subject: crash " + i + "\\r\\n\\r\\nbody " + i + "\\r\\n"), env);
            process.stdout.write(id + " " + i + "\\n");
          }
        };
        for (let s = 0; s < 10; s++) session();
        `,
      ],
      { stdout: "pipe", stderr: "inherit" },
    );
    const acknowledged = new Map<string, number>();
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of child.stdout) {
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const [id, index] = line.split(" ");
        if (id && index) acknowledged.set(id, Number(index));
      }
      if (acknowledged.size >= 500) child.kill("SIGKILL");
    }
    await child.exited;
    expect(child.signalCode).toBe("SIGKILL");
    const store = track(openStore({ path, maxMessages: 0 }));
    for (const [id, index] of acknowledged) {
      const raw = await store.raw(id);
      expect(raw && new TextDecoder().decode(raw)).toBe(`Subject: crash ${index}\r\n\r\nbody ${index}\r\n`);
    }
    expect((await store.count()).total).toBeGreaterThanOrEqual(acknowledged.size);
  });

  test("close commits adds that are still waiting", async () => {
    const path = mailboxPath();
    const store = openStore({ path });
    const pending = store.add(plain("last words"), envelope(["bob@example.com"]));
    store.close();
    const id = await pending;
    const reopened = track(openStore({ path }));
    expect((await reopened.get(id))?.subject).toBe("last words");
  });

  test("a closed store refuses work", async () => {
    const store = openStore({ path: ":memory:" });
    store.close();
    expect(store.add(plain("late"), envelope([]))).rejects.toBeInstanceOf(StoreClosedError);
    expect(store.list()).rejects.toBeInstanceOf(StoreClosedError);
  });

  test("a 25 MiB message is stored and read back intact", async () => {
    const store = track(openStore({ path: mailboxPath() }));
    const big = new Uint8Array(25 * 1024 * 1024);
    for (let index = 0; index < big.length; index += 4096) big[index] = index % 251;
    big.set(new TextEncoder().encode("Subject: big\r\n\r\n"));
    const id = await store.add(big, envelope(["bob@example.com"]));
    const back = await store.raw(id);
    expect(back?.length).toBe(big.length);
    expect(Bun.hash(back ?? new Uint8Array())).toBe(Bun.hash(big));
    expect((await store.get(id))?.size).toBe(big.length);
  });
});

describe("schema", () => {
  test("a new mailbox is at the current schema version", () => {
    const path = mailboxPath();
    openStore({ path }).close();
    const db = new Database(path, { readonly: true });
    expect(db.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version).toBe(
      SCHEMA_VERSION,
    );
    db.close();
  });

  test("a mailbox from a newer version is refused, not misread", () => {
    const path = mailboxPath();
    const db = new Database(path, { create: true });
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => openStore({ path })).toThrow(SchemaVersionError);
  });
});

describe("retention", () => {
  test("beyond maxMessages the oldest are pruned", async () => {
    const store = track(openStore({ path: mailboxPath(), maxMessages: 3 }));
    const ids: string[] = [];
    for (let index = 0; index < 5; index++) ids.push(await store.add(plain(`m${index}`), envelope([])));
    const page = await store.list();
    expect(page.total).toBe(3);
    expect(page.messages.map((message) => message.id)).toEqual(ids.slice(2).reverse());
    expect(await store.raw(ids[0] ?? "")).toBeUndefined();
    expect(store.stats().deletedMessages).toBe(2);
  });

  test("arrivals may overshoot maxMessages by 1% before a commit prunes back", async () => {
    const store = track(openStore({ path: ":memory:", maxMessages: 200 }));
    for (let index = 0; index < 202; index++) await store.add(plain(`m${index}`), envelope([]));
    expect((await store.count()).total).toBe(202);
    await store.add(plain("one too many"), envelope([]));
    expect((await store.count()).total).toBe(200);
    await store.add(plain("again"), envelope([]));
    expect(await store.prune()).toBe(1);
    expect((await store.count()).total).toBe(200);
    expect((await store.latest())?.subject).toBe("again");
  });

  test("maxMessages 0 keeps everything", async () => {
    const store = track(openStore({ path: ":memory:", maxMessages: 0 }));
    await Promise.all(Array.from({ length: 30 }, (_, index) => store.add(plain(`m${index}`), envelope([]))));
    expect((await store.count()).total).toBe(30);
  });

  test("prune removes messages older than maxAgeMs", async () => {
    let now = 1_000_000;
    const store = track(new SqliteMessageStore({ path: ":memory:", maxAgeMs: 60_000, now: () => now }));
    const old = await store.add(plain("old"), envelope([]));
    now += 50_000;
    const recent = await store.add(plain("recent"), envelope([]));
    now += 20_000;
    expect(await store.prune()).toBe(1);
    expect(await store.get(old)).toBeUndefined();
    expect((await store.get(recent))?.subject).toBe("recent");
  });
});

describe("listing", () => {
  test("newest first, paged by start and limit, with mailbox counts", async () => {
    const store = track(openStore({ path: ":memory:" }));
    const ids: string[] = [];
    for (let index = 0; index < 7; index++) ids.push(await store.add(plain(`m${index}`), envelope([])));
    await store.markRead({ ids: [ids[0] ?? ""] }, true);
    const first = await store.list({ start: 0, limit: 3 });
    expect(first.messages.map((message) => message.subject)).toEqual(["m6", "m5", "m4"]);
    expect([first.total, first.unread, first.matched, first.matchedUnread, first.start]).toEqual([
      7, 6, 7, 6, 0,
    ]);
    const last = await store.list({ start: 6, limit: 3 });
    expect(last.messages.map((message) => message.subject)).toEqual(["m0"]);
    expect((await store.list({ start: 10 })).messages).toEqual([]);
  });

  test("summaries carry the body-derived fields as soon as they are listed", async () => {
    const store = track(openStore({ path: ":memory:" }));
    const raw = await compose({
      from: "ann@example.com",
      to: "bob@example.com",
      subject: "with parts",
      text: "The   quick\r\nbrown fox",
      attachments: [{ filename: "a.txt", content: "a" }],
    });
    await store.add(raw, envelope(["bob@example.com"]));
    const [summary] = (await store.list()).messages;
    expect(summary?.snippet).toBe("The quick brown fox");
    expect(summary?.attachments).toBe(1);
    expect(summary?.size).toBe(raw.length);
  });

  test("latest is the newest message, or the newest matching a query", async () => {
    const store = track(openStore({ path: ":memory:" }));
    expect(await store.latest()).toBeUndefined();
    await store.add(plain("alpha one"), envelope([]));
    await store.add(plain("beta"), envelope([]));
    expect((await store.latest())?.subject).toBe("beta");
    expect((await store.latest("subject:alpha"))?.subject).toBe("alpha one");
    expect(await store.latest("subject:gamma")).toBeUndefined();
  });

  test("onNewMessages stops after unsubscribing", async () => {
    const store = track(openStore({ path: ":memory:" }));
    const seen: string[] = [];
    const unsubscribe = store.onNewMessages((ids) => seen.push(...ids));
    const first = await store.add(plain("one"), envelope([]));
    unsubscribe();
    await store.add(plain("two"), envelope([]));
    expect(seen).toEqual([first]);
  });
});

describe("search", () => {
  async function fixture() {
    let now = Date.UTC(2024, 0, 10, 12);
    const store = track(new SqliteMessageStore({ path: ":memory:", now: () => now }));
    const invoice = await store.add(
      await compose({
        from: '"Billing Dept" <billing@shop.example>',
        to: "Ann Customer <ann@example.com>",
        cc: "accounts@example.com",
        subject: "Your invoice #42",
        text: "Amount due: 10 EUR. Grüße aus Köln.",
        attachments: [{ filename: "invoice-42.pdf", content: "%PDF-1.4" }],
        messageId: "<invoice-42@shop.example>",
      }),
      envelope(["ann@example.com", "accounts@example.com", "audit@example.com"]),
    );
    now = Date.UTC(2024, 0, 20, 12);
    const newsletter = await store.add(
      await compose({
        from: "news@letters.example",
        to: "bob@example.com",
        replyTo: "no-reply@letters.example",
        subject: "Weekly NEWS",
        html: "<p>This week: <b>discounts</b> 100% off_all</p>",
      }),
      envelope(["bob@example.com"]),
    );
    await store.markRead({ ids: [newsletter] }, true);
    return { store, invoice, newsletter };
  }

  const ids = async (store: MessageStore, query: string, tz = "UTC") =>
    (await store.search(query, { tz })).messages.map((message) => message.id);

  test("address filters match names and addresses, case-insensitively", async () => {
    const { store, invoice, newsletter } = await fixture();
    expect(await ids(store, "from:billing")).toEqual([invoice]);
    expect(await ids(store, 'from:"billing dept"')).toEqual([invoice]);
    expect(await ids(store, "to:ANN@example.com")).toEqual([invoice]);
    expect(await ids(store, "cc:accounts")).toEqual([invoice]);
    expect(await ids(store, "bcc:audit@example.com")).toEqual([invoice]);
    expect(await ids(store, "reply-to:no-reply")).toEqual([newsletter]);
    expect(await ids(store, "addressed:example.com")).toEqual([newsletter, invoice]);
    expect(await ids(store, "-from:billing")).toEqual([newsletter]);
  });

  test("subject, message-id, read state, attachments, size and dates", async () => {
    const { store, invoice, newsletter } = await fixture();
    expect(await ids(store, "subject:invoice")).toEqual([invoice]);
    expect(await ids(store, "subject:news")).toEqual([newsletter]);
    expect(await ids(store, "message-id:invoice-42@shop")).toEqual([invoice]);
    expect(await ids(store, "is:read")).toEqual([newsletter]);
    expect(await ids(store, "is:unread")).toEqual([invoice]);
    expect(await ids(store, "!is:unread")).toEqual([newsletter]);
    expect(await ids(store, "has:attachment")).toEqual([invoice]);
    expect(await ids(store, "-has:attachment")).toEqual([newsletter]);
    expect(await ids(store, "larger:1")).toEqual([newsletter, invoice]);
    expect(await ids(store, "smaller:1")).toEqual([]);
    expect(await ids(store, "after:2024-01-15")).toEqual([newsletter]);
    expect(await ids(store, "before:2024-01-15")).toEqual([invoice]);
    expect(await ids(store, "-after:2024-01-15")).toEqual([invoice]);
    expect(await ids(store, "tag:anything")).toEqual([]);
  });

  test("free text searches decoded bodies, HTML text, file names and headers", async () => {
    const { store, invoice, newsletter } = await fixture();
    expect(await ids(store, "köln")).toEqual([invoice]);
    expect(await ids(store, "GRÜSSE")).toEqual([]);
    expect(await ids(store, "grüße")).toEqual([invoice]);
    expect(await ids(store, "discounts")).toEqual([newsletter]);
    expect(await ids(store, "invoice-42.pdf")).toEqual([invoice]);
    expect(await ids(store, "billing")).toEqual([invoice]);
    expect(await ids(store, '"this week"')).toEqual([newsletter]);
    expect(await ids(store, "-discounts")).toEqual([invoice]);
  });

  test("free text finds a message that took the place of a deleted newest one", async () => {
    const store = track(openStore({ path: ":memory:" }));
    await store.add(plain("first", "alpha body"), envelope([]));
    const second = await store.add(plain("second", "beta body"), envelope([]));
    expect((await store.search("body")).matched).toBe(2);
    await store.delete({ ids: [second] });
    const third = await store.add(plain("third", "gamma body"), envelope([]));
    expect((await store.search("gamma")).messages.map((message) => message.id)).toEqual([third]);
  });

  test("LIKE wildcards in the query are literal", async () => {
    const { store, newsletter } = await fixture();
    expect(await ids(store, "100%")).toEqual([newsletter]);
    expect(await ids(store, "off_all")).toEqual([newsletter]);
    expect(await ids(store, "0%o")).toEqual([]);
    expect(await ids(store, "f_ll")).toEqual([]);
  });

  test("terms combine with AND, and the counts describe the matches", async () => {
    const { store, invoice } = await fixture();
    const page = await store.search("from:billing has:attachment amount");
    expect(page.messages.map((message) => message.id)).toEqual([invoice]);
    expect([page.total, page.unread, page.matched, page.matchedUnread]).toEqual([2, 1, 1, 1]);
  });

  test("onlyIds restricts a search to the given messages", async () => {
    const { store, invoice, newsletter } = await fixture();
    expect((await store.search("example", { onlyIds: [newsletter] })).messages.map((m) => m.id)).toEqual([
      newsletter,
    ]);
    expect((await store.search("from:billing", { onlyIds: [newsletter] })).messages).toEqual([]);
    expect((await store.search("", { onlyIds: [invoice] })).messages.map((m) => m.id)).toEqual([invoice]);
  });

  test("a malformed query is a SearchQueryError", async () => {
    const { store } = await fixture();
    expect(store.search("before:someday")).rejects.toBeInstanceOf(SearchQueryError);
    expect(store.search("is:starred")).rejects.toBeInstanceOf(SearchQueryError);
  });
});

describe("updates and deletions", () => {
  async function three() {
    const store = track(openStore({ path: ":memory:" }));
    const a = await store.add(plain("apple"), envelope([]));
    const b = await store.add(plain("banana"), envelope([]));
    const c = await store.add(plain("cherry"), envelope([]));
    return { store, a, b, c };
  }

  test("markRead by IDs, by query and for all, counting only real changes", async () => {
    const { store, a, b } = await three();
    expect(await store.markRead({ ids: [a, b, "missing"] }, true)).toBe(2);
    expect(await store.markRead({ ids: [a] }, true)).toBe(0);
    expect(await store.markRead({ query: "subject:apple" }, false)).toBe(1);
    expect(await store.count()).toEqual({ total: 3, unread: 2 });
    expect(await store.markRead({ all: true }, true)).toBe(2);
    expect(await store.count()).toEqual({ total: 3, unread: 0 });
  });

  test("delete by IDs, by query and all", async () => {
    const { store, a, b, c } = await three();
    expect(await store.delete({ ids: [a, "missing"] })).toBe(1);
    expect(await store.raw(a)).toBeUndefined();
    expect(await store.delete({ query: "subject:banana" })).toBe(1);
    expect(await store.get(b)).toBeUndefined();
    expect((await store.get(c))?.subject).toBe("cherry");
    expect(await store.delete({ all: true })).toBe(1);
    expect(await store.count()).toEqual({ total: 0, unread: 0 });
    expect(store.stats().deletedMessages).toBe(3);
  });

  test("deleting many IDs at once works past SQLite's parameter limit", async () => {
    const store = track(openStore({ path: ":memory:", maxMessages: 0 }));
    const ids = await Promise.all(
      Array.from({ length: 1200 }, (_, index) => store.add(plain(`n${index}`), envelope([]))),
    );
    expect(await store.delete({ ids })).toBe(1200);
  });
});

describe("large messages in files", () => {
  /** Above the store's threshold for keeping raw bytes in their own file. */
  const LARGE = 300 * 1024;

  function large(subject: string): Uint8Array {
    const head = new TextEncoder().encode(`From: ann@example.com\r\nSubject: ${subject}\r\n\r\n`);
    const raw = new Uint8Array(head.length + LARGE);
    raw.set(head);
    for (let index = head.length; index < raw.length; index++) raw[index] = 0x61 + (index % 26);
    return raw;
  }

  async function* pieces(raw: Uint8Array, size: number): AsyncIterable<Uint8Array> {
    for (let at = 0; at < raw.length; at += size) yield raw.subarray(at, at + size);
  }

  const rawDirectory = (path: string) => `${path}-raw`;

  test("a large message added whole lives in a file, reads back exactly, and survives reopening", async () => {
    const path = mailboxPath();
    const store = openStore({ path });
    const raw = large("whole");
    const id = await store.add(raw, envelope(["bob@example.com"]));
    expect(readdirSync(rawDirectory(path))).toEqual([id]);
    expect(await store.raw(id)).toEqual(raw);
    expect((await store.get(id))?.size).toBe(raw.length);
    expect(store.stats().sizeBytes).toBeGreaterThanOrEqual(raw.length);
    store.close();
    const reopened = track(openStore({ path }));
    expect(await reopened.raw(id)).toEqual(raw);
    expect((await reopened.get(id))?.subject).toBe("whole");
  });

  test("a staged large message is written while it arrives and stored under the ID of its file", async () => {
    const path = mailboxPath();
    const store = track(openStore({ path }));
    const raw = large("staged");
    const prefix = new TextEncoder().encode("Received: by test\r\n");
    const staged = await store.stage(pieces(raw, 65536), prefix);
    expect(staged.raw).toBeUndefined();
    expect(staged.size).toBe(prefix.length + raw.length);
    const id = await store.add(staged, envelope(["bob@example.com"]));
    expect(readdirSync(rawDirectory(path))).toEqual([id]);
    const back = (await store.raw(id)) ?? new Uint8Array();
    expect(back.subarray(0, prefix.length)).toEqual(prefix);
    expect(back.subarray(prefix.length)).toEqual(raw);
    const summary = await store.get(id);
    expect(summary?.subject).toBe("staged");
    expect(summary?.snippet).toContain("abcdefghijklmnopqrstuvwxyz");
  });

  test("a small staged message is stored in the database as before", async () => {
    const path = mailboxPath();
    const store = track(openStore({ path }));
    const staged = await store.stage(pieces(plain("small"), 7));
    expect(staged.raw).toEqual(plain("small"));
    const id = await store.add(staged, envelope(["bob@example.com"]));
    expect(await store.raw(id)).toEqual(plain("small"));
    // The directory for raw files is made only for the first large message.
    expect(existsSync(rawDirectory(path))).toBe(false);
  });

  test("a discarded staged message leaves no file and cannot be added", async () => {
    const path = mailboxPath();
    const store = track(openStore({ path }));
    const staged = await store.stage(pieces(large("dropped"), 65536));
    staged.discard();
    await expect(store.add(staged, envelope([]))).rejects.toThrow("discarded");
    await Bun.sleep(20);
    expect(readdirSync(rawDirectory(path))).toEqual([]);
  });

  test("in memory a large message stays in the database", async () => {
    const store = track(openStore({ path: ":memory:" }));
    const raw = large("memory");
    const staged = await store.stage(pieces(raw, 65536));
    expect(staged.raw?.length).toBe(raw.length);
    const id = await store.add(staged, envelope([]));
    expect(await store.raw(id)).toEqual(raw);
  });

  test("deleting and pruning remove the files too", async () => {
    const path = mailboxPath();
    const store = track(openStore({ path, maxMessages: 2 }));
    const first = await store.add(large("one"), envelope([]));
    const second = await store.add(large("two"), envelope([]));
    // The commit of the third prunes the first.
    const third = await store.add(large("three"), envelope([]));
    await Bun.sleep(20);
    expect(readdirSync(rawDirectory(path)).sort()).toEqual([second, third].sort());
    expect(await store.raw(first)).toBeUndefined();
    expect(await store.delete({ ids: [second] })).toBe(1);
    await Bun.sleep(20);
    expect(readdirSync(rawDirectory(path))).toEqual([third]);
    await store.delete({ all: true });
    await Bun.sleep(20);
    expect(readdirSync(rawDirectory(path))).toEqual([]);
  });

  test("at start-up a row whose file is gone is dropped, and an old file without a row removed", async () => {
    const path = mailboxPath();
    const store = openStore({ path });
    const kept = await store.add(large("kept"), envelope([]));
    const lost = await store.add(large("lost"), envelope([]));
    store.close();
    rmSync(join(rawDirectory(path), lost));
    writeFileSync(join(rawDirectory(path), "Orphan"), "left by a crash");
    writeFileSync(join(rawDirectory(path), "Fresh"), "another process's, in flight");
    const old = new Date(Date.now() - 3600_000);
    utimesSync(join(rawDirectory(path), "Orphan"), old, old);

    const reopened = track(openStore({ path }));
    expect((await reopened.list()).messages.map((message) => message.id)).toEqual([kept]);
    expect(await reopened.count()).toEqual({ total: 1, unread: 1 });
    await Bun.sleep(20);
    expect(readdirSync(rawDirectory(path)).sort()).toEqual(["Fresh", kept].sort());
  });

  test("at start-up a row whose file is shorter than its message (cut off by a crash) is dropped", async () => {
    const path = mailboxPath();
    const store = openStore({ path });
    const kept = await store.add(large("kept"), envelope([]));
    const cut = await store.add(large("cut"), envelope([]));
    store.close();
    truncateSync(join(rawDirectory(path), cut), 1000);
    const reopened = track(openStore({ path }));
    expect((await reopened.list()).messages.map((message) => message.id)).toEqual([kept]);
  });

  test("a staged file that fails to reach the disk fails the add, and its row is taken back", async () => {
    const path = mailboxPath();
    const store = track(openStore({ path }));
    const staged = await store.stage(pieces(large("doomed"), 65536));
    const fileId = (staged as StagedRaw).fileId ?? "";
    await (staged as StagedRaw).durable;
    const failing = new StagedRaw(
      staged.size,
      undefined,
      staged.header,
      fileId,
      () => {},
      Promise.reject(new Error("EIO")),
    );
    await expect(store.add(failing, envelope([]))).rejects.toThrow("EIO");
    expect(await store.count()).toEqual({ total: 0, unread: 0 });
    expect(await store.raw(fileId)).toBeUndefined();
  });

  test("the body indexer reads large messages from their files (free-text search)", async () => {
    const store = track(openStore({ path: mailboxPath() }));
    const raw = new TextEncoder().encode(
      `Subject: needle\r\n\r\nfind the haystack word here\r\n${"filler line\r\n".repeat(30_000)}`,
    );
    const id = await store.add(raw, envelope([]));
    expect((await store.search("haystack")).messages.map((message) => message.id)).toEqual([id]);
  });
});

describe("header summaries", () => {
  test("are made after the commit, and before any listing, search or get reads them", async () => {
    const path = mailboxPath();
    const store = track(openStore({ path, maxMessages: 0 }));
    const id = await store.add(plain("later"), envelope(["bob@example.com"]));
    const observer = new Database(path, { readonly: true });
    const summaries = observer.query<{ n: number }, []>("SELECT COUNT(*) AS n FROM message_summary");
    // Committed (and acknowledged) without its header parsed.
    expect(summaries.get()?.n).toBe(0);
    expect((await store.search("subject:later")).messages.map((message) => message.id)).toEqual([id]);
    expect(summaries.get()?.n).toBe(1);
    const second = await store.add(plain("again"), envelope(["bob@example.com"]));
    expect((await store.get(second))?.subject).toBe("again");
    const page = await store.list();
    expect(page.messages.map((message) => message.subject)).toEqual(["again", "later"]);
    expect(summaries.get()?.n).toBe(2);
    observer.close();
  });

  test("deleting by a query on summary fields removes the summary rows too", async () => {
    const path = mailboxPath();
    const store = track(openStore({ path, maxMessages: 0 }));
    await store.add(plain("keep me"), envelope([]));
    await store.add(plain("drop me"), envelope([]));
    expect(await store.delete({ query: "subject:drop" })).toBe(1);
    const observer = new Database(path, { readonly: true });
    expect(observer.query<{ n: number }, []>("SELECT COUNT(*) AS n FROM message_summary").get()?.n).toBe(1);
    observer.close();
    expect((await store.list()).messages.map((message) => message.subject)).toEqual(["keep me"]);
  });
});

describe("schema 1 mailboxes", () => {
  test("are upgraded in place: messages kept, read state counted from the new read index", async () => {
    const path = mailboxPath();
    const db = new Database(path, { create: true });
    db.exec(`
      CREATE TABLE messages (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, created INTEGER NOT NULL,
        read INTEGER NOT NULL DEFAULT 0, size INTEGER NOT NULL, envelope TEXT NOT NULL,
        message_id TEXT NOT NULL, subject TEXT NOT NULL, date INTEGER, addresses TEXT NOT NULL,
        from_search TEXT NOT NULL, to_search TEXT NOT NULL, cc_search TEXT NOT NULL,
        bcc_search TEXT NOT NULL, reply_to_search TEXT NOT NULL, subject_search TEXT NOT NULL,
        header_search TEXT NOT NULL
      );
      CREATE INDEX messages_unread ON messages (seq) WHERE read = 0;
      CREATE TABLE message_raw (seq INTEGER PRIMARY KEY, raw BLOB NOT NULL);
      CREATE TABLE message_index (
        seq INTEGER PRIMARY KEY, attachments INTEGER NOT NULL, inline INTEGER NOT NULL,
        snippet TEXT NOT NULL, search_text TEXT NOT NULL
      );
      PRAGMA user_version = 1;
    `);
    const env = JSON.stringify(envelope(["bob@example.com"]));
    const addresses = JSON.stringify({ from: null, to: [], cc: [], bcc: [], replyTo: [] });
    const insert = db.prepare(
      `INSERT INTO messages (seq, id, created, read, size, envelope, message_id, subject, date, addresses,
         from_search, to_search, cc_search, bcc_search, reply_to_search, subject_search, header_search)
       VALUES (?, ?, 0, ?, ?, ?, '', ?, NULL, ?, '', '', '', '', '', ?, ?)`,
    );
    const rawOf = (subject: string) => plain(subject);
    db.prepare("INSERT INTO message_raw (seq, raw) VALUES (?, ?)").run(1, rawOf("old one"));
    db.prepare("INSERT INTO message_raw (seq, raw) VALUES (?, ?)").run(2, rawOf("old two"));
    insert.run(1, "OldOne", 1, rawOf("old one").length, env, "old one", addresses, "old one", "old one");
    insert.run(2, "OldTwo", 0, rawOf("old two").length, env, "old two", addresses, "old two", "old two");
    db.close();

    const store = track(openStore({ path }));
    expect(await store.count()).toEqual({ total: 2, unread: 1 });
    expect(await store.raw("OldOne")).toEqual(rawOf("old one"));
    // The header fields came along into message_summary.
    expect((await store.get("OldTwo"))?.subject).toBe("old two");
    expect((await store.search('subject:"old one"')).messages.map((message) => message.id)).toEqual([
      "OldOne",
    ]);
    expect((await store.search("is:unread")).messages.map((message) => message.id)).toEqual(["OldTwo"]);
    const id = await store.add(plain("new"), envelope([]));
    expect((await store.list()).messages.map((message) => message.id)).toEqual([id, "OldTwo", "OldOne"]);
    const check = new Database(path, { readonly: true });
    const indexes = check
      .query<{ name: string }, []>(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages'",
      )
      .all()
      .map((row) => row.name);
    check.close();
    expect(indexes).toContain("messages_read");
    expect(indexes).not.toContain("messages_unread");
  });
});

describe("tags", () => {
  const tagged = (subject: string, tags: string) =>
    new TextEncoder().encode(
      `From: ann@example.com\r\nSubject: ${subject}\r\nX-Tags: ${tags}\r\n\r\nbody\r\n`,
    );
  const ids = (page: { messages: { id: string }[] }) => page.messages.map((message) => message.id);

  test("an X-Tags header tags the message as it arrives; tag: and is:tagged find it at once", async () => {
    const store = track(openStore({ path: mailboxPath() }));
    const signup = await store.add(tagged("welcome", "signup, Beta users!"), envelope([]));
    const other = await store.add(plain("untagged"), envelope([]));
    // Matched without regard to case, as Mailpit matches tags.
    expect(ids(await store.search("tag:SIGNUP"))).toEqual([signup]);
    expect(ids(await store.search('tag:"beta users"'))).toEqual([signup]);
    expect(ids(await store.search("is:tagged"))).toEqual([signup]);
    expect(ids(await store.search("-is:tagged"))).toEqual([other]);
    expect(ids(await store.search("-tag:signup"))).toEqual([other]);
    expect((await store.get(signup))?.tags).toEqual(["Beta users", "signup"]);
    expect((await store.get(other))?.tags).toEqual([]);
    expect(await store.tags()).toEqual([
      { tag: "Beta users", messages: 1 },
      { tag: "signup", messages: 1 },
    ]);
  });

  test("setTags replaces a message's tags (X-Tags included) and clears them with none", async () => {
    const store = track(openStore({ path: mailboxPath() }));
    const a = await store.add(tagged("a", "old"), envelope([]));
    const b = await store.add(plain("b"), envelope([]));
    // The header's tag was not yet applied when setTags came: it must not come back afterwards.
    expect(await store.setTags([a, b, "NoSuchId"], ["release", "qa!", "Release"])).toBe(2);
    expect((await store.list()).messages.map((message) => message.tags)).toEqual([
      ["qa", "release"],
      ["qa", "release"],
    ]);
    expect(await store.setTags([a], [])).toBe(1);
    expect((await store.get(a))?.tags).toEqual([]);
    expect(await store.tags()).toEqual([
      { tag: "qa", messages: 1 },
      { tag: "release", messages: 1 },
    ]);
  });

  test("renameTag merges into an existing tag or changes the case; deleteTag takes it off everywhere", async () => {
    const store = track(openStore({ path: mailboxPath() }));
    const both = await store.add(tagged("both", "old, new"), envelope([]));
    const one = await store.add(tagged("one", "old"), envelope([]));
    expect(await store.renameTag("OLD", "new")).toBe(2);
    expect((await store.get(both))?.tags).toEqual(["new"]);
    expect((await store.get(one))?.tags).toEqual(["new"]);
    expect(await store.renameTag("new", "New")).toBe(2);
    expect(await store.tags()).toEqual([{ tag: "New", messages: 2 }]);
    expect(await store.renameTag("missing", "x")).toBe(0);
    expect(await store.deleteTag("NEW")).toBe(2);
    expect(await store.tags()).toEqual([]);
    expect((await store.get(one))?.tags).toEqual([]);
  });

  test("a large message, summarized as it is added, gets its X-Tags too", async () => {
    const store = track(openStore({ path: mailboxPath() }));
    const head = tagged("large", "big");
    const raw = new Uint8Array(head.length + 300 * 1024).fill(0x61);
    raw.set(head);
    const id = await store.add(raw, envelope([]));
    expect(ids(await store.search("tag:big"))).toEqual([id]);
  });

  test("deleting and pruning a message drop its tags; a new message in its seq does not inherit them", async () => {
    const store = track(openStore({ path: mailboxPath(), maxMessages: 2 }));
    const first = await store.add(tagged("first", "gone-by-prune"), envelope([]));
    const second = await store.add(tagged("second", "gone-by-delete"), envelope([]));
    expect((await store.tags()).map((count) => count.tag)).toEqual(["gone-by-delete", "gone-by-prune"]);
    await store.delete({ ids: [second] });
    const third = await store.add(plain("third"), envelope([]));
    expect((await store.get(third))?.tags).toEqual([]);
    await store.add(plain("fourth"), envelope([]));
    await store.prune();
    expect(await store.get(first)).toBeUndefined();
    expect(await store.tags()).toEqual([]);
  });
});
