import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { simpleParser } from "mailparser";
import { MailpitClient } from "mailpit-api";
import MailComposer from "nodemailer/lib/mail-composer";
import type { ChaosSettings } from "../../src/http/chaos.ts";
import { type HttpApi, startHttpApi } from "../../src/http/start-http-api.ts";
import { openStore } from "../../src/store/open-store.ts";
import type { MessageStore, StoredEnvelope } from "../../src/store/types.ts";

// A real client of Mailpit's API from npm (mailpit-api), unchanged, against our API.

async function compose(options: ConstructorParameters<typeof MailComposer>[0]): Promise<Uint8Array> {
  return new Uint8Array(await new MailComposer(options).compile().build());
}

function envelope(rcptTo: string[]): StoredEnvelope {
  return {
    mailFrom: "app@example.com",
    rcptTo,
    mailParams: {},
    rcptParams: rcptTo.map(() => ({})),
    clientAddress: "127.0.0.1",
  };
}

const ATTACHMENT = new TextEncoder().encode("col1,col2\n1,2\n");

let store: MessageStore;
let api: HttpApi;
let client: MailpitClient;
let chaos: ChaosSettings = { fail: [], delay: [] };
/** What POST /api/v1/send told its onStored hook. */
const stored: { id: string; envelope: StoredEnvelope }[] = [];

beforeAll(async () => {
  store = openStore({ path: ":memory:" });
  api = await startHttpApi({
    port: 0,
    store,
    version: "0.0.0-test",
    onChaos: (settings) => {
      chaos = settings;
    },
    getChaos: () => chaos,
    maxSize: 64 * 1024,
    onStored: (id, _raw, envelope) => stored.push({ id, envelope }),
  });
  client = new MailpitClient(api.url);
});

afterAll(async () => {
  await api.close();
  store.close();
});

describe("mailpit-api client", () => {
  const raws = new Map<string, Uint8Array>();

  const deliver = async (options: ConstructorParameters<typeof MailComposer>[0], rcptTo: string[]) => {
    const raw = await compose(options);
    const id = await store.add(raw, envelope(rcptTo));
    raws.set(id, raw);
    return id;
  };

  test("list, get, raw, headers and attachment", async () => {
    const id = await deliver(
      {
        from: "App <app@example.com>",
        to: "Ann <ann@example.com>",
        subject: "Your export",
        text: "The export is attached.",
        attachments: [{ filename: "export.csv", content: Buffer.from(ATTACHMENT), contentType: "text/csv" }],
      },
      ["ann@example.com"],
    );
    const list = await client.listMessages();
    expect(list.total).toBe(1);
    expect(list.messages_count).toBe(1);
    expect(list.messages[0]).toMatchObject({ ID: id, Subject: "Your export", Attachments: 1, Read: false });

    const message = await client.getMessageSummary(id);
    expect(message.From).toEqual({ Name: "App", Address: "app@example.com" });
    expect(message.To).toEqual([{ Name: "Ann", Address: "ann@example.com" }]);
    expect(message.Text.trim()).toBe("The export is attached.");
    expect(message.Attachments).toHaveLength(1);

    const source = await client.getMessageSource(id);
    expect(source).toBe(new TextDecoder().decode(raws.get(id)));

    const headers = await client.getMessageHeaders("latest");
    expect(headers.Subject).toEqual(["Your export"]);

    const part = message.Attachments[0]?.PartID ?? "";
    const blob = await client.getMessageAttachment(id, part);
    expect(blob.type).toStartWith("text/csv");
    expect(new Uint8Array(await blob.arrayBuffer())).toEqual(ATTACHMENT);
  });

  test("search, read status and waitForMessage", async () => {
    await deliver(
      { from: "app@example.com", to: "bob@example.com", subject: "Reset your password", text: "x" },
      ["bob@example.com"],
    );
    const found = await client.searchMessages({ query: "to:bob subject:reset" });
    expect(found.messages_count).toBe(1);
    expect(found.messages[0]?.Subject).toBe("Reset your password");

    expect(await client.setReadStatus({ Read: true })).toBe("ok");
    expect((await client.listMessages()).unread).toBe(0);
    expect(await client.setReadStatus({ Search: "subject:reset", Read: false })).toBe("ok");
    expect((await client.searchMessages({ query: "is:unread" })).messages_count).toBe(1);

    const waited = await client.waitForMessage(
      { query: "subject:password" },
      { timeout: 2000, interval: 50 },
    );
    expect(waited.Subject).toBe("Reset your password");
  });

  test("info, configuration, tags and chaos triggers", async () => {
    expect((await client.getConfiguration()).ChaosEnabled).toBe(true);
    expect(await client.getTags()).toEqual([]);
    const info = await client.getInfo();
    expect(info.Version).toBe("0.0.0-test");
    expect(info.Messages).toBeGreaterThan(0);
    const triggers = await client.setChaosTriggers({ Recipient: { ErrorCode: 452, Probability: 20 } });
    expect(triggers.Recipient).toEqual({ ErrorCode: 452, Probability: 20 });
    expect(chaos.fail).toEqual([{ stage: "rcpt", code: 452, probability: 20 }]);
    expect((await client.getChaosTriggers()).Recipient).toEqual({ ErrorCode: 452, Probability: 20 });
  });

  test("delete by search, by IDs and everything", async () => {
    const keep = await deliver({ from: "a@example.com", to: "c@example.com", subject: "keep", text: "k" }, [
      "c@example.com",
    ]);
    const drop = await deliver({ from: "a@example.com", to: "c@example.com", subject: "drop", text: "d" }, [
      "c@example.com",
    ]);
    expect(await client.deleteMessagesBySearch({ query: "subject:drop" })).toBe("ok");
    expect((await client.searchMessages({ query: "to:c@example.com" })).messages.map((m) => m.ID)).toEqual([
      keep,
    ]);
    expect(await client.deleteMessages({ IDs: [keep] })).toBe("ok");
    expect((await client.searchMessages({ query: "to:c@example.com" })).messages_count).toBe(0);
    expect(await store.get(drop)).toBeUndefined();
    expect(await client.deleteMessages()).toBe("ok");
    expect((await client.listMessages()).total).toBe(0);
  });
});

describe("mailpit-api sendMessage and the /view pages", () => {
  const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 255, 13, 10, 46]);

  test("a sent message is built by our encoders, stored, and reads back as it was given", async () => {
    const { ID } = await client.sendMessage({
      From: { Email: "ana@example.com", Name: "Ana Nguyễn" },
      To: [{ Email: "bob@example.com", Name: "Bob" }, { Email: "carol@example.com" }],
      Cc: [{ Email: "dave@example.com" }],
      Bcc: ["eve@example.com"],
      ReplyTo: [{ Email: "help@example.com" }],
      Subject: "Xin chào 👋 — 你好",
      Text: "Chào Bob,\nthe logo is attached.",
      HTML: '<p>Chào <b>Bob</b></p><img src="cid:logo@example.com">',
      Attachments: [
        { Filename: "logo.png", Content: PNG.toBase64(), ContentID: "logo@example.com" },
        {
          Filename: "notes.txt",
          Content: Buffer.from("a\r\nb").toString("base64"),
          ContentType: "text/plain",
        },
      ],
      Headers: { "X-Campaign": "welcome" },
    });
    expect(stored.at(-1)?.id).toBe(ID);
    expect(stored.at(-1)?.envelope).toMatchObject({
      mailFrom: "ana@example.com",
      rcptTo: ["bob@example.com", "carol@example.com", "dave@example.com", "eve@example.com"],
      clientAddress: "127.0.0.1",
    });

    const raw = await client.getMessageSource(ID);
    // What `send` would put on the wire to a server without 8BITMIME: 7-bit, short lines.
    expect([...raw].every((ch) => ch.charCodeAt(0) < 0x80)).toBe(true);
    expect(raw.split("\r\n").every((line) => line.length <= 998)).toBe(true);
    expect(raw).not.toMatch(/^Bcc:/im);

    // mailparser (npm), not our parser, reads it back.
    const parsed = await simpleParser(raw);
    expect(parsed.from?.value).toEqual([{ name: "Ana Nguyễn", address: "ana@example.com" }]);
    expect(parsed.subject).toBe("Xin chào 👋 — 你好");
    expect(parsed.text?.trim()).toBe("Chào Bob,\nthe logo is attached.");
    expect(parsed.replyTo?.text).toBe("help@example.com");
    expect(parsed.headers.get("x-campaign")).toBe("welcome");
    const logo = parsed.attachments.find((a) => a.filename === "logo.png");
    expect(new Uint8Array(logo?.content ?? [])).toEqual(PNG);
    expect(logo?.contentId).toBe("<logo@example.com>");
    const notes = parsed.attachments.find((a) => a.filename === "notes.txt");
    expect(notes?.contentType).toBe("text/plain");
    expect(notes?.content.toString()).toBe("a\r\nb");

    const summary = await client.getMessageSummary(ID);
    expect(summary.Cc).toEqual([{ Name: "", Address: "dave@example.com" }]);
    // As Mailpit shows it: an envelope recipient the headers do not name.
    expect(summary.Bcc).toEqual([{ Name: "", Address: "eve@example.com" }]);

    const html = await client.renderMessageHTML(ID);
    const logoPart = summary.Inline.find((part) => part.FileName === "logo.png")?.PartID;
    expect(logoPart).toBeDefined();
    expect(html).toContain(`<img src="/api/v1/message/${ID}/part/${logoPart}">`);
    expect((await client.renderMessageText("latest")).trimEnd()).toBe("Chào Bob,\nthe logo is attached.");
  });

  test("addresses beyond ASCII are written as UTF-8 (RFC 6532); only envelope ones ask for SMTPUTF8", async () => {
    const replyOnly = await client.sendMessage({
      From: { Email: "a@example.com" },
      To: [{ Email: "b@example.com" }],
      ReplyTo: [{ Email: "hỗ-trợ@ví-dụ.vn" }],
      Text: "x",
    });
    expect(stored.at(-1)?.envelope.mailParams).toEqual({});
    expect((await client.getMessageSummary(replyOnly.ID)).ReplyTo).toEqual([
      { Name: "", Address: "hỗ-trợ@ví-dụ.vn" },
    ]);
    await client.sendMessage({
      From: { Email: "a@example.com" },
      To: [{ Email: "chị@ví-dụ.vn" }],
      Text: "x",
    });
    expect(stored.at(-1)?.envelope).toMatchObject({ rcptTo: ["chị@ví-dụ.vn"], mailParams: { SMTPUTF8: "" } });
  });

  test("the HTML view runs in a sandbox; a message without HTML has none, its text view reads the HTML's text", async () => {
    const sendBody = async (body: { Text: string } | { HTML: string }) =>
      (
        await client.sendMessage({
          From: { Email: "a@example.com" },
          To: [{ Email: "b@example.com" }],
          ...body,
        })
      ).ID;
    const textOnly = await sendBody({ Text: "plain" });
    const response = await fetch(`${api.url}view/${textOnly}.html`);
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ Error: "the message has no HTML body" });
    const htmlOnly = await sendBody({ HTML: "<p>only <i>markup</i></p>" });
    const page = await fetch(`${api.url}view/${htmlOnly}.html`);
    expect(page.headers.get("content-security-policy")).toBe("sandbox");
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect((await client.renderMessageText(htmlOnly)).trim()).toBe("only  markup");
    expect((await fetch(`${api.url}view/${htmlOnly}.pdf`)).status).toBe(404);
    expect((await fetch(`${api.url}view/nosuchid.txt`)).status).toBe(404);
  });

  test("a send request that cannot make a message is a 400 that says why, and stores nothing", async () => {
    const before = (await store.count()).total;
    const send = async (body: unknown) => {
      const response = await fetch(`${api.url}api/v1/send`, { method: "POST", body: JSON.stringify(body) });
      return { status: response.status, error: ((await response.json()) as { Error: string }).Error };
    };
    const to = [{ Email: "b@example.com" }];
    expect(await send({ To: to })).toEqual({ status: 400, error: 'From is required: {"Email": "..."}' });
    expect(await send({ From: { Email: "a@example.com" } })).toEqual({
      status: 400,
      error: "no recipient: give To, Cc or Bcc",
    });
    expect((await send({ From: { Email: "not an address" }, To: to })).error).toStartWith("From.Email: ");
    expect((await send({ From: { Email: "a@example.com" }, To: [{ Email: "b@" }] })).error).toStartWith(
      "To[0].Email: ",
    );
    expect(
      await send({
        From: { Email: "a@example.com" },
        To: to,
        Attachments: [{ Filename: "x", Content: "%%" }],
      }),
    ).toEqual({ status: 400, error: "Attachments[0].Content is not valid base64" });
    expect(
      (await send({ From: { Email: "a@example.com" }, To: to, Headers: { "X-A": "1\r\nBcc: x@y" } })).status,
    ).toBe(400);
    expect((await send({ From: { Email: "a@example.com" }, To: to, Tags: "t" })).error).toBe(
      "Tags must be an array of strings",
    );
    const big = { From: { Email: "a@example.com" }, To: to, Text: "x".repeat(70_000) };
    expect((await send(big)).error).toMatch(
      /^the message is \d+ octets, more than the 65536 this server takes/,
    );
    expect(await send([1])).toEqual({
      status: 400,
      error: "the request body must be a JSON object (Mailpit's send request)",
    });
    expect((await store.count()).total).toBe(before);
  });
});

describe("mailpit-api tags", () => {
  test("tags from sendMessage and X-Tags; setTags, getTags, search, renameTag, deleteTag", async () => {
    await client.deleteMessages();
    const sent = (
      await client.sendMessage({
        From: { Email: "app@example.com" },
        To: [{ Email: "ann@example.com" }],
        Subject: "tagged by the send API",
        Tags: ["signup", "Beta users!"],
      })
    ).ID;
    const raw = new TextEncoder().encode(
      "From: app@example.com\r\nTo: bob@example.com\r\nSubject: tagged by a header\r\nX-Tags: invoice\r\n\r\nx\r\n",
    );
    const byHeader = await store.add(raw, {
      mailFrom: "app@example.com",
      rcptTo: ["bob@example.com"],
      mailParams: {},
      rcptParams: [{}],
      clientAddress: "127.0.0.1",
    });
    expect(await client.getTags()).toEqual(["Beta users", "invoice", "signup"]);
    expect((await client.getMessageSummary(sent)).Tags).toEqual(["Beta users", "signup"]);
    expect((await client.getMessageHeaders(sent))["X-Tags"]).toEqual(["signup, Beta users"]);
    const listed = await client.listMessages();
    expect(listed.tags).toEqual(["Beta users", "invoice", "signup"]);
    expect(listed.messages.map((m) => [m.ID, m.Tags])).toEqual([
      [byHeader, ["invoice"]],
      [sent, ["Beta users", "signup"]],
    ]);
    expect((await client.getInfo()).Tags).toEqual({ "Beta users": 1, invoice: 1, signup: 1 });

    expect(await client.setTags({ IDs: [byHeader], Tags: ["invoice", "paid"] })).toBe("ok");
    expect((await client.searchMessages({ query: "tag:paid" })).messages.map((m) => m.ID)).toEqual([
      byHeader,
    ]);
    expect(await client.renameTag("signup", "Sign-up")).toBe("ok");
    expect((await client.getMessageSummary(sent)).Tags).toEqual(["Beta users", "Sign-up"]);
    expect(await client.deleteTag("Beta users")).toBe("ok");
    expect(await client.getTags()).toEqual(["invoice", "paid", "Sign-up"]);
    expect(await client.setTags({ IDs: [sent] })).toBe("ok");
    expect((await client.searchMessages({ query: "is:tagged" })).messages.map((m) => m.ID)).toEqual([
      byHeader,
    ]);

    const missing = await fetch(`${api.url}api/v1/tags/nope`, { method: "DELETE" });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ Error: 'no message is tagged "nope"' });
    const blank = await fetch(`${api.url}api/v1/tags/invoice`, { method: "PUT", body: '{"Name": "!!"}' });
    expect(blank.status).toBe(400);
  });
});
