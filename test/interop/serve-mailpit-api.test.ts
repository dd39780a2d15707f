// mailpit-api (npm), a real client of Mailpit's API, used unchanged against a running
// `smtpkit serve` that received its mail over SMTP from nodemailer: list, search, get, raw,
// headers, parts, read state, delete, info, wait, and chaos triggers; and mailhog (npm), a client of
// MailHog's API, on the same server.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import mailhog from "mailhog";
import { MailpitClient } from "mailpit-api";
import type { Transporter } from "nodemailer";
import { createTransport } from "nodemailer";
import MailComposer from "nodemailer/lib/mail-composer";
import type { MailHogMessage } from "../../src/http/mailhog-json.ts";
import { LOOPBACK } from "./peers/ports.ts";
import { headerValues, parseWithPythonEmail, partBytes } from "./peers/python-email.ts";
import { runSwaks } from "./peers/swaks.ts";
import { queuedIds, type ServeProcess, splitReceived, startServe } from "./serve-process.ts";

type Mail = ConstructorParameters<typeof MailComposer>[0];

let serve: ServeProcess;
let mailpit: MailpitClient;
let transport: Transporter;
/** What nodemailer put on the wire for each stored message, by ID. */
const sent = new Map<string, string>();

const CSV = "col1,col2\n1,2\n";

async function deliver(mail: Mail, to: string[]): Promise<string> {
  // MailComposer leaves LFs in 7-bit text; nodemailer's DATA stream sends every line end as CRLF.
  const raw = (await new MailComposer(mail).compile().build()).toString("utf8").replace(/\r?\n/g, "\r\n");
  const info = await transport.sendMail({ envelope: { from: "app@example.com", to }, raw });
  const id = /queued as (\S+)/.exec(info.response ?? "")?.[1];
  if (id === undefined) throw new Error(`no queue id in ${info.response}`);
  sent.set(id, raw);
  return id;
}

let welcome: string;
let invoice: string;
let digest: string;

beforeAll(async () => {
  serve = await startServe({ memory: true });
  mailpit = new MailpitClient(serve.apiUrl ?? "");
  transport = createTransport({ host: LOOPBACK, port: serve.port, secure: false, ignoreTLS: true });
  welcome = await deliver(
    {
      from: "App <app@example.com>",
      to: "Ana <ana@example.com>",
      subject: "Welcome aboard",
      text: "Hello Ana, welcome!",
    },
    ["ana@example.com"],
  );
  invoice = await deliver(
    {
      from: "Billing <billing@example.com>",
      to: "bob@example.com",
      cc: "carol@example.com",
      subject: "Invoice 42 ✓",
      text: "Your invoice is attached.",
      html: "<p>Your invoice is <b>attached</b>.</p>",
      attachments: [{ filename: "invoice.csv", content: CSV, contentType: "text/csv" }],
    },
    ["bob@example.com", "carol@example.com", "dave@example.com"],
  );
  digest = await deliver(
    {
      from: "news@example.com",
      to: "ana@example.com",
      subject: "Weekly digest",
      text: "Nothing new this week.",
    },
    ["ana@example.com"],
  );
});

afterAll(async () => {
  transport?.close();
  await serve?.close();
});

describe("mailpit-api against serve", () => {
  test("getInfo counts what arrived over SMTP", async () => {
    const info = await mailpit.getInfo();
    expect(info.Messages).toBe(3);
    expect(info.Unread).toBe(3);
    expect(info.RuntimeStats.SMTPAccepted).toBe(3);
    expect(info.Database).toBe(":memory:");
  });

  test("listMessages: newest first, with Mailpit's counts and paging", async () => {
    const all = await mailpit.listMessages();
    expect(all.total).toBe(3);
    expect(all.messages_count).toBe(3);
    expect(all.messages.map((m) => m.ID)).toEqual([digest, invoice, welcome]);
    const page = await mailpit.listMessages(1, 1);
    expect(page.start).toBe(1);
    expect(page.messages.map((m) => m.ID)).toEqual([invoice]);
    const listed = all.messages.find((m) => m.ID === invoice);
    expect(listed?.Subject).toBe("Invoice 42 ✓");
    expect(listed?.From).toEqual({ Name: "Billing", Address: "billing@example.com" });
    expect(listed?.Cc).toEqual([{ Name: "", Address: "carol@example.com" }]);
    // An envelope recipient named in no header is a Bcc.
    expect(listed?.Bcc).toEqual([{ Name: "", Address: "dave@example.com" }]);
    expect(listed?.Attachments).toBe(1);
  });

  test.each([
    ["from:billing@example.com", () => [invoice]],
    ["to:ana@example.com", () => [digest, welcome]],
    ['subject:"Invoice 42"', () => [invoice]],
    ["has:attachment", () => [invoice]],
    ["welcome", () => [welcome]],
    ["digest -from:app@example.com", () => [digest]],
  ])("searchMessages %s", async (query, expected) => {
    const found = await mailpit.searchMessages({ query });
    expect(found.messages.map((m) => m.ID)).toEqual(expected());
    expect(found.messages_count).toBe(expected().length);
  });

  test("getMessageSource returns exactly what nodemailer sent, after serve's Received line", async () => {
    for (const id of [welcome, invoice, digest]) {
      const source = await mailpit.getMessageSource(id);
      const { received, message } = splitReceived(new Uint8Array(Buffer.from(source, "utf8")));
      expect(received).toContain("(smtpkit) with ESMTP id");
      expect(Buffer.from(message).toString("utf8")).toBe(sent.get(id) ?? "");
    }
  });

  test("getMessageSummary by ID and as latest; it marks the message read", async () => {
    const message = await mailpit.getMessageSummary(invoice);
    expect(message.ID).toBe(invoice);
    expect(message.Subject).toBe("Invoice 42 ✓");
    expect(message.Text.trim()).toBe("Your invoice is attached.");
    expect(message.HTML).toContain("<b>attached</b>");
    expect(message.Attachments.map((a) => [a.FileName, a.ContentType, a.Size])).toEqual([
      ["invoice.csv", "text/csv", CSV.length],
    ]);
    expect((await mailpit.getMessageSummary()).ID).toBe(digest);
    const unread = await mailpit.searchMessages({ query: "is:unread" });
    expect(unread.messages.map((m) => m.ID)).toEqual([welcome]);
  });

  test("getMessageHeaders and getMessageAttachment", async () => {
    const headers = await mailpit.getMessageHeaders(invoice);
    // As Mailpit does (Go's net/mail): header values as they stand in the message, not decoded.
    expect(headers.Subject).toEqual(["=?UTF-8?Q?Invoice_42_=E2=9C=93?="]);
    expect(headers.Received?.[0]).toContain("(smtpkit)");
    const { Attachments } = await mailpit.getMessageSummary(invoice);
    const part = await mailpit.getMessageAttachment(invoice, Attachments[0]?.PartID ?? "");
    expect(await part.text()).toBe(CSV);
  });

  test("setReadStatus by ID and for all", async () => {
    await mailpit.setReadStatus({ IDs: [welcome], Read: false });
    await mailpit.setReadStatus({ IDs: [digest], Read: false });
    expect((await mailpit.listMessages()).unread).toBe(2);
    await mailpit.setReadStatus({ Read: true });
    expect((await mailpit.listMessages()).unread).toBe(0);
  });

  test("waitForMessage finds mail that arrives after it started polling", async () => {
    const waiting = mailpit.waitForMessage({ query: "subject:late" }, { timeout: 10_000, interval: 50 });
    const late = await deliver(
      { from: "a@example.com", to: "z@example.com", subject: "late arrival", text: "x" },
      ["z@example.com"],
    );
    expect((await waiting).ID).toBe(late);
  });

  test("chaos triggers: set through mailpit-api, felt by an SMTP client, then cleared", async () => {
    const set = await mailpit.setChaosTriggers({ Recipient: { ErrorCode: 451, Probability: 100 } });
    expect(set.Recipient).toEqual({ ErrorCode: 451, Probability: 100 });
    expect((await mailpit.getChaosTriggers()).Recipient.Probability).toBe(100);
    const refused = await runSwaks([
      "--server",
      `${LOOPBACK}:${serve.port}`,
      "--from",
      "a@a.test",
      "--to",
      "b@b.test",
    ]);
    expect(refused.transcript).toMatch(/<\*\* +451 4\.3\.0 Injected failure/);
    expect(refused.exitCode).not.toBe(0);
    await mailpit.setChaosTriggers({ Recipient: { ErrorCode: 451, Probability: 0 } });
    const accepted = await runSwaks([
      "--server",
      `${LOOPBACK}:${serve.port}`,
      "--from",
      "a@a.test",
      "--to",
      "b@b.test",
    ]);
    expect(accepted.exitCode).toBe(0);
  });

  test("sendMessage: serve builds the message, stores it, prints its line; Python's email package reads it", async () => {
    const attachment = new Uint8Array(256).map((_, i) => i);
    const { ID } = await mailpit.sendMessage({
      From: { Email: "app@example.com", Name: "Ứng dụng" },
      To: [{ Email: "ana@example.com", Name: "Ana" }],
      Bcc: ["audit@example.com"],
      Subject: "Đơn hàng 42 ✓",
      Text: "Cảm ơn!",
      HTML: "<p>Cảm ơn!</p>",
      Attachments: [{ Filename: "bytes.bin", Content: attachment.toBase64() }],
    });
    expect(serve.output()).toContain(
      `app@example.com -> ana@example.com, audit@example.com  "Đơn hàng 42 ✓"`,
    );
    const parsed = await parseWithPythonEmail(await serve.raw(ID));
    expect(parsed.defects).toEqual([]);
    expect(parsed.sevenBit).toBe(true);
    expect(parsed.structure).toBe(
      "multipart/mixed(multipart/alternative(text/plain,text/html),application/octet-stream)",
    );
    expect(headerValues(parsed, "Subject")).toEqual(["Đơn hàng 42 ✓"]);
    expect(headerValues(parsed, "From")).toEqual(["Ứng dụng <app@example.com>"]);
    expect(headerValues(parsed, "Bcc")).toEqual([]);
    expect(parsed.parts[0]?.text?.trimEnd()).toBe("Cảm ơn!");
    expect(parsed.parts[2]?.filename).toBe("bytes.bin");
    expect(partBytes(parsed.parts[2] ?? parsed.parts[0]!)).toEqual(attachment);
    expect((await mailpit.renderMessageHTML(ID)).trimEnd()).toBe("<p>Cảm ơn!</p>");
    expect(
      (await mailpit.searchMessages({ query: "bcc:audit@example.com" })).messages.map((m) => m.ID),
    ).toEqual([ID]);
  });

  test("tags: swaks sends X-Tags over SMTP; mailpit-api finds, renames and removes them", async () => {
    const delivered = await runSwaks([
      "--server",
      `${LOOPBACK}:${serve.port}`,
      "--from",
      "shop@example.com",
      "--to",
      "buyer@example.com",
      "--header",
      "Subject: Your order",
      "--add-header",
      "X-Tags: orders, Priority!",
    ]);
    expect(delivered.exitCode).toBe(0);
    const order = queuedIds(delivered.transcript)[0] ?? "";
    expect((await mailpit.searchMessages({ query: "tag:priority" })).messages.map((m) => m.ID)).toEqual([
      order,
    ]);
    expect((await mailpit.getMessageSummary(order)).Tags).toEqual(["orders", "Priority"]);
    await mailpit.renameTag("Priority", "urgent");
    expect(await mailpit.getTags()).toContain("urgent");
    await mailpit.deleteTag("orders");
    expect((await mailpit.getMessageSummary(order)).Tags).toEqual(["urgent"]);
  });

  test("MailHog's API: the mailhog client (npm) reads what swaks sent over SMTP", async () => {
    const delivered = await runSwaks([
      "--server",
      `${LOOPBACK}:${serve.port}`,
      "--helo",
      "swaks.test",
      "--from",
      "ops@example.com",
      "--to",
      "oncall@example.org",
      "--header",
      "Subject: Disk almost full",
      "--body",
      "Volume /data is at 91%.",
    ]);
    expect(delivered.exitCode).toBe(0);
    const id = queuedIds(delivered.transcript)[0] ?? "";
    const client = mailhog({ host: LOOPBACK, port: Number(new URL(serve.apiUrl ?? "").port) });
    const latest = await client.latestTo("oncall@example.org");
    if (!latest) throw new Error("the mailhog client found no message to oncall@example.org");
    expect(latest.ID).toBe(id);
    expect(latest.subject).toBe("Disk almost full");
    // swaks writes no Content-Type, so the client's .text (which looks for text/plain) has nothing;
    // the body is in Content, as MailHog gives it.
    const { Content, Raw } = latest as typeof latest & MailHogMessage;
    expect(Content.Body.trim()).toBe("Volume /data is at 91%.");
    expect(Raw).toMatchObject({ From: "ops@example.com", To: ["oncall@example.org"], Helo: "swaks.test" });
  });

  test("deleteMessagesBySearch, deleteMessages by ID, then all", async () => {
    const before = (await mailpit.listMessages()).total;
    await mailpit.deleteMessagesBySearch({ query: "subject:digest" });
    expect((await mailpit.searchMessages({ query: "subject:digest" })).messages_count).toBe(0);
    await mailpit.deleteMessages({ IDs: [welcome] });
    const left = await mailpit.listMessages();
    expect(left.total).toBe(before - 2);
    expect(left.messages.map((m) => m.ID)).not.toContain(welcome);
    await expect(mailpit.getMessageSummary(welcome)).rejects.toThrow(/404/);
    await mailpit.deleteMessages();
    expect((await mailpit.listMessages()).total).toBe(0);
    expect((await mailpit.getInfo()).Messages).toBe(0);
  });
});
