import { describe, expect, test } from "bun:test";
import { simpleParser } from "mailparser";
import { parsePath } from "../../src/core/address.ts";
import { emptyMailParams, emptyRcptParams, type MailParams } from "../../src/core/esmtp-params.ts";
import { buildDsn, type DsnInput, returnedContent, wantsNotice } from "../../src/queue/dsn.ts";

const encoder = new TextEncoder();
const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("latin1");
const ORIGINAL =
  "From: Alice <alice@a.test>\r\nSubject: hello\r\nMessage-ID: <m1@a.test>\r\n\r\nBody line\r\n";

function input(overrides: Partial<DsnInput> = {}, mailParams: Partial<MailParams> = {}): DsnInput {
  return {
    reportingMta: "mx.me.test",
    queueId: "0ABCDEFGHJKMNPQR",
    arrival: Date.UTC(2025, 0, 2, 3, 4, 5),
    now: Date.UTC(2025, 0, 2, 4, 0, 0),
    original: {
      from: parsePath("<alice@a.test>"),
      mailParams: { ...emptyMailParams(), ...mailParams },
      raw: encoder.encode(ORIGINAL),
    },
    recipients: [
      {
        path: parsePath("<bob@b.test>"),
        params: emptyRcptParams(),
        action: "failed",
        status: "5.1.1",
        reply: { code: 550, enhanced: "5.1.1", text: "no such user\nreally" },
        remoteMta: "mx.b.test",
        lastAttempt: Date.UTC(2025, 0, 2, 4, 0, 0),
      },
    ],
    ...overrides,
  };
}

/** The message/delivery-status part's text, between its blank line and the next boundary. */
function statusPart(text: string): string {
  const start = text.indexOf("Content-Type: message/delivery-status");
  const body = text.indexOf("\r\n\r\n", start) + 4;
  return text.slice(body, text.indexOf("\r\n--=_smtpkit_", body));
}

describe("buildDsn", () => {
  test("from <> to the sender, one multipart/report with the three RFC 3464 parts", async () => {
    const dsn = buildDsn(input());
    expect(dsn.envelope.from).toEqual({ mailbox: null });
    expect(dsn.envelope.recipients.map((r) => r.path)).toEqual([parsePath("<alice@a.test>")]);
    const parsed = await simpleParser(Buffer.from(dsn.message));
    expect(parsed.headers.get("content-type")).toMatchObject({
      value: "multipart/report",
      params: { "report-type": "delivery-status" },
    });
    expect(parsed.subject).toBe("Undelivered Mail Returned to Sender");
    expect(parsed.headers.get("auto-submitted")).toBe("auto-replied");
    expect(parsed.text).toContain("<bob@b.test> (mx.b.test said): 550 5.1.1 no such user really");
    // mailparser reads message/delivery-status as text and appends it to the text body.
    expect(parsed.text).toContain("Final-Recipient: rfc822; bob@b.test");
    const types = parsed.attachments.map((a) => a.contentType);
    expect(types).toEqual(["message/rfc822"]);
    expect(latin1(parsed.attachments[0]?.content ?? new Uint8Array())).toBe(ORIGINAL);
  });

  test("the delivery-status fields: per message, then per recipient", () => {
    const text = latin1(buildDsn(input({}, { envid: "env-42" })).message);
    expect(statusPart(text)).toBe(
      [
        "Reporting-MTA: dns; mx.me.test",
        "X-Smtpkit-Queue-ID: 0ABCDEFGHJKMNPQR",
        "Original-Envelope-Id: env-42",
        "Arrival-Date: Thu, 02 Jan 2025 03:04:05 +0000",
        "",
        "Final-Recipient: rfc822; bob@b.test",
        "Action: failed",
        "Status: 5.1.1",
        "Remote-MTA: dns; mx.b.test",
        "Diagnostic-Code: smtp; 550 5.1.1 no such user really",
        "Last-Attempt-Date: Thu, 02 Jan 2025 04:00:00 +0000",
        "",
      ].join("\r\n"),
    );
  });

  test("ORCPT becomes Original-Recipient; a UTF-8 address is written as utf-8-addr-xtext", () => {
    const text = latin1(
      buildDsn(
        input({
          recipients: [
            {
              path: parsePath("<jörg@b.test>", { utf8: true }),
              params: { other: [], orcpt: { type: "rfc822", address: "old@b.test" } },
              action: "failed",
              status: "5.0.0",
              error: "connection refused",
            },
          ],
        }),
      ).message,
    );
    expect(statusPart(text)).toContain("Original-Recipient: rfc822; old@b.test\r\n");
    expect(statusPart(text)).toContain("Final-Recipient: utf-8; j\\x{F6}rg@b.test\r\n");
    expect(statusPart(text)).toContain("Diagnostic-Code: X-smtpkit; connection refused\r\n");
  });

  test("RET=HDRS returns only the header section, as text/rfc822-headers", async () => {
    const dsn = buildDsn(input({}, { ret: "HDRS" }));
    const parsed = await simpleParser(Buffer.from(dsn.message));
    const returned = parsed.attachments.find((a) => a.contentType === "text/rfc822-headers");
    expect(latin1(returned?.content ?? new Uint8Array())).toBe(
      "From: Alice <alice@a.test>\r\nSubject: hello\r\nMessage-ID: <m1@a.test>\r\n",
    );
    expect(latin1(dsn.message)).not.toContain("Body line");
  });

  test("a delay notice: Action delayed, Will-Retry-Until, its own subject", () => {
    const until = Date.UTC(2025, 0, 7, 3, 4, 5);
    const text = latin1(
      buildDsn(
        input({
          recipients: [
            {
              path: parsePath("<bob@b.test>"),
              params: emptyRcptParams(),
              action: "delayed",
              status: "4.2.2",
              reply: { code: 452, enhanced: "4.2.2", text: "mailbox full" },
              willRetryUntil: until,
            },
          ],
        }),
      ).message,
    );
    expect(text).toContain("Subject: Delayed Mail (still being retried)\r\n");
    expect(statusPart(text)).toContain("Action: delayed\r\nStatus: 4.2.2\r\n");
    expect(statusPart(text)).toContain("Will-Retry-Until: Tue, 07 Jan 2025 03:04:05 +0000\r\n");
  });

  test("an 8-bit original is declared 8bit; everything else is 7-bit with CRLF line ends", () => {
    const raw = encoder.encode("Subject: caf\u00e9\r\n\r\nna\u00efve\r\n");
    const dsn = buildDsn(
      input({ original: { from: parsePath("<a@a.test>"), mailParams: emptyMailParams(), raw } }),
    );
    const text = latin1(dsn.message);
    expect(text).toContain("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n");
    const withoutOriginal = text.replace(latin1(raw), "");
    expect(withoutOriginal).toMatch(/^[\x00-\x7f]*$/);
    expect(text.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
    for (const line of text.split("\r\n")) expect(line.length).toBeLessThanOrEqual(998);
  });

  test("a long diagnostic is folded, control characters and non-ASCII replaced", () => {
    const long = `${"word ".repeat(60)}caf\u00e9\u0007end`;
    const text = latin1(
      buildDsn(
        input({
          recipients: [
            {
              path: parsePath("<bob@b.test>"),
              params: emptyRcptParams(),
              action: "failed",
              status: "5.0.0",
              reply: { code: 550, text: long },
            },
          ],
        }),
      ).message,
    );
    const field = /Diagnostic-Code: [\s\S]*?\r\n(?! )/.exec(statusPart(text))?.[0] ?? "";
    expect(field.split("\r\n").length).toBeGreaterThan(2);
    expect(field.replace(/\r\n /g, " ")).toContain("caf??end");
  });

  test("never about a message from <>, never without recipients", () => {
    expect(() =>
      buildDsn(
        input({
          original: { from: { mailbox: null }, mailParams: emptyMailParams(), raw: new Uint8Array() },
        }),
      ),
    ).toThrow("<>");
    expect(() => buildDsn(input({ recipients: [] }))).toThrow("at least one recipient");
  });
});

describe("RET and NOTIFY", () => {
  test("returned content: HDRS, FULL up to its limit, default up to Postfix's bounce_size_limit", () => {
    const base = emptyMailParams();
    expect(returnedContent({ ...base, ret: "HDRS" }, 10)).toBe("headers");
    expect(returnedContent({ ...base, ret: "FULL" }, 5_000_000)).toBe("full");
    expect(returnedContent({ ...base, ret: "FULL" }, 20_000_000)).toBe("headers");
    expect(returnedContent(base, 50_000)).toBe("full");
    expect(returnedContent(base, 50_001)).toBe("headers");
  });

  test("RFC 3461 §4.1: no NOTIFY means failures and delays, never success", () => {
    const none = emptyRcptParams();
    expect([wantsNotice(none, "failure"), wantsNotice(none, "delay"), wantsNotice(none, "success")]).toEqual([
      true,
      true,
      false,
    ]);
    const never = { ...none, notify: ["NEVER" as const] };
    expect([wantsNotice(never, "failure"), wantsNotice(never, "delay")]).toEqual([false, false]);
    const success = { ...none, notify: ["SUCCESS" as const] };
    expect([wantsNotice(success, "failure"), wantsNotice(success, "success")]).toEqual([false, true]);
  });
});
