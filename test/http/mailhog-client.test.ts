import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import mailhog from "mailhog";
import MailComposer from "nodemailer/lib/mail-composer";
import type { MailHogMessage } from "../../src/http/mailhog-json.ts";
import { type HttpApi, startHttpApi } from "../../src/http/start-http-api.ts";
import { openStore } from "../../src/store/open-store.ts";
import type { MessageStore, StoredEnvelope } from "../../src/store/types.ts";

// A real client of MailHog's API from npm (mailhog), unchanged, against our API.

let store: MessageStore;
let api: HttpApi;
let client: ReturnType<typeof mailhog>;

beforeAll(async () => {
  store = openStore({ path: ":memory:" });
  api = await startHttpApi({ port: 0, store, version: "0.0.0-test" });
  client = mailhog({ host: "127.0.0.1", port: Number(new URL(api.url).port) });
});

afterAll(async () => {
  await api.close();
  store.close();
});

/** The client's own types leave out MailHog's fields (Raw, Content, To); its objects have them. */
type Item = mailhog.Message & MailHogMessage;

async function page(result: Promise<mailhog.Messages | null>) {
  const messages = await result;
  if (!messages) throw new Error("the client returned no listing");
  return { ...messages, items: messages.items as Item[] };
}

async function deliver(
  options: ConstructorParameters<typeof MailComposer>[0],
  rcptTo: string[],
): Promise<{ id: string; raw: Uint8Array }> {
  const raw = new Uint8Array(await new MailComposer(options).compile().build());
  const envelope: StoredEnvelope = {
    mailFrom: "app@example.com",
    rcptTo,
    mailParams: {},
    rcptParams: rcptTo.map(() => ({})),
    clientAddress: "127.0.0.1",
    heloName: "app.local",
  };
  return { id: await store.add(raw, envelope), raw };
}

describe("mailhog client", () => {
  let welcome: { id: string; raw: Uint8Array };
  let invoice: { id: string; raw: Uint8Array };

  test("messages(): subject, addresses, text and HTML as MailHog's clients decode them", async () => {
    welcome = await deliver(
      {
        from: "App <app@example.com>",
        to: "Ann <ann@example.com>",
        subject: "Chào",
        text: "Xin chào! Your account is ready.",
        html: "<p>Xin chào! <b>Your account</b> is ready.</p>",
      },
      ["ann@example.com"],
    );
    invoice = await deliver(
      {
        from: "Billing <billing@example.com>",
        to: "Bob <bob@example.net>",
        subject: "Invoice 42",
        text: "Your invoice is attached.",
        attachments: [
          { filename: "invoice.pdf", content: Buffer.from("%PDF-1.4 test"), contentType: "application/pdf" },
        ],
      },
      ["bob@example.net"],
    );
    const result = await page(client.messages());
    expect(result.total).toBe(2);
    expect(result.count).toBe(2);
    expect(result.start).toBe(0);
    // Newest first, as MailHog lists them.
    const [newest, oldest] = result.items;
    expect(newest?.ID).toBe(invoice.id);
    expect(oldest?.ID).toBe(welcome.id);
    // One encoded word: the client's decoder keeps "_" and the blank between two words.
    expect(oldest?.subject).toBe("Chào");
    expect(oldest?.Content.Headers.Subject).toEqual(["=?UTF-8?Q?Ch=C3=A0o?="]);
    expect(oldest?.from).toBe("App <app@example.com>");
    expect(oldest?.to).toBe("Ann <ann@example.com>");
    expect(oldest?.text?.trim()).toBe("Xin chào! Your account is ready.");
    expect(oldest?.html?.trim()).toBe("<p>Xin chào! <b>Your account</b> is ready.</p>");
    expect(oldest?.Raw.From).toBe("app@example.com");
    expect(oldest?.Raw.To).toEqual(["ann@example.com"]);
    expect(oldest?.Raw.Helo).toBe("app.local");
    expect(oldest?.Raw.Data).toBe(new TextDecoder().decode(welcome.raw));
    expect(oldest?.deliveryDate.getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(oldest?.To[0]).toMatchObject({ Mailbox: "ann", Domain: "example.com" });
  });

  test("attachments: the part's name, type and encoding, its body still in base64", async () => {
    const message = (await page(client.messages(0, 1))).items[0];
    expect(message?.ID).toBe(invoice.id);
    const [attachment] = message?.attachments ?? [];
    expect(attachment?.name).toBe("invoice.pdf");
    expect(attachment?.type).toBe("application/pdf; name=invoice.pdf");
    expect(attachment?.encoding).toBe("base64");
    expect(Buffer.from(attachment?.Body ?? "", "base64").toString()).toBe("%PDF-1.4 test");
  });

  test("paging: start and limit", async () => {
    const second = await page(client.messages(1, 1));
    expect(second.total).toBe(2);
    expect(second.count).toBe(1);
    expect(second.start).toBe(1);
    expect(second.items[0]?.ID).toBe(welcome.id);
  });

  test("search by from, to and containing, and the latest* helpers", async () => {
    const from = await page(client.search("billing@example.com", "from"));
    expect(from.items.map((item) => item.ID)).toEqual([invoice.id]);
    const to = await page(client.search("ann@example.com", "to"));
    expect(to.items.map((item) => item.ID)).toEqual([welcome.id]);
    const containing = await page(client.search("account is ready"));
    expect(containing.items.map((item) => item.ID)).toEqual([welcome.id]);
    expect((await client.latestTo("bob@example.net"))?.ID).toBe(invoice.id);
    expect((await client.latestFrom("app@example.com"))?.ID).toBe(welcome.id);
    expect((await client.latestContaining("Invoice 42"))?.ID).toBe(invoice.id);
    const none = await page(client.search("nobody@example.org", "to"));
    expect(none.count).toBe(0);
    expect(none.total).toBe(0);
  });

  test("one message, its download, and a search kind MailHog does not know", async () => {
    const base = api.url.replace(/\/$/, "");
    const one = await fetch(`${base}/api/v1/messages/${invoice.id}`);
    expect(one.status).toBe(200);
    expect(((await one.json()) as { ID: string }).ID).toBe(invoice.id);
    const download = await fetch(`${base}/api/v1/messages/${invoice.id}/download`);
    expect(download.headers.get("content-type")).toBe("message/rfc822");
    expect(download.headers.get("content-disposition")).toBe(`attachment; filename="${invoice.id}.eml"`);
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(new Uint8Array(invoice.raw));
    expect((await fetch(`${base}/api/v1/messages/nope`)).status).toBe(404);
    const badKind = await fetch(`${base}/api/v2/search?kind=subject&query=x`);
    expect(badKind.status).toBe(400);
    expect(await badKind.json()).toEqual({ Error: "kind must be from, to or containing" });
  });

  test("deleteMessage removes one message; deleteAll the rest", async () => {
    await client.deleteMessage(welcome.id);
    expect((await page(client.messages())).items.map((item) => item.ID)).toEqual([invoice.id]);
    // MailHog's client parses any answer as JSON: Mailpit's "ok" would make deleteAll throw.
    await client.deleteAll();
    expect((await store.count()).total).toBe(0);
  });
});
