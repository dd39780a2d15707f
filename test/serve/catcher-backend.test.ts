import { afterEach, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SmtpClient } from "../../src/client/smtp-client.ts";
import { parsePath } from "../../src/core/address.ts";
import type { Envelope } from "../../src/core/envelope.ts";
import { SmtpError } from "../../src/core/errors.ts";
import type { ChaosSettings } from "../../src/http/chaos.ts";
import { type CatcherOptions, catcherBackend, storedEnvelope } from "../../src/serve/catcher-backend.ts";
import { Chaos } from "../../src/serve/chaos.ts";
import type { Backend, SessionInfo } from "../../src/server/backend.ts";
import { type SmtpServer, startSmtpServer } from "../../src/server/smtp-server.ts";
import { openStore } from "../../src/store/open-store.ts";
import type { MessageStore, StoredEnvelope } from "../../src/store/types.ts";
import { RawSmtpClient } from "../server/raw-smtp-client.ts";

const enc = new TextEncoder();
const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("latin1");
const DATE = new Date("2026-11-27T13:14:48Z");

const stores: MessageStore[] = [];
const servers: SmtpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close(100)));
  for (const store of stores.splice(0)) store.close();
});

function memoryStore(): MessageStore {
  const store = openStore({ path: ":memory:" });
  stores.push(store);
  return store;
}

function session(overrides: Partial<SessionInfo> = {}): SessionInfo {
  return {
    id: "s1",
    remoteAddress: "127.0.0.1",
    remotePort: 40000,
    localAddress: "127.0.0.1",
    localPort: 2525,
    heloName: "client.test",
    esmtp: true,
    ...overrides,
  };
}

function envelope(from: string, ...to: string[]): Envelope {
  return {
    from: parsePath(from, { utf8: true }),
    mailParams: { other: [] },
    recipients: to.map((t) => ({ path: parsePath(t, { utf8: true }), params: { other: [] } })),
  };
}

async function* chunks(...parts: string[]): AsyncIterable<Uint8Array> {
  for (const part of parts) yield new Uint8Array(Buffer.from(part, "latin1"));
}

function catcher(overrides: Partial<CatcherOptions> = {}) {
  const store = overrides.store ?? memoryStore();
  const stored: { id: string; raw: Uint8Array; envelope: StoredEnvelope }[] = [];
  const backend = catcherBackend({
    store,
    hostname: "mx.test",
    chaos: new Chaos(),
    now: () => DATE,
    onStored: (id, raw, env) => {
      // Messages here are small: the store hands them over in memory.
      if (!(raw instanceof Uint8Array)) throw new Error("a small message should arrive as bytes");
      stored.push({ id, raw, envelope: env });
    },
    ...overrides,
  });
  return { backend, store, stored };
}

/** Runs a hook that may or may not be async; resolves to the SmtpError it threw, if any. */
async function refusal(call: () => unknown): Promise<SmtpError | undefined> {
  try {
    await call();
    return undefined;
  } catch (error) {
    if (error instanceof SmtpError) return error;
    throw error;
  }
}

describe("data", () => {
  test("stores the message after a Received line, resolves with the store's id, and tells onStored", async () => {
    const { backend, store, stored } = catcher();
    const id = await backend.data(
      session(),
      envelope("<a@a.test>", "<b@b.test>"),
      chunks("Subject: hi\r\n", "\r\nbody\r\n"),
    );
    expect(typeof id).toBe("string");
    const raw = await store.raw(id as string);
    expect(latin1(raw ?? new Uint8Array())).toBe(
      "Received: from client.test ([127.0.0.1])\r\n" +
        "\tby mx.test (smtpkit) with ESMTP id s1\r\n" +
        "\tfor <b@b.test>; Fri, 27 Nov 2026 13:14:48 +0000\r\n" +
        "Subject: hi\r\n\r\nbody\r\n",
    );
    expect(stored).toHaveLength(1);
    expect(stored[0]?.id).toBe(id as string);
    expect(latin1(stored[0]?.raw ?? new Uint8Array())).toBe(latin1(raw ?? new Uint8Array()));
  });

  test("many chunks, binary octets and an empty message are kept exactly", async () => {
    const { backend, store } = catcher();
    const parts = Array.from({ length: 300 }, (_, i) => String.fromCharCode(i % 256).repeat(i));
    const id = await backend.data(session(), envelope("<a@a.test>", "<b@b.test>"), chunks(...parts));
    const raw = latin1((await store.raw(id as string)) ?? new Uint8Array());
    expect(raw.slice(raw.indexOf("+0000\r\n") + 7)).toBe(parts.join(""));
    const empty = await backend.data(session(), envelope("<a@a.test>", "<b@b.test>"), chunks());
    expect(latin1((await store.raw(empty as string)) ?? new Uint8Array())).toEndWith("+0000\r\n");
  });

  test("the Received line reflects TLS, AUTH, HELO and SMTPUTF8, and names a single recipient only", async () => {
    const { backend, stored } = catcher();
    const tls = { protocol: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384" } as SessionInfo["tls"];
    await backend.data(
      session({ tls, authUser: "alice" }),
      envelope("<a@a.test>", "<b@b.test>", "<c@c.test>"),
      chunks("x\r\n"),
    );
    await backend.data(
      session({ esmtp: false, heloName: "old.test" }),
      envelope("<a@a.test>", "<b@b.test>"),
      chunks("x\r\n"),
    );
    const utf8 = envelope("<jöran@a.test>", "<bø@b.test>");
    utf8.mailParams.smtpUtf8 = true;
    await backend.data(session(), utf8, chunks("x\r\n"));
    const [first, second, third] = stored.map((s) => Buffer.from(s.raw).toString("utf8"));
    expect(first).toContain(" with ESMTPSA id s1; ");
    expect(first).not.toContain("for <");
    expect(second).toStartWith(
      "Received: from old.test ([127.0.0.1])\r\n\tby mx.test (smtpkit) with SMTP id s1\r\n",
    );
    expect(third).toContain(" with UTF8SMTP id s1\r\n\tfor <bø@b.test>; ");
  });

  test("a store that fails the commit fails data(): the server answers 451, not 250", async () => {
    const store = memoryStore();
    const broken = Object.assign(Object.create(store) as MessageStore, {
      stage: store.stage.bind(store),
      add: () => Promise.reject(new Error("disk full")),
    });
    const { backend, stored } = catcher({ store: broken });
    await expect(
      backend.data(session(), envelope("<a@a.test>", "<b@b.test>"), chunks("x\r\n")),
    ).rejects.toThrow("disk full");
    expect(stored).toHaveLength(0);
  });

  test("a message the session aborts (its stream throws) is not stored", async () => {
    const { backend, store } = catcher();
    async function* aborted(): AsyncIterable<Uint8Array> {
      yield enc.encode("Subject: half\r\n");
      throw new SmtpError(550, "5.6.0", "bare LF");
    }
    await expect(backend.data(session(), envelope("<a@a.test>", "<b@b.test>"), aborted())).rejects.toThrow(
      "bare LF",
    );
    expect((await store.count()).total).toBe(0);
  });

  test("forward without keep relays instead of storing; with keep it does both", async () => {
    const forwarded: string[] = [];
    const forward = async (raw: Uint8Array) => {
      forwarded.push(latin1(raw));
      return "Q1";
    };
    const relay = catcher({ forward });
    expect(await relay.backend.data(session(), envelope("<a@a.test>", "<b@b.test>"), chunks("x\r\n"))).toBe(
      "Q1",
    );
    expect((await relay.store.count()).total).toBe(0);
    const keep = catcher({ forward, keep: true });
    expect(await keep.backend.data(session(), envelope("<a@a.test>", "<b@b.test>"), chunks("y\r\n"))).toBe(
      "Q1",
    );
    expect((await keep.store.count()).total).toBe(1);
    expect(forwarded.map((raw) => raw.slice(-3))).toEqual(["x\r\n", "y\r\n"]);
    expect(forwarded[0]).toStartWith("Received: ");
  });
});

describe("large messages", () => {
  const directories: string[] = [];
  afterEach(() => {
    for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
  });

  function diskStore(): { store: MessageStore; rawDir: string } {
    const directory = mkdtempSync(join(tmpdir(), "smtpkit-catcher-"));
    directories.push(directory);
    const path = join(directory, "mailbox.sqlite");
    const store = openStore({ path });
    stores.push(store);
    return { store, rawDir: `${path}-raw` };
  }

  const body = `Subject: big one\r\n\r\n${"z".repeat(78)}\r\n`.repeat(5000);

  test("go to the store as they arrive; onStored hears their size and header, not their bytes", async () => {
    const { store, rawDir } = diskStore();
    const seen: { id: string; size: number; header: string }[] = [];
    const backend = catcherBackend({
      store,
      hostname: "mx.test",
      chaos: new Chaos(),
      now: () => DATE,
      onStored: (id, raw, _env) => {
        if (raw instanceof Uint8Array) throw new Error("a large message should not be handed over whole");
        seen.push({ id, size: raw.size, header: latin1(raw.header) });
      },
    });
    const parts = body.match(/[\s\S]{1,65536}/g) ?? [];
    const id = await backend.data(session(), envelope("<a@a.test>", "<b@b.test>"), chunks(...parts));
    expect(readdirSync(rawDir)).toEqual([String(id)]);
    const raw = latin1((await store.raw(String(id))) ?? new Uint8Array());
    expect(raw).toStartWith("Received: from client.test ([127.0.0.1])\r\n");
    expect(raw).toEndWith(body);
    expect(seen).toEqual([
      { id: String(id), size: raw.length, header: expect.stringContaining("Subject: big one") },
    ]);
  });

  test("one refused at dot by chaos leaves no file behind", async () => {
    const { store, rawDir } = diskStore();
    const chaos = new Chaos({ fail: [{ stage: "dot", code: 451, probability: 100 }], delay: [] });
    const { backend } = catcher({ store, chaos });
    const parts = body.match(/[\s\S]{1,65536}/g) ?? [];
    const error = await refusal(() =>
      backend.data(session(), envelope("<a@a.test>", "<b@b.test>"), chunks(...parts)),
    );
    expect(error).toMatchObject({ code: 451 });
    await Bun.sleep(20);
    expect(readdirSync(rawDir)).toEqual([]);
    expect((await store.count()).total).toBe(0);
  });
});

describe("storedEnvelope", () => {
  test("paths without brackets, the null sender as '', parameters as records, connection facts", () => {
    const env = envelope("<>", "<b@b.test>", '<"john doe"@[127.0.0.1]>');
    env.mailParams = { size: 1234, body: "8BITMIME", ret: "HDRS", envid: "abc+def", other: [] };
    env.recipients[0] = {
      path: parsePath("<b@b.test>"),
      params: { notify: ["SUCCESS", "FAILURE"], orcpt: { type: "rfc822", address: "b@b.test" }, other: [] },
    };
    const tls = { protocol: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256" } as SessionInfo["tls"];
    expect(storedEnvelope(env, session({ tls, authUser: "alice" }))).toEqual({
      mailFrom: "",
      rcptTo: ["b@b.test", '"john doe"@[127.0.0.1]'],
      mailParams: { SIZE: "1234", BODY: "8BITMIME", RET: "HDRS", ENVID: "abc+2Bdef" },
      rcptParams: [{ NOTIFY: "SUCCESS,FAILURE", ORCPT: "rfc822;b@b.test" }, {}],
      clientAddress: "127.0.0.1",
      heloName: "client.test",
      tls: { protocol: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256" },
      authUser: "alice",
    });
  });

  test("without HELO, TLS or AUTH those fields are left out", () => {
    const stored = storedEnvelope(envelope("<a@a.test>", "<b@b.test>"), session({ heloName: undefined }));
    expect(Object.keys(stored).sort()).toEqual([
      "clientAddress",
      "mailFrom",
      "mailParams",
      "rcptParams",
      "rcptTo",
    ]);
  });
});

describe("auth", () => {
  const cramDigest = (password: string, challenge: string) =>
    createHmac("md5", password).update(challenge).digest("hex");

  test("without a users file any credentials are accepted (a catcher's default)", async () => {
    const { backend } = catcher();
    expect(await refusal(() => backend.auth?.(session(), "PLAIN", "anyone", "anything"))).toBeUndefined();
    expect(
      await refusal(() =>
        backend.auth?.(session(), "CRAM-MD5", "anyone", { cramResponse: "00", challenge: "<1@x>" }),
      ),
    ).toBeUndefined();
  });

  test("with users: the right password passes; a wrong one or an unknown user gets 535 5.7.8", async () => {
    const { backend } = catcher({ users: new Map([["alice", "s3cret"]]) });
    expect(await refusal(() => backend.auth?.(session(), "PLAIN", "alice", "s3cret"))).toBeUndefined();
    for (const [user, password] of [
      ["alice", "wrong"],
      ["alice", "S3CRET"],
      ["bob", "s3cret"],
      ["", ""],
    ] as const) {
      expect(await refusal(() => backend.auth?.(session(), "LOGIN", user, password))).toMatchObject({
        code: 535,
        enhanced: "5.7.8",
      });
    }
  });

  test("with users: a CRAM-MD5 proof is checked against the stored password", async () => {
    const { backend } = catcher({ users: new Map([["alice", "s3cret"]]) });
    const challenge = "<12345.1700000000000@mx.test>";
    const good = { cramResponse: cramDigest("s3cret", challenge), challenge };
    const bad = { cramResponse: cramDigest("wrong", challenge), challenge };
    expect(await refusal(() => backend.auth?.(session(), "CRAM-MD5", "alice", good))).toBeUndefined();
    expect((await refusal(() => backend.auth?.(session(), "CRAM-MD5", "alice", bad)))?.code).toBe(535);
  });
});

describe("chaos", () => {
  const failing = (stage: ChaosSettings["fail"][number]["stage"], code: number): Chaos =>
    new Chaos({ fail: [{ stage, code, probability: 100 }], delay: [] });

  test.each([
    ["connect", (b: Backend) => b.connect?.(session())],
    ["helo", (b: Backend) => b.helo?.(session(), "client.test")],
    ["mail", (b: Backend) => b.mail?.(session(), parsePath("<a@a.test>"), { other: [] })],
    ["rcpt", (b: Backend) => b.rcpt?.(session(), parsePath("<b@b.test>"), { other: [] })],
    ["auth", (b: Backend) => b.auth?.(session(), "PLAIN", "u", "p")],
    ["data", (b: Backend) => b.dataStart?.(session(), envelope("<a@a.test>", "<b@b.test>"))],
  ] as const)("a failure at %s is thrown by that hook", async (stage, call) => {
    const { backend } = catcher({ chaos: failing(stage, 451) });
    expect(await refusal(() => call(backend))).toMatchObject({ code: 451, enhanced: "4.3.0" });
  });

  test("a failure at dot refuses the message after reading it, and nothing is stored", async () => {
    const { backend, store } = catcher({ chaos: failing("dot", 554) });
    const error = await refusal(() =>
      backend.data(session(), envelope("<a@a.test>", "<b@b.test>"), chunks("x\r\n")),
    );
    expect(error).toMatchObject({ code: 554, enhanced: "5.3.0" });
    expect((await store.count()).total).toBe(0);
  });

  test("idle chaos: every hook answers at once (synchronously), so the hot path stays fast", () => {
    const { backend } = catcher();
    expect(backend.connect?.(session())).toBeUndefined();
    expect(backend.helo?.(session(), "x")).toBeUndefined();
    expect(backend.mail?.(session(), parsePath("<a@a.test>"), { other: [] })).toBeUndefined();
    expect(backend.rcpt?.(session(), parsePath("<b@b.test>"), { other: [] })).toBeUndefined();
  });

  test("settings changed at run time apply to the next hook call", async () => {
    const chaos = new Chaos();
    const { backend } = catcher({ chaos });
    expect(
      await refusal(() => backend.rcpt?.(session(), parsePath("<b@b.test>"), { other: [] })),
    ).toBeUndefined();
    chaos.set({ fail: [{ stage: "rcpt", code: 452, probability: 100 }], delay: [] });
    expect(
      (await refusal(() => backend.rcpt?.(session(), parsePath("<b@b.test>"), { other: [] })))?.code,
    ).toBe(452);
  });
});

describe("behind the SMTP server", () => {
  async function serve(options: Partial<CatcherOptions>): Promise<{ port: number; store: MessageStore }> {
    const { backend, store } = catcher(options);
    const server = await startSmtpServer({
      backend,
      hostname: "mx.test",
      listen: [{ host: "127.0.0.1", port: 0 }],
    });
    servers.push(server);
    return { port: server.listeners[0]?.port ?? 0, store };
  }

  async function inData(port: number): Promise<RawSmtpClient> {
    const client = await RawSmtpClient.connect(port);
    await client.reply();
    await client.command("EHLO client.test\r\n");
    client.send("MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n");
    expect(await client.reply()).toBe("250 2.1.0 Sender ok");
    expect(await client.reply()).toBe("250 2.1.5 Recipient ok");
    expect(await client.reply()).toStartWith("354 ");
    return client;
  }

  test("250 comes only once the store has committed the message, naming its id", async () => {
    const store = memoryStore();
    let commit: (() => void) | undefined;
    let adding: Promise<string> | undefined;
    const gated = Object.assign(Object.create(store) as MessageStore, {
      stage: store.stage.bind(store),
      add(raw: Uint8Array, env: StoredEnvelope): Promise<string> {
        adding = new Promise<void>((resolve) => {
          commit = resolve;
        }).then(() => store.add(raw, env));
        return adding;
      },
    });
    const { port } = await serve({ store: gated });
    const client = await inData(port);
    let replied = false;
    const reply = client.command("Subject: durable\r\n\r\nx\r\n.\r\n").then((text) => {
      replied = true;
      return text;
    });
    while (commit === undefined) await Bun.sleep(2);
    // The whole message is in and handed to the store; still no reply while the commit is pending.
    await Bun.sleep(50);
    expect(replied).toBe(false);
    commit();
    const id = await adding;
    expect(await reply).toBe(`250 2.0.0 Ok: queued as ${id}`);
    expect(latin1((await store.raw(id ?? "")) ?? new Uint8Array())).toEndWith(
      "Subject: durable\r\n\r\nx\r\n",
    );
  });

  test("a failed commit is a 451 to the client, and the session goes on", async () => {
    const store = memoryStore();
    const broken = Object.assign(Object.create(store) as MessageStore, {
      stage: store.stage.bind(store),
      add: () => Promise.reject(new Error("disk full")),
    });
    const { port } = await serve({ store: broken });
    const client = await inData(port);
    expect(await client.command("Subject: lost\r\n\r\nx\r\n.\r\n")).toBe(
      "451 4.3.0 Requested action aborted: local error in processing",
    );
    expect(await client.command("NOOP\r\n")).toBe("250 2.0.0 Ok");
  });

  test("chaos at data refuses the DATA command itself; at dot, the message after its end", async () => {
    const chaos = new Chaos();
    const { port, store } = await serve({ chaos });
    chaos.set({ fail: [{ stage: "data", code: 554, probability: 100 }], delay: [] });
    const client = await RawSmtpClient.connect(port);
    await client.reply();
    await client.command("EHLO client.test\r\n");
    client.send("MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n");
    await client.reply();
    await client.reply();
    expect(await client.reply()).toBe("554 5.3.0 Injected failure (smtpkit chaos)");
    expect(await client.command("RSET\r\n")).toBe("250 2.0.0 Ok");

    chaos.set({ fail: [{ stage: "dot", code: 451, probability: 100 }], delay: [] });
    client.send("MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n");
    await client.reply();
    await client.reply();
    expect(await client.reply()).toStartWith("354 ");
    expect(await client.command("Subject: x\r\n\r\nx\r\n.\r\n")).toBe(
      "451 4.3.0 Injected failure (smtpkit chaos)",
    );
    expect((await store.count()).total).toBe(0);
  });

  test("AUTH CRAM-MD5 from our client is checked against the users file", async () => {
    const { port } = await serve({ users: new Map([["alice", "s3cret"]]) });
    const options = {
      host: "127.0.0.1",
      port,
      helo: "client.test",
      starttls: "never" as const,
      allowPlaintextAuth: true,
    };
    const client = await SmtpClient.connect({
      ...options,
      auth: { mechanism: "CRAM-MD5", username: "alice", password: "s3cret" },
    });
    await client.quit();
    await expect(
      SmtpClient.connect({
        ...options,
        auth: { mechanism: "CRAM-MD5", username: "alice", password: "nope" },
      }),
    ).rejects.toThrow(/535/);
  });
});
