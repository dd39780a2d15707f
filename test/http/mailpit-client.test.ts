import { afterAll, beforeAll, describe, expect, test } from "bun:test";
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

describe("mailpit-api client", () => {
  let store: MessageStore;
  let api: HttpApi;
  let client: MailpitClient;
  let chaos: ChaosSettings = { fail: [], delay: [] };
  const raws = new Map<string, Uint8Array>();

  const deliver = async (options: ConstructorParameters<typeof MailComposer>[0], rcptTo: string[]) => {
    const raw = await compose(options);
    const id = await store.add(raw, envelope(rcptTo));
    raws.set(id, raw);
    return id;
  };

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
    });
    client = new MailpitClient(api.url);
  });

  afterAll(async () => {
    await api.close();
    store.close();
  });

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
