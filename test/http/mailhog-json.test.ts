import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { toMailHogMessage } from "../../src/http/mailhog-json.ts";
import type { MessageSummary } from "../../src/store/types.ts";

function summary(): MessageSummary {
  return {
    id: "abc123",
    messageId: "m@example.com",
    read: false,
    from: null,
    to: [],
    cc: [],
    bcc: [],
    replyTo: [],
    subject: "",
    created: Date.UTC(2026, 11, 7, 12, 30, 15, 250),
    date: null,
    size: 0,
    attachments: 0,
    inline: 0,
    snippet: "",
    envelope: {
      mailFrom: "app@example.com",
      rcptTo: ["ann@example.com", '"odd@local"@example.org'],
      mailParams: {},
      rcptParams: [{}, {}],
      clientAddress: "127.0.0.1",
      heloName: "app.local",
    },
    tags: [],
  };
}

const bytes = (text: string) => new TextEncoder().encode(text);

const NESTED = [
  "From: App <app@example.com>",
  "Subject: =?UTF-8?B?Tmjhuq10IGvDvQ==?=",
  "Received: from a",
  "Received: from b",
  "X-Long: one",
  "\ttwo",
  'Content-Type: multipart/mixed; boundary="outer"',
  "",
  "preamble",
  "--outer",
  'Content-Type: multipart/alternative; boundary="inner"',
  "",
  "--inner",
  "Content-Type: text/plain; charset=utf-8",
  "",
  "Chào bạn",
  "--inner",
  "Content-Type: text/html; charset=utf-8",
  "",
  "<p>Chào</p>",
  "--inner--",
  "",
  "--outer",
  'Content-Type: application/octet-stream; name="a.bin"',
  "Content-Transfer-Encoding: base64",
  'Content-Disposition: attachment; filename="a.bin"',
  "",
  "AAEC",
  "--outer--",
  "",
].join("\r\n");

describe("toMailHogMessage", () => {
  test("envelope paths split at the last @, Created in RFC 3339, Raw as received", () => {
    const message = toMailHogMessage(summary(), bytes("Subject: x\r\n\r\nbody\r\n"));
    expect(message.ID).toBe("abc123");
    expect(message.From).toEqual({ Relays: [], Mailbox: "app", Domain: "example.com", Params: "" });
    expect(message.To[1]).toEqual({ Relays: [], Mailbox: '"odd@local"', Domain: "example.org", Params: "" });
    expect(message.Created).toBe("2026-12-07T12:30:15.25Z");
    expect(message.Raw).toEqual({
      From: "app@example.com",
      To: ["ann@example.com", '"odd@local"@example.org'],
      Data: "Subject: x\r\n\r\nbody\r\n",
      Helo: "app.local",
    });
    expect(message.Content).toEqual({
      Headers: { Subject: ["x"] },
      Body: "body\r\n",
      Size: 20,
      MIME: null,
    });
    expect(message.MIME).toBeNull();
  });

  test("fields stay undecoded and as named; folded lines join; repeated fields keep every value", () => {
    const { Content } = toMailHogMessage(summary(), bytes(NESTED));
    expect(Content.Headers.Subject).toEqual(["=?UTF-8?B?Tmjhuq10IGvDvQ==?="]);
    expect(Content.Headers.Received).toEqual(["from a", "from b"]);
    expect(Content.Headers["X-Long"]).toEqual(["one\ttwo"]);
    expect(Content.Size).toBe(bytes(NESTED).length);
    // The whole message's parts are on the message, as MailHog puts them.
    expect(Content.MIME).toBeNull();
  });

  test("multiparts split at their boundaries, nested ones too, parts trimmed of CR and LF", () => {
    const { MIME } = toMailHogMessage(summary(), bytes(NESTED));
    const [alternative, attachment] = MIME?.Parts ?? [];
    expect(MIME?.Parts).toHaveLength(2);
    expect(alternative?.Headers["Content-Type"]).toEqual(['multipart/alternative; boundary="inner"']);
    const [text, html] = alternative?.MIME?.Parts ?? [];
    expect(text).toEqual({
      Headers: { "Content-Type": ["text/plain; charset=utf-8"] },
      Body: "Chào bạn",
      Size: bytes("Content-Type: text/plain; charset=utf-8\r\n\r\nChào bạn").length,
      MIME: null,
    });
    expect(html?.Body).toBe("<p>Chào</p>");
    expect(attachment?.Headers["Content-Disposition"]).toEqual(['attachment; filename="a.bin"']);
    expect(attachment?.Body).toBe("AAEC");
  });

  test("octets that are not UTF-8 do not move a boundary", () => {
    const raw = new Uint8Array([
      ...bytes("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"),
      0xff,
      0xfe,
      ...bytes("\r\n--b\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--b--\r\n"),
    ]);
    const parts = toMailHogMessage(summary(), raw).MIME?.Parts ?? [];
    expect(parts.map((part) => part.Body)).toEqual(["\uFFFD\uFFFD", "second"]);
    expect(parts[0]?.Size).toBe("Content-Type: text/plain\r\n\r\n".length + 2);
  });

  test("any octets: never throws; Content.Size is the message's length and Raw.Data its text", () => {
    // Messages built from pieces that matter to the splitter: CRLFs, folds, boundaries.
    const piece = fc.constantFrom(
      "\r\n",
      "\r\n\r\n",
      "Content-Type: multipart/mixed; boundary=b\r\n",
      "--b\r\n",
      "--b--",
      " folded",
      "X: y",
      "é",
    );
    const octets = fc.oneof(
      fc.array(piece, { maxLength: 30 }).map((parts) => bytes(parts.join(""))),
      fc.uint8Array({ maxLength: 300 }),
    );
    fc.assert(
      fc.property(octets, (raw) => {
        const message = toMailHogMessage(summary(), raw);
        expect(message.Content.Size).toBe(raw.length);
        expect(message.Raw.Data).toBe(new TextDecoder().decode(raw));
        for (const part of message.MIME?.Parts ?? []) expect(part.Size).toBeLessThanOrEqual(raw.length);
      }),
    );
  });
});
