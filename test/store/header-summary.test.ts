import { describe, expect, test } from "bun:test";
import { decodeText, parseAddresses, summarizeHeaders } from "../../src/store/header-summary.ts";
import type { StoredEnvelope } from "../../src/store/types.ts";

const envelope = (rcptTo: string[]): StoredEnvelope => ({
  mailFrom: "sender@example.com",
  rcptTo,
  mailParams: {},
  rcptParams: rcptTo.map(() => ({})),
  clientAddress: "127.0.0.1",
});
const raw = (text: string) => new TextEncoder().encode(text);

describe("summarizeHeaders", () => {
  test("reads the listing fields from the header section", () => {
    const summary = summarizeHeaders(
      raw(
        [
          "Received: from client by us",
          'From: "Doe, Jane" <jane@example.com>',
          "To: bob@example.com, =?UTF-8?Q?J=C3=BCrgen?= <j@example.de>",
          "Cc: team: a@example.com, b@example.com;",
          "Reply-To: replies@example.com",
          "Subject: =?UTF-8?B?SMOpbGxv?= world",
          "Message-ID: <abc@example.com>",
          "Date: Tue, 1 Jul 2003 10:52:37 +0200",
          "X-Tags: signup, Welcome mail!, signup,  ,beta  users",
          "",
          "From: not a header, this is the body",
        ].join("\r\n"),
      ),
      envelope(["bob@example.com"]),
    );
    expect(summary).toEqual({
      messageId: "abc@example.com",
      subject: "Héllo world",
      from: { name: "Doe, Jane", address: "jane@example.com" },
      to: [
        { name: "", address: "bob@example.com" },
        { name: "Jürgen", address: "j@example.de" },
      ],
      cc: [
        { name: "", address: "a@example.com" },
        { name: "", address: "b@example.com" },
      ],
      bcc: [],
      replyTo: [{ name: "", address: "replies@example.com" }],
      date: Date.UTC(2003, 6, 1, 8, 52, 37),
      // Cleaned as Mailpit cleans tags: "!" dropped, spaces collapsed, repeats and empty names gone.
      tags: ["signup", "Welcome mail", "beta users"],
    });
  });

  test("envelope recipients missing from To and Cc are blind copies", () => {
    const summary = summarizeHeaders(
      raw("To: Bob <BOB@example.com>\r\nBcc: listed@example.com\r\n\r\nbody"),
      envelope(["bob@example.com", "hidden@example.com", "listed@example.com", "HIDDEN@example.com"]),
    );
    expect(summary.bcc).toEqual([
      { name: "", address: "listed@example.com" },
      { name: "", address: "hidden@example.com" },
    ]);
  });

  test("a message without headers gets empty fields, never an error", () => {
    expect(summarizeHeaders(raw("\r\njust a body"), envelope([]))).toEqual({
      messageId: "",
      subject: "",
      from: null,
      to: [],
      cc: [],
      bcc: [],
      replyTo: [],
      date: null,
      tags: [],
    });
  });

  test("an unparsable From is kept as its text; an unreadable Date is null", () => {
    const summary = summarizeHeaders(raw("From: Nobody Here\r\nDate: someday\r\n\r\n"), envelope([]));
    expect(summary.from).toEqual({ name: "Nobody Here", address: "" });
    expect(summary.date).toBeNull();
  });
});

describe("parseAddresses and decodeText", () => {
  test("flatten groups and drop empty ones", () => {
    expect(parseAddresses("undisclosed-recipients:;")).toEqual([]);
    expect(parseAddresses("g: a@x.org;, b@y.org")).toEqual([
      { name: "", address: "a@x.org" },
      { name: "", address: "b@y.org" },
    ]);
  });

  test("decode RFC 2047 words and leave plain text alone", () => {
    expect(decodeText("=?ISO-8859-1?Q?Caf=E9?=")).toBe("Café");
    expect(decodeText("plain =?bogus")).toBe("plain =?bogus");
  });
});
