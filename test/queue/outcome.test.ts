import { describe, expect, test } from "bun:test";
import { SmtpClientError } from "../../src/client/errors.ts";
import type { DeliveryResult } from "../../src/client/smtp-client.ts";
import { parsePath } from "../../src/core/address.ts";
import { parseReply, type Reply } from "../../src/core/reply.ts";
import {
  leavesConnectionUsable,
  replyRecord,
  statusOf,
  verdictForError,
  verdictsForResult,
} from "../../src/queue/outcome.ts";

const reply = (text: string): Reply => parseReply(`${text}\r\n`);
const path = (address: string) => parsePath(`<${address}>`);

function result(partial: Partial<DeliveryResult>): DeliveryResult {
  return { ok: false, recipients: [], bdat: [], ms: 1, method: "data", warnings: [], ...partial };
}

describe("verdictsForResult", () => {
  test("every recipient accepted and the message taken: delivered with the final reply", () => {
    const r = result({
      ok: true,
      recipients: [
        { path: path("a@b.test"), reply: reply("250 2.1.5 ok"), accepted: true },
        { path: path("c@b.test"), reply: reply("250 2.1.5 ok"), accepted: true },
      ],
      final: reply("250 2.0.0 queued as X"),
    });
    expect(verdictsForResult(r, 2)).toEqual([
      { kind: "delivered", reply: { code: 250, enhanced: "2.0.0", text: "queued as X" } },
      { kind: "delivered", reply: { code: 250, enhanced: "2.0.0", text: "queued as X" } },
    ]);
  });

  test("one refused with 5xx, one with 4xx, one taken", () => {
    const r = result({
      ok: true,
      recipients: [
        { path: path("gone@b.test"), reply: reply("550 5.1.1 no such user"), accepted: false },
        { path: path("full@b.test"), reply: reply("452 4.2.2 mailbox full"), accepted: false },
        { path: path("ok@b.test"), reply: reply("250 ok"), accepted: true },
      ],
      final: reply("250 ok"),
    });
    expect(verdictsForResult(r, 3).map((v) => [v.kind, v.kind === "delivered" ? "" : v.status])).toEqual([
      ["permanent", "5.1.1"],
      ["temporary", "4.2.2"],
      ["delivered", ""],
    ]);
  });

  test("a refused MAIL decides for everyone, whatever the pipelined RCPTs got", () => {
    const r = result({
      recipients: [{ path: path("a@b.test"), reply: reply("503 5.5.1 bad sequence"), accepted: false }],
      mail: reply("451 4.3.0 try later"),
      failedStage: "mail",
      failedReply: reply("451 4.3.0 try later"),
    });
    expect(verdictsForResult(r, 1)).toEqual([
      { kind: "temporary", status: "4.3.0", reply: { code: 451, enhanced: "4.3.0", text: "try later" } },
    ]);
  });

  test("a 5xx after the data fails the accepted recipients; refused ones keep their own reply", () => {
    const r = result({
      recipients: [
        { path: path("a@b.test"), reply: reply("250 ok"), accepted: true },
        { path: path("c@b.test"), reply: reply("450 busy"), accepted: false },
      ],
      final: reply("554 5.6.0 content rejected"),
      failedStage: "message",
      failedReply: reply("554 5.6.0 content rejected"),
    });
    expect(verdictsForResult(r, 2).map((v) => [v.kind, v.kind === "delivered" ? "" : v.status])).toEqual([
      ["permanent", "5.6.0"],
      ["temporary", "4.0.0"],
    ]);
  });

  test("DATA refused with 4xx: temporary, class-only status when there is no enhanced code", () => {
    const r = result({
      recipients: [{ path: path("a@b.test"), reply: reply("250 ok"), accepted: true }],
      data: reply("451 local error"),
      failedStage: "data",
      failedReply: reply("451 local error"),
    });
    expect(verdictsForResult(r, 1)[0]).toMatchObject({ kind: "temporary", status: "4.0.0" });
  });

  test("no final reply at all: temporary", () => {
    expect(verdictsForResult(result({ recipients: [] }), 1)[0]).toMatchObject({ kind: "temporary" });
  });

  test("a failed stage with a positive reply is still no delivery", () => {
    const r = result({ failedStage: "rset", failedReply: reply("250 odd") });
    expect(verdictsForResult(r, 1)[0]).toMatchObject({ kind: "temporary" });
  });
});

describe("verdictForError", () => {
  const cases: [string, SmtpClientError, string, string][] = [
    [
      "connection refused",
      new SmtpClientError("network", "connect", "refused", { netKind: "refused" }),
      "temporary",
      "4.4.1",
    ],
    ["timeout", new SmtpClientError("timeout", "mail", "slow", { netKind: "timeout" }), "temporary", "4.4.1"],
    ["reset", new SmtpClientError("closed", "rcpt", "gone", { netKind: "reset" }), "temporary", "4.4.2"],
    [
      "no such domain",
      new SmtpClientError("network", "connect", "nx", { netKind: "dns", temporary: false }),
      "permanent",
      "5.1.2",
    ],
    [
      "null MX",
      new SmtpClientError("network", "connect", "b.test accepts no mail (null MX, RFC 7505)", {
        netKind: "dns",
        temporary: false,
      }),
      "permanent",
      "5.1.10",
    ],
    [
      "DNS timeout",
      new SmtpClientError("network", "connect", "servfail", { netKind: "dns", temporary: true }),
      "temporary",
      "4.4.3",
    ],
    [
      "5xx greeting",
      new SmtpClientError("reply", "greeting", "no", { reply: reply("554 5.7.1 go away") }),
      "temporary",
      "4.7.1",
    ],
    [
      "certificate",
      new SmtpClientError("network", "tls", "bad cert", { netKind: "tls-verify", temporary: false }),
      "temporary",
      "4.7.5",
    ],
    ["AUTH refused", new SmtpClientError("auth-failed", "auth", "535", {}), "temporary", "4.7.8"],
    [
      "STARTTLS missing",
      new SmtpClientError("tls-unavailable", "starttls", "none", {}),
      "temporary",
      "4.7.5",
    ],
    ["too big", new SmtpClientError("size-exceeded", "mail", "big", {}), "permanent", "5.3.4"],
    ["8-bit", new SmtpClientError("8bitmime-unsupported", "mail", "8bit", {}), "permanent", "5.6.3"],
    ["UTF-8", new SmtpClientError("smtputf8-unsupported", "mail", "utf8", {}), "permanent", "5.6.7"],
    ["protocol", new SmtpClientError("protocol", "mail", "garbage", {}), "temporary", "4.5.0"],
  ];
  test.each(cases)("%s", (_name, error, kind, status) => {
    const verdict = verdictForError(error);
    expect(verdict.kind).toBe(kind as "temporary");
    expect(verdict.kind === "delivered" ? "" : verdict.status).toBe(status);
  });

  test("only refusals made before sending leave the connection usable", () => {
    expect(leavesConnectionUsable(new SmtpClientError("size-exceeded", "mail", "x"))).toBe(true);
    expect(leavesConnectionUsable(new SmtpClientError("smtputf8-unsupported", "mail", "x"))).toBe(true);
    expect(leavesConnectionUsable(new SmtpClientError("timeout", "message", "x"))).toBe(false);
    expect(leavesConnectionUsable(new SmtpClientError("closed", "rcpt", "x"))).toBe(false);
  });
});

describe("reply records", () => {
  test("multi-line text joined by newlines; status from the enhanced code or the class", () => {
    const r = reply("250-first\r\n250 2.0.0 second");
    expect(replyRecord(r)).toEqual({ code: 250, enhanced: "2.0.0", text: "first\nsecond" });
    expect(statusOf(reply("452 no enhanced"))).toBe("4.0.0");
    expect(statusOf({ code: 550, enhanced: "5.7.1", text: "" })).toBe("5.7.1");
  });
});
