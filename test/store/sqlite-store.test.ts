import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import MailComposer from "nodemailer/lib/mail-composer";
import { MAILBOX_FILE_NAME, openStore } from "../../src/store/open-store.ts";
import { SCHEMA_VERSION, SchemaVersionError } from "../../src/store/schema.ts";
import { SqliteMessageStore } from "../../src/store/sqlite-store.ts";
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
