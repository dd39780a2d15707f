import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import MailComposer from "nodemailer/lib/mail-composer";
import type { ChaosSettings } from "../../src/http/chaos.ts";
import { type HttpApi, startHttpApi } from "../../src/http/start-http-api.ts";
import { openStore } from "../../src/store/open-store.ts";
import type { MessageStore, StoredEnvelope } from "../../src/store/types.ts";

// Messages come from nodemailer's MailComposer, an encoder independent of ours.
async function compose(options: ConstructorParameters<typeof MailComposer>[0]): Promise<Uint8Array> {
  return new Uint8Array(await new MailComposer(options).compile().build());
}

function envelope(mailFrom: string, rcptTo: string[], authUser?: string): StoredEnvelope {
  return {
    mailFrom,
    rcptTo,
    mailParams: {},
    rcptParams: rcptTo.map(() => ({})),
    clientAddress: "127.0.0.1",
    authUser,
  };
}

const PDF = new TextEncoder().encode("%PDF-1.4\n% not really a pdf\n");
const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 1, 2, 3]);

interface Fixture {
  store: MessageStore;
  api: HttpApi;
  raws: Map<string, Uint8Array>;
  welcome: string;
  invoice: string;
  newsletter: string;
}

async function fill(store: MessageStore): Promise<Omit<Fixture, "store" | "api">> {
  const raws = new Map<string, Uint8Array>();
  const add = async (raw: Uint8Array, env: StoredEnvelope) => {
    const id = await store.add(raw, env);
    raws.set(id, raw);
    return id;
  };
  const welcome = await add(
    await compose({
      from: "Ann Example <ann@example.com>",
      to: "bob@example.com",
      subject: "Welcome aboard",
      text: "Hi Bob,\r\nwelcome to the team.\r\n",
      date: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
      messageId: "<welcome-1@example.com>",
    }),
    envelope("ann@example.com", ["bob@example.com"]),
  );
  const invoice = await add(
    await compose({
      from: '"Billing, Shop" <billing@shop.example>',
      to: "Ann Example <ann@example.com>",
      cc: "accounts@example.com",
      replyTo: "support@shop.example",
      subject: "Invoice #42 — Grüße",
      text: "Your invoice is attached.",
      html: "<p>Your <b>invoice</b> is attached.</p>",
      attachments: [
        { filename: "invoice-42.pdf", content: Buffer.from(PDF), contentType: "application/pdf" },
        { filename: "page.html", content: "<script>alert(1)</script>", contentType: "text/html" },
      ],
    }),
    envelope(
      "bounces@shop.example",
      ["ann@example.com", "accounts@example.com", "audit@example.com"],
      "shop",
    ),
  );
  const newsletter = await add(
    await compose({
      from: "news@letters.example",
      to: "bob@example.com",
      subject: "Weekly news",
      html: '<p>News with a logo <img src="cid:logo@letters.example"></p>',
      headers: { "List-Unsubscribe": "<mailto:leave@letters.example>, <https://letters.example/leave>" },
      attachments: [{ filename: "logo.png", cid: "logo@letters.example", content: Buffer.from(PNG) }],
    }),
    envelope("news@letters.example", ["bob@example.com"]),
  );
  return { raws, welcome, invoice, newsletter };
}

async function setup(options: { onChaos?: (settings: ChaosSettings) => void } = {}): Promise<Fixture> {
  const store = openStore({ path: ":memory:" });
  const filled = await fill(store);
  const api = await startHttpApi({ port: 0, store, version: "9.9.9-test", onChaos: options.onChaos });
  return { store, api, ...filled };
}

async function teardown(fixture: Fixture) {
  await fixture.api.close();
  fixture.store.close();
}

function request(fixture: Fixture, path: string, init?: RequestInit): Promise<Response> {
  return fetch(new URL(path, fixture.api.url), init);
}

async function getJson<T = Record<string, unknown>>(
  fixture: Fixture,
  path: string,
  init?: RequestInit,
): Promise<T> {
  const response = await request(fixture, path, init);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("application/json");
  return (await response.json()) as T;
}

async function expectError(response: Response, status: number) {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/json");
  const body = (await response.json()) as { Error?: unknown };
  expect(typeof body.Error).toBe("string");
}

const jsonBody = (body: unknown): RequestInit => ({
  body: JSON.stringify(body),
  headers: { "Content-Type": "application/json" },
});

const SUMMARY_KEYS = [
  "Attachments",
  "Bcc",
  "Cc",
  "Created",
  "From",
  "ID",
  "MessageID",
  "Read",
  "ReplyTo",
  "Size",
  "Snippet",
  "Subject",
  "Tags",
  "To",
  "Username",
];
const PAGE_KEYS = [
  "count",
  "messages",
  "messages_count",
  "messages_unread",
  "start",
  "tags",
  "total",
  "unread",
];
const MESSAGE_KEYS = [
  "Attachments",
  "Bcc",
  "Cc",
  "Date",
  "From",
  "HTML",
  "ID",
  "Inline",
  "ListUnsubscribe",
  "MessageID",
  "ReplyTo",
  "ReturnPath",
  "Size",
  "Subject",
  "Tags",
  "Text",
  "To",
  "Username",
];

interface Summary {
  ID: string;
  Subject: string;
  Read: boolean;
  Attachments: number;
  From: { Name: string; Address: string };
  Bcc: { Name: string; Address: string }[];
  [key: string]: unknown;
}
interface Page {
  total: number;
  unread: number;
  count: number;
  messages_count: number;
  messages_unread: number;
  start: number;
  tags: string[];
  messages: Summary[];
}

describe("with a filled mailbox", () => {
  let fixture: Fixture;
  beforeAll(async () => {
    fixture = await setup();
  });
  afterAll(async () => {
    await teardown(fixture);
  });

  test("binds to loopback by default", () => {
    expect(new URL(fixture.api.url).hostname).toBe("127.0.0.1");
    expect(fixture.api.port).toBeGreaterThan(0);
  });

  test("GET /api/v1/messages has Mailpit's MessagesSummary shape, newest first", async () => {
    const page = await getJson<Page>(fixture, "/api/v1/messages");
    expect(Object.keys(page).sort()).toEqual(PAGE_KEYS);
    expect([
      page.total,
      page.unread,
      page.count,
      page.messages_count,
      page.messages_unread,
      page.start,
    ]).toEqual([3, 3, 3, 3, 3, 0]);
    expect(page.tags).toEqual([]);
    expect(page.messages.map((message) => message.ID)).toEqual([
      fixture.newsletter,
      fixture.invoice,
      fixture.welcome,
    ]);
    for (const message of page.messages) expect(Object.keys(message).sort()).toEqual(SUMMARY_KEYS);
    const invoice = page.messages[1];
    expect(invoice).toMatchObject({
      MessageID: expect.stringContaining("@shop.example"),
      Read: false,
      From: { Name: "Billing, Shop", Address: "billing@shop.example" },
      To: [{ Name: "Ann Example", Address: "ann@example.com" }],
      Cc: [{ Name: "", Address: "accounts@example.com" }],
      Bcc: [{ Name: "", Address: "audit@example.com" }],
      ReplyTo: [{ Name: "", Address: "support@shop.example" }],
      Subject: "Invoice #42 — Grüße",
      Username: "shop",
      Tags: [],
      Size: fixture.raws.get(fixture.invoice)?.length,
      Attachments: 2,
      Snippet: "Your invoice is attached.",
    });
    expect(Date.parse(String(invoice?.Created))).not.toBeNaN();
  });

  test("paging with start and limit", async () => {
    const page = await getJson<Page>(fixture, "/api/v1/messages?start=1&limit=1");
    expect(page.messages.map((message) => message.ID)).toEqual([fixture.invoice]);
    expect([page.start, page.count, page.total, page.messages_count]).toEqual([1, 1, 3, 3]);
    const beyond = await getJson<Page>(fixture, "/api/v1/messages?start=10");
    expect(beyond.messages).toEqual([]);
  });

  test("bad paging parameters are 400s", async () => {
    await expectError(await request(fixture, "/api/v1/messages?start=abc"), 400);
    await expectError(await request(fixture, "/api/v1/messages?limit=-1"), 400);
  });

  test("GET /api/v1/search filters and counts the matches", async () => {
    const byFrom = await getJson<Page>(fixture, "/api/v1/search?query=from:billing");
    expect(byFrom.messages.map((message) => message.ID)).toEqual([fixture.invoice]);
    expect([byFrom.messages_count, byFrom.total]).toEqual([1, 3]);
    const byText = await getJson<Page>(
      fixture,
      `/api/v1/search?query=${encodeURIComponent('"welcome to the team"')}`,
    );
    expect(byText.messages.map((message) => message.ID)).toEqual([fixture.welcome]);
    const byAttachment = await getJson<Page>(fixture, "/api/v1/search?query=has:inline to:bob");
    expect(byAttachment.messages.map((message) => message.ID)).toEqual([fixture.newsletter]);
    const byDate = await getJson<Page>(fixture, "/api/v1/search?query=before:2000-01-01&tz=Europe/Berlin");
    expect(byDate.messages).toEqual([]);
    const paged = await getJson<Page>(fixture, "/api/v1/search?query=example&start=1&limit=1");
    expect([paged.count, paged.messages_count, paged.start]).toEqual([1, 3, 1]);
  });

  test("a search without a query, or with a malformed one, is a 400", async () => {
    await expectError(await request(fixture, "/api/v1/search"), 400);
    await expectError(await request(fixture, "/api/v1/search?query=%20%20"), 400);
    await expectError(await request(fixture, "/api/v1/search?query=before:someday"), 400);
    await expectError(await request(fixture, "/api/v1/search?query=after:2024-01-01&tz=Nowhere/Land"), 400);
  });

  test("GET /api/v1/message/{ID} has Mailpit's Message shape, with parts and checksums", async () => {
    const message = await getJson(fixture, `/api/v1/message/${fixture.invoice}`);
    expect(Object.keys(message).sort()).toEqual(MESSAGE_KEYS);
    expect(message).toMatchObject({
      ID: fixture.invoice,
      From: { Name: "Billing, Shop", Address: "billing@shop.example" },
      Bcc: [{ Name: "", Address: "audit@example.com" }],
      ReturnPath: "bounces@shop.example",
      Subject: "Invoice #42 — Grüße",
      Username: "shop",
      Tags: [],
      Inline: [],
      Size: fixture.raws.get(fixture.invoice)?.length,
    });
    expect(String(message.Text).trim()).toBe("Your invoice is attached.");
    expect(String(message.HTML)).toContain("<b>invoice</b>");
    const attachments = message.Attachments as Record<string, unknown>[];
    expect(attachments.map((attachment) => attachment.FileName)).toEqual(["invoice-42.pdf", "page.html"]);
    expect(attachments[0]).toEqual({
      PartID: expect.any(String),
      FileName: "invoice-42.pdf",
      ContentType: "application/pdf",
      ContentID: "",
      Size: PDF.length,
      Checksums: {
        MD5: createHash("md5").update(PDF).digest("hex"),
        SHA1: createHash("sha1").update(PDF).digest("hex"),
        SHA256: createHash("sha256").update(PDF).digest("hex"),
      },
    });
  });

  test("inline images and List-Unsubscribe are reported", async () => {
    const message = await getJson(fixture, `/api/v1/message/${fixture.newsletter}`);
    expect(message.Attachments).toEqual([]);
    expect(message.Inline).toEqual([
      expect.objectContaining({
        FileName: "logo.png",
        ContentType: "image/png",
        ContentID: "logo@letters.example",
      }),
    ]);
    expect(message.ListUnsubscribe).toEqual({
      Header: "<mailto:leave@letters.example>, <https://letters.example/leave>",
      Links: ["mailto:leave@letters.example", "https://letters.example/leave"],
      Errors: "",
      HeaderPost: "",
    });
  });

  test("the Date is the message's Date header", async () => {
    const message = await getJson(fixture, `/api/v1/message/${fixture.welcome}`);
    expect(message.Date).toBe("2024-01-02T03:04:05Z");
    expect(message.MessageID).toBe("welcome-1@example.com");
  });

  test("GET /api/v1/message/latest, optionally the latest matching a query", async () => {
    expect((await getJson(fixture, "/api/v1/message/latest")).ID).toBe(fixture.newsletter);
    expect((await getJson(fixture, "/api/v1/message/latest?query=subject:welcome")).ID).toBe(fixture.welcome);
    await expectError(await request(fixture, "/api/v1/message/latest?query=subject:nothing-like-this"), 404);
  });

  test("an unknown message or part is a 404", async () => {
    await expectError(await request(fixture, "/api/v1/message/doesNotExist"), 404);
    await expectError(await request(fixture, "/api/v1/message/doesNotExist/raw"), 404);
    await expectError(await request(fixture, "/api/v1/message/doesNotExist/headers"), 404);
    await expectError(await request(fixture, `/api/v1/message/${fixture.invoice}/part/99`), 404);
  });

  test("GET .../raw returns the stored bytes exactly", async () => {
    for (const [id, raw] of fixture.raws) {
      const response = await request(fixture, `/api/v1/message/${id}/raw`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/plain; charset=utf-8");
      expect(response.headers.get("content-disposition")).toBeNull();
      expect(new Uint8Array(await response.arrayBuffer())).toEqual(new Uint8Array(raw));
    }
    const download = await request(fixture, `/api/v1/message/${fixture.welcome}/raw?dl=1`);
    expect(download.headers.get("content-disposition")).toBe(`attachment; filename="${fixture.welcome}.eml"`);
    await download.arrayBuffer();
  });

  test("GET .../headers maps canonical names to their values, sorted", async () => {
    const headers = await getJson<Record<string, string[]>>(
      fixture,
      `/api/v1/message/${fixture.newsletter}/headers`,
    );
    expect(Object.keys(headers)).toEqual([...Object.keys(headers)].sort());
    expect(headers["Message-Id"]).toHaveLength(1);
    expect(headers["Mime-Version"]).toEqual(["1.0"]);
    expect(headers["List-Unsubscribe"]).toEqual([
      "<mailto:leave@letters.example>, <https://letters.example/leave>",
    ]);
    expect(headers.From).toEqual(["news@letters.example"]);
  });

  test("GET .../part/{PartID} downloads the decoded part", async () => {
    const message = await getJson(fixture, `/api/v1/message/${fixture.invoice}`);
    const [pdf, html] = message.Attachments as { PartID: string }[];
    const response = await request(fixture, `/api/v1/message/${fixture.invoice}/part/${pdf?.PartID}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/pdf");
    expect(response.headers.get("content-disposition")).toBe('inline; filename="invoice-42.pdf"');
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(PDF);
    // HTML attachments are downloads, never rendered in the API's origin.
    const active = await request(fixture, `/api/v1/message/${fixture.invoice}/part/${html?.PartID}`);
    expect(active.headers.get("content-type")).toBe("application/octet-stream");
    expect(active.headers.get("content-disposition")).toBe('attachment; filename="page.html"');
    expect(await active.text()).toBe("<script>alert(1)</script>");
    const inline = await getJson(fixture, `/api/v1/message/${fixture.newsletter}`);
    const [logo] = inline.Inline as { PartID: string }[];
    const image = await request(fixture, `/api/v1/message/latest/part/${logo?.PartID}`);
    expect(new Uint8Array(await image.arrayBuffer())).toEqual(PNG);
  });

  test("GET /api/v1/info, /livez and /readyz", async () => {
    const info = await getJson(fixture, "/api/v1/info");
    expect(info).toMatchObject({
      Version: "9.9.9-test",
      Database: ":memory:",
      Messages: 3,
      Tags: {},
      RuntimeStats: expect.objectContaining({ SMTPAccepted: 3, MessagesDeleted: 0 }),
    });
    expect(typeof info.Unread).toBe("number");
    const live = await request(fixture, "/livez");
    expect([live.status, await live.text()]).toEqual([200, "ok"]);
    const ready = await request(fixture, "/readyz");
    expect([ready.status, await ready.text()]).toEqual([200, "ok"]);
  });

  test("GET /api/v1/webui and /api/v1/tags answer as Mailpit's do", async () => {
    const webui = await getJson(fixture, "/api/v1/webui");
    expect(webui).toMatchObject({
      ChaosEnabled: false,
      MessageRelay: { Enabled: false },
      SpamAssassin: false,
    });
    expect(await getJson<unknown>(fixture, "/api/v1/tags")).toEqual([]);
  });

  test("unknown paths are 404 and unsupported methods 405, as JSON", async () => {
    await expectError(await request(fixture, "/api/v1/nothing-here"), 404);
    const response = await request(fixture, "/api/v1/messages", { method: "POST" });
    expect(response.headers.get("allow")).toBe("GET, DELETE, PUT");
    await expectError(response, 405);
  });

  test("chaos is off unless the server hands in a callback", async () => {
    await expectError(await request(fixture, "/api/v1/chaos"), 400);
    await expectError(
      await request(fixture, "/api/v1/chaos", { method: "PUT", ...jsonBody({ fail: [] }) }),
      400,
    );
  });
});

describe("changing the mailbox", () => {
  let fixture: Fixture;
  afterEach(async () => {
    await teardown(fixture);
  });

  const unread = async () => (await getJson<Page>(fixture, "/api/v1/messages")).unread;

  test("GET /api/v1/message/{ID} marks the message read", async () => {
    fixture = await setup();
    await getJson(fixture, `/api/v1/message/${fixture.welcome}`);
    const page = await getJson<Page>(fixture, "/api/v1/messages");
    expect(page.messages.find((message) => message.ID === fixture.welcome)?.Read).toBe(true);
    expect(page.unread).toBe(2);
  });

  test("PUT /api/v1/messages sets read state by IDs, by search, or for all", async () => {
    fixture = await setup();
    const put = (body: unknown) => request(fixture, "/api/v1/messages", { method: "PUT", ...jsonBody(body) });
    let response = await put({ IDs: [fixture.welcome, fixture.invoice], Read: true });
    expect([response.status, await response.text()]).toEqual([200, "ok"]);
    expect(await unread()).toBe(1);
    await put({ Search: "from:billing", Read: false });
    expect(await unread()).toBe(2);
    await put({ Read: true });
    expect(await unread()).toBe(0);
    response = await request(fixture, "/api/v1/messages", { method: "PUT" });
    expect(response.status).toBe(200);
    expect(await unread()).toBe(3);
  });

  test("PUT /api/v1/messages rejects malformed bodies", async () => {
    fixture = await setup();
    const put = (body: string) => request(fixture, "/api/v1/messages", { method: "PUT", body });
    await expectError(await put("{not json"), 400);
    await expectError(await put(JSON.stringify({ IDs: "one" })), 400);
    await expectError(await put(JSON.stringify({ Read: "yes" })), 400);
    await expectError(await put(JSON.stringify([1, 2])), 400);
    await expectError(await put(JSON.stringify({ IDs: [fixture.welcome], Search: "x", Read: true })), 400);
    await expectError(await put(JSON.stringify({ Search: "is:starred", Read: true })), 400);
    expect(await unread()).toBe(3);
  });

  test("DELETE /api/v1/messages deletes the IDs given, or everything", async () => {
    fixture = await setup();
    let response = await request(fixture, "/api/v1/messages", {
      method: "DELETE",
      ...jsonBody({ IDs: [fixture.welcome] }),
    });
    expect([response.status, await response.text()]).toEqual([200, "ok"]);
    await expectError(await request(fixture, `/api/v1/message/${fixture.welcome}`), 404);
    expect((await getJson<Page>(fixture, "/api/v1/messages")).total).toBe(2);
    await expectError(await request(fixture, "/api/v1/messages", { method: "DELETE", body: "[" }), 400);
    response = await request(fixture, "/api/v1/messages", { method: "DELETE" });
    expect(response.status).toBe(200);
    expect((await getJson<Page>(fixture, "/api/v1/messages")).total).toBe(0);
  });

  test("DELETE /api/v1/search deletes what matches", async () => {
    fixture = await setup();
    const response = await request(fixture, "/api/v1/search?query=to:bob", { method: "DELETE" });
    expect([response.status, await response.text()]).toEqual([200, "ok"]);
    const page = await getJson<Page>(fixture, "/api/v1/messages");
    expect(page.messages.map((message) => message.ID)).toEqual([fixture.invoice]);
    await expectError(await request(fixture, "/api/v1/search", { method: "DELETE" }), 400);
  });

  test("paging over more messages than one page", async () => {
    fixture = await setup();
    for (let index = 0; index < 60; index++) {
      await fixture.store.add(
        await compose({
          from: "bulk@example.com",
          to: "bob@example.com",
          subject: `bulk ${index}`,
          text: "x",
        }),
        envelope("bulk@example.com", ["bob@example.com"]),
      );
    }
    const first = await getJson<Page>(fixture, "/api/v1/messages");
    expect([first.count, first.total]).toEqual([50, 63]);
    expect(first.messages[0]?.Subject).toBe("bulk 59");
    const second = await getJson<Page>(fixture, "/api/v1/messages?start=50&limit=50");
    expect(second.count).toBe(13);
    expect(second.messages.at(-1)?.ID).toBe(fixture.welcome);
    const search = await getJson<Page>(fixture, "/api/v1/search?query=subject:bulk&start=55&limit=10");
    expect([search.count, search.messages_count]).toEqual([5, 60]);
  });

  test("/readyz fails once the store is closed", async () => {
    fixture = await setup();
    fixture.store.close();
    await expectError(await request(fixture, "/readyz"), 503);
    await expectError(await request(fixture, "/api/v1/messages"), 503);
  });
});

describe("waiting for mail", () => {
  let fixture: Fixture;
  afterEach(async () => {
    await teardown(fixture);
  });

  const newMail = async (subject: string) =>
    fixture.store.add(
      await compose({ from: "app@example.com", to: "user@example.com", subject, text: `about ${subject}` }),
      envelope("app@example.com", ["user@example.com"]),
    );

  test("GET /api/v1/wait answers when a matching message arrives", async () => {
    fixture = await setup();
    const waiting = request(fixture, "/api/v1/wait?query=subject:reset&timeout=30");
    await newMail("Unrelated");
    const id = await newMail("Password reset");
    const response = await waiting;
    expect(response.status).toBe(200);
    const message = (await response.json()) as Record<string, unknown>;
    expect(Object.keys(message).sort()).toEqual(MESSAGE_KEYS);
    expect([message.ID, message.Subject]).toEqual([id, "Password reset"]);
    // Waiting does not mark the message read.
    expect(
      (await getJson<Page>(fixture, "/api/v1/search?query=is:unread subject:reset")).messages_count,
    ).toBe(1);
  });

  test("a matching message already stored answers at once, unless it is older than since", async () => {
    fixture = await setup();
    const now = await getJson(fixture, "/api/v1/wait?query=subject:welcome");
    expect(now.ID).toBe(fixture.welcome);
    const since = Date.now() + 1;
    const waiting = request(fixture, `/api/v1/wait?query=subject:welcome&since=${since}&timeout=30`);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const id = await newMail("Welcome again");
    expect((await (await waiting).json()) as Record<string, unknown>).toMatchObject({ ID: id });
  });

  test("408 when nothing matching arrives in time", async () => {
    fixture = await setup();
    const waiting = request(fixture, "/api/v1/wait?query=subject:never&timeout=0.2");
    await newMail("Something else");
    await expectError(await waiting, 408);
  });

  test("bad wait parameters are 400s", async () => {
    fixture = await setup();
    await expectError(await request(fixture, "/api/v1/wait?timeout=soon"), 400);
    await expectError(await request(fixture, "/api/v1/wait?timeout=0"), 400);
    await expectError(await request(fixture, "/api/v1/wait?timeout=100000"), 400);
    await expectError(await request(fixture, "/api/v1/wait?since=whenever"), 400);
    await expectError(await request(fixture, "/api/v1/wait?query=is:starred"), 400);
  });

  test("closing the API ends a held wait", async () => {
    fixture = await setup();
    const waiting = request(fixture, "/api/v1/wait?query=subject:never&timeout=60").then(
      (response) => response.status,
      () => "connection closed",
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    await fixture.api.close();
    expect([503, "connection closed"]).toContain(await waiting);
  });
});

describe("server-sent events", () => {
  let fixture: Fixture;
  afterEach(async () => {
    await teardown(fixture);
  });

  /** Reads the stream until `count` events arrived. */
  async function readEvents(body: ReadableStream<Uint8Array>, count: number, onOpen: () => Promise<void>) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    let opened = false;
    const events: { event: string; data: Summary }[] = [];
    while (events.length < count) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (!opened && text.includes(": smtpkit events")) {
        opened = true;
        await onOpen();
      }
      let end = text.indexOf("\n\n");
      while (end !== -1) {
        const block = text.slice(0, end);
        text = text.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) as Summary });
        end = text.indexOf("\n\n");
      }
    }
    await reader.cancel();
    return events;
  }

  const newMail = async (subject: string) =>
    fixture.store.add(
      await compose({ from: "app@example.com", to: "user@example.com", subject, text: "hello" }),
      envelope("app@example.com", ["user@example.com"]),
    );

  test("GET /api/v1/events streams a MessageSummary per new message, in arrival order", async () => {
    fixture = await setup();
    const response = await request(fixture, "/api/v1/events");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    let ids: string[] = [];
    const events = await readEvents(response.body as ReadableStream<Uint8Array>, 3, async () => {
      ids = await Promise.all([newMail("one"), newMail("two"), newMail("three")]);
    });
    expect(events.map((event) => event.event)).toEqual(["new", "new", "new"]);
    expect(events.map((event) => event.data.ID)).toEqual(ids);
    expect(events.map((event) => event.data.Subject)).toEqual(["one", "two", "three"]);
    expect(Object.keys(events[0]?.data ?? {}).sort()).toEqual(SUMMARY_KEYS);
  });

  test("?query= streams only matching messages", async () => {
    fixture = await setup();
    const response = await request(fixture, "/api/v1/events?query=subject:important");
    const events = await readEvents(response.body as ReadableStream<Uint8Array>, 1, async () => {
      await newMail("boring");
      await newMail("important news");
    });
    expect(events.map((event) => event.data.Subject)).toEqual(["important news"]);
  });

  test("a malformed query is a 400 before the stream opens", async () => {
    fixture = await setup();
    await expectError(await request(fixture, "/api/v1/events?query=has:everything"), 400);
  });
});

describe("chaos", () => {
  let fixture: Fixture;
  afterEach(async () => {
    await teardown(fixture);
  });

  test("PUT /api/v1/chaos hands validated settings to the server, GET reports them", async () => {
    const received: ChaosSettings[] = [];
    fixture = await setup({ onChaos: (settings) => received.push(settings) });
    const settings = {
      fail: [{ stage: "rcpt", code: 451, probability: 50 }],
      delay: [{ stage: "data", ms: 250 }],
    };
    const put = await getJson(fixture, "/api/v1/chaos", { method: "PUT", ...jsonBody(settings) });
    expect(received).toEqual([settings as ChaosSettings]);
    expect(put).toMatchObject({ ...settings, Recipient: { ErrorCode: 451, Probability: 50 } });
    expect(await getJson(fixture, "/api/v1/chaos")).toEqual(put);
  });

  test("Mailpit's triggers are accepted and mapped to stages", async () => {
    const received: ChaosSettings[] = [];
    fixture = await setup({ onChaos: (settings) => received.push(settings) });
    const put = await getJson(fixture, "/api/v1/chaos", {
      method: "PUT",
      ...jsonBody({ Sender: { ErrorCode: 550, Probability: 100 }, Authentication: { Probability: 10 } }),
    });
    expect(received.at(-1)?.fail).toEqual([
      { stage: "mail", code: 550, probability: 100 },
      { stage: "auth", code: 535, probability: 10 },
    ]);
    expect(put).toMatchObject({
      Sender: { ErrorCode: 550, Probability: 100 },
      Recipient: { ErrorCode: 451, Probability: 0 },
      Authentication: { ErrorCode: 535, Probability: 10 },
    });
  });

  test("invalid settings are 400s and never reach the server", async () => {
    const received: ChaosSettings[] = [];
    fixture = await setup({ onChaos: (settings) => received.push(settings) });
    const put = (body: string) => request(fixture, "/api/v1/chaos", { method: "PUT", body });
    await expectError(await put(JSON.stringify({ fail: [{ stage: "quit", code: 451 }] })), 400);
    await expectError(await put(JSON.stringify({ fail: [{ stage: "rcpt", code: 250 }] })), 400);
    await expectError(await put(JSON.stringify({ delay: [{ stage: "data", ms: -1 }] })), 400);
    await expectError(await put(JSON.stringify({ something: true })), 400);
    await expectError(await put("nope"), 400);
    expect(received).toEqual([]);
  });
});
