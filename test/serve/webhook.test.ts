import { afterEach, describe, expect, test } from "bun:test";
import { startWebhook, type Webhook, webhookUrl } from "../../src/serve/webhook.ts";
import { openStore } from "../../src/store/open-store.ts";
import type { MessageStore, StoredEnvelope } from "../../src/store/types.ts";

interface Received {
  body: unknown;
  contentType: string | null;
  userAgent: string | null;
}

/** A loopback endpoint that records what it is sent and answers `status`. */
function receiver(status = 200) {
  const received: Received[] = [];
  const waiters: (() => void)[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      received.push({
        body: await request.json(),
        contentType: request.headers.get("content-type"),
        userAgent: request.headers.get("user-agent"),
      });
      for (const wake of waiters.splice(0)) wake();
      return new Response("", { status });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/hook`,
    received,
    /** Resolves once `count` requests have arrived. */
    async until(count: number): Promise<void> {
      while (received.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
    },
    stop: () => server.stop(true),
  };
}

const envelope: StoredEnvelope = {
  mailFrom: "app@example.com",
  rcptTo: ["ann@example.com"],
  mailParams: {},
  rcptParams: [{}],
  clientAddress: "127.0.0.1",
};

const message = (subject: string) =>
  new TextEncoder().encode(
    `From: App <app@example.com>\r\nTo: ann@example.com\r\nSubject: ${subject}\r\n\r\nHi\r\n`,
  );

let store: MessageStore | undefined;
let webhook: Webhook | undefined;
let endpoint: ReturnType<typeof receiver> | undefined;

afterEach(async () => {
  await webhook?.close();
  store?.close();
  endpoint?.stop();
  webhook = undefined;
  store = undefined;
  endpoint = undefined;
});

function start(limit: number, status = 200): { warnings: string[] } {
  endpoint = receiver(status);
  store = openStore({ path: ":memory:" });
  const warnings: string[] = [];
  webhook = startWebhook({
    url: endpoint.url,
    limit,
    store,
    userAgent: "smtpkit/test",
    warn: (line) => warnings.push(line),
  });
  return { warnings };
}

describe("webhook", () => {
  test("posts each new message's summary, as an entry of Mailpit's listing, once it is stored", async () => {
    start(0);
    const id = await store?.add(message("Order 7 shipped"), envelope);
    await endpoint?.until(1);
    const [request] = endpoint?.received ?? [];
    expect(request?.contentType).toBe("application/json");
    expect(request?.userAgent).toBe("smtpkit/test");
    expect(request?.body).toMatchObject({
      ID: id,
      Subject: "Order 7 shipped",
      From: { Name: "App", Address: "app@example.com" },
      To: [{ Name: "", Address: "ann@example.com" }],
      Read: false,
    });
  });

  test("over --webhook-limit, messages are stored but not announced, and a warning counts them", async () => {
    const { warnings } = start(2);
    const ids = await Promise.all(["a", "b", "c", "d", "e"].map((s) => store?.add(message(s), envelope)));
    expect(ids.every((id) => typeof id === "string")).toBe(true);
    await endpoint?.until(2);
    await webhook?.close();
    expect(endpoint?.received).toHaveLength(2);
    expect((await store?.count())?.total).toBe(5);
    expect(warnings).toEqual([
      "smtpkit: webhook: 3 new messages not announced (over --webhook-limit 2/s, or 20 requests waiting for the endpoint)",
    ]);
  });

  test("no limit announces every message", async () => {
    start(0);
    await Promise.all(["a", "b", "c", "d", "e", "f", "g"].map((s) => store?.add(message(s), envelope)));
    await endpoint?.until(7);
    expect(endpoint?.received).toHaveLength(7);
  });

  test("with no limit, at most 20 requests wait for a slow endpoint; the rest are counted, not sent", async () => {
    store = openStore({ path: ":memory:" });
    let arrived = 0;
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slow = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch() {
        arrived++;
        await released;
        return new Response("");
      },
    });
    const warnings: string[] = [];
    webhook = startWebhook({
      url: `http://127.0.0.1:${slow.port}/`,
      limit: 0,
      store,
      userAgent: "t",
      warn: (line) => warnings.push(line),
    });
    const letters = "abcdefghijklmnopqrstuvwxy".split("");
    await Promise.all(letters.map((s) => store?.add(message(s), envelope)));
    for (let waited = 0; arrived < 20 && waited < 5_000; waited += 10) await Bun.sleep(10);
    release();
    await webhook.close();
    slow.stop(true);
    expect(arrived).toBe(20);
    expect((await store.count()).total).toBe(25);
    expect(warnings).toEqual([
      "smtpkit: webhook: 5 new messages not announced (20 requests waiting for the endpoint)",
    ]);
  });

  test("an endpoint that fails gets a warning; the message is stored all the same", async () => {
    const { warnings } = start(0, 500);
    const id = await store?.add(message("x"), envelope);
    await endpoint?.until(1);
    await webhook?.close();
    expect(warnings).toEqual([`smtpkit: webhook ${endpoint?.url} answered 500 for ${id}`]);
    expect(await store?.get(id ?? "")).toBeDefined();
  });

  test("an endpoint that does not answer the connection gets a warning naming it", async () => {
    store = openStore({ path: ":memory:" });
    const warnings: string[] = [];
    // A port nothing listens on: take one, then close it.
    const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    const url = `http://127.0.0.1:${closed.port}/`;
    closed.stop(true);
    webhook = startWebhook({ url, limit: 0, store, userAgent: "t", warn: (line) => warnings.push(line) });
    const id = await store.add(message("x"), envelope);
    await webhook.close();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toStartWith(`smtpkit: webhook ${url} failed for ${id}: `);
  });

  test("--webhook-url takes http and https URLs only", () => {
    expect(webhookUrl("https://hooks.example.com/x")).toBeInstanceOf(URL);
    expect(webhookUrl("http://127.0.0.1:9000")).toBeInstanceOf(URL);
    expect(webhookUrl("ftp://example.com/")).toBe(
      "--webhook-url wants an http:// or https:// URL, not 'ftp://example.com/'",
    );
    expect(webhookUrl("hooks.example.com")).toBe(
      "--webhook-url wants an http:// or https:// URL, not 'hooks.example.com'",
    );
  });
});
