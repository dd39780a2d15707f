import { describe, expect, test } from "bun:test";
import { type ClientErrorKind, type ClientErrorStage, SmtpClientError } from "../../src/client/errors.ts";
import type { DomainDelivery } from "../../src/client/mx-delivery.ts";
import type { DeliveryResult } from "../../src/client/smtp-client.ts";
import { deliveryJson } from "../../src/commands/delivery-json.ts";
import {
  combineExitCodes,
  describeFailure,
  exitCodeForDeliveries,
  exitCodeForDelivery,
  exitCodeForError,
} from "../../src/commands/delivery-outcome.ts";
import { ExitCode } from "../../src/commands/exit-codes.ts";
import type { Path } from "../../src/core/address.ts";
import type { Recipient } from "../../src/core/envelope.ts";
import { emptyRcptParams } from "../../src/core/esmtp-params.ts";
import type { Reply } from "../../src/core/reply.ts";
import type { NetErrorKind } from "../../src/net/net-error.ts";

const reply = (code: number, enhanced?: string, text = "text"): Reply => ({
  code,
  lines: [text],
  ...(enhanced === undefined ? {} : { enhanced }),
});
const OK = reply(250, "2.0.0");
const path = (address: string): Path => {
  const [local = "", domain = ""] = address.split("@");
  return { mailbox: { local, domain } } as Path;
};
const recipient = (address: string): Recipient => ({ path: path(address), params: emptyRcptParams() });

/** A transaction result: each recipient's reply code, then what happened at DATA and the dot. */
function result(rcptCodes: number[], extra: Partial<DeliveryResult> = {}): DeliveryResult {
  const recipients = rcptCodes.map((code, i) => ({
    path: path(`r${i}@d.test`),
    reply: reply(code, `${Math.floor(code / 100)}.1.1`),
    accepted: code < 300,
  }));
  const anyAccepted = recipients.some((r) => r.accepted);
  const firstRefused = recipients.find((r) => !r.accepted);
  return {
    ok: anyAccepted,
    mail: OK,
    recipients,
    bdat: [],
    ...(anyAccepted
      ? { data: reply(354), final: OK }
      : { failedStage: "rcpt" as const, failedReply: firstRefused?.reply }),
    ms: 1,
    method: "data",
    warnings: [],
    ...extra,
  };
}

function delivery(res: DeliveryResult | undefined, error?: SmtpClientError, domain = ""): DomainDelivery {
  const count = res?.recipients.length ?? 1;
  return {
    domain,
    recipients: Array.from({ length: count }, (_, i) => recipient(`r${i}@d.test`)),
    attempts: [],
    ...(res === undefined ? {} : { result: res }),
    ...(error === undefined ? {} : { error }),
  };
}

function clientError(
  kind: ClientErrorKind,
  stage: ClientErrorStage,
  details: { reply?: Reply; netKind?: NetErrorKind } = {},
): SmtpClientError {
  return new SmtpClientError(kind, stage, `${kind} at ${stage}`, details);
}

describe("exitCodeForDelivery: DESIGN.md's table", () => {
  const cases: [string, DomainDelivery, ExitCode][] = [
    ["every recipient accepted, message taken", delivery(result([250, 250])), ExitCode.ok],
    ["every recipient refused with 5xx", delivery(result([550, 553])), ExitCode.allRecipientsRejected],
    ["every recipient refused, one of them with 4xx", delivery(result([550, 450])), ExitCode.tempFail],
    ["some refused (5xx), no --allow-partial", delivery(result([250, 550])), ExitCode.allRecipientsRejected],
    ["some refused (4xx), no --allow-partial", delivery(result([250, 451])), ExitCode.tempFail],
    [
      "5xx at MAIL",
      delivery(result([], { ok: false, mail: reply(553), failedStage: "mail", failedReply: reply(553) })),
      ExitCode.unavailable,
    ],
    [
      "5xx at MAIL, recipients never tried",
      delivery({
        ...result([250, 250]),
        ok: false,
        mail: reply(500, "5.3.0"),
        recipients: [
          { path: path("r0@d.test"), accepted: false },
          { path: path("r1@d.test"), accepted: false },
        ],
        data: undefined,
        final: undefined,
        failedStage: "mail",
        failedReply: reply(500, "5.3.0"),
      }),
      ExitCode.unavailable,
    ],
    [
      "4xx at MAIL",
      delivery(result([], { ok: false, mail: reply(451), failedStage: "mail", failedReply: reply(451) })),
      ExitCode.tempFail,
    ],
    [
      "5xx at DATA",
      delivery(result([250], { ok: false, data: reply(554), failedStage: "data", failedReply: reply(554) })),
      ExitCode.unavailable,
    ],
    [
      "5xx after the final dot",
      delivery(
        result([250], { ok: false, final: reply(552), failedStage: "message", failedReply: reply(552) }),
      ),
      ExitCode.unavailable,
    ],
    [
      "4xx after the final dot",
      delivery(
        result([250], { ok: false, final: reply(452), failedStage: "message", failedReply: reply(452) }),
      ),
      ExitCode.tempFail,
    ],
    [
      "connection refused",
      delivery(undefined, clientError("network", "connect", { netKind: "refused" })),
      75,
    ],
    ["timeout", delivery(undefined, clientError("timeout", "greeting", { netKind: "timeout" })), 75],
    ["closed while waiting", delivery(undefined, clientError("closed", "ehlo")), 75],
    ["DNS: no mail host", delivery(undefined, clientError("network", "connect", { netKind: "dns" })), 68],
    [
      "certificate did not verify",
      delivery(undefined, clientError("network", "tls", { netKind: "tls-verify" })),
      77,
    ],
    [
      "TLS handshake failed",
      delivery(undefined, clientError("network", "tls", { netKind: "tls-handshake" })),
      76,
    ],
    ["malformed reply", delivery(undefined, clientError("protocol", "ehlo")), 76],
    ["STARTTLS required, not offered", delivery(undefined, clientError("tls-unavailable", "starttls")), 76],
    ["5xx greeting", delivery(undefined, clientError("reply", "greeting", { reply: reply(554) })), 69],
    ["4xx greeting", delivery(undefined, clientError("reply", "greeting", { reply: reply(421) })), 75],
    ["AUTH refused 535", delivery(undefined, clientError("auth-failed", "auth", { reply: reply(535) })), 77],
    ["AUTH not offered", delivery(undefined, clientError("auth-unsupported", "auth")), 77],
    ["password over plaintext refused", delivery(undefined, clientError("auth-plaintext", "auth")), 77],
    ["message over SIZE", delivery(undefined, clientError("size-exceeded", "mail")), 69],
    [
      "non-ASCII address without SMTPUTF8",
      delivery(undefined, clientError("smtputf8-unsupported", "mail")),
      65,
    ],
    ["8-bit without 8BITMIME", delivery(undefined, clientError("8bitmime-unsupported", "mail")), 65],
    ["reading the message failed", delivery(undefined, clientError("aborted", "message")), 66],
    ["no result and no error", delivery(undefined), 75],
  ];
  for (const [name, d, code] of cases) {
    test(`${name} → ${code}`, () => {
      expect(exitCodeForDelivery(d, false)).toBe(code);
    });
  }

  test("--allow-partial turns a partial refusal into 0, but never a total one", () => {
    expect(exitCodeForDelivery(delivery(result([250, 550])), true)).toBe(ExitCode.ok);
    expect(exitCodeForDelivery(delivery(result([250, 451])), true)).toBe(ExitCode.ok);
    expect(exitCodeForDelivery(delivery(result([550, 550])), true)).toBe(ExitCode.allRecipientsRejected);
  });

  test("exitCodeForError: a 4xx reply is temporary whatever the kind", () => {
    expect(exitCodeForError(clientError("auth-failed", "auth", { reply: reply(454) }))).toBe(75);
    expect(exitCodeForError(clientError("reply", "ehlo", { reply: reply(550) }))).toBe(69);
  });
});

describe("several domains (MX delivery)", () => {
  const delivered = delivery(result([250]), undefined, "a.test");
  const refused = delivery(result([550]), undefined, "b.test");
  const deferred = delivery(undefined, clientError("network", "connect", { netKind: "refused" }), "c.test");
  const noHost = delivery(undefined, clientError("network", "connect", { netKind: "dns" }), "d.test");

  test("combineExitCodes: success only when all succeed; a permanent failure beats a temporary one", () => {
    expect(combineExitCodes([0, 0])).toBe(0);
    expect(combineExitCodes([0, 75])).toBe(75);
    expect(combineExitCodes([75, 67])).toBe(67);
    expect(combineExitCodes([0, 75, 68, 69])).toBe(68);
    expect(combineExitCodes([])).toBe(0);
  });

  test("one domain refused, another delivered: 67, or 0 with --allow-partial", () => {
    expect(exitCodeForDeliveries([delivered, refused], false)).toBe(67);
    expect(exitCodeForDeliveries([delivered, refused], true)).toBe(0);
  });

  test("--allow-partial does not hide a domain that could not be reached", () => {
    expect(exitCodeForDeliveries([delivered, deferred], true)).toBe(75);
    expect(exitCodeForDeliveries([delivered, refused, noHost], true)).toBe(68);
  });

  test("--allow-partial with nothing delivered anywhere keeps the failure", () => {
    expect(exitCodeForDeliveries([refused, refused], true)).toBe(67);
  });
});

describe("what a person and a program read", () => {
  test("describeFailure names the refused recipients with their replies", () => {
    const text = describeFailure(delivery(result([250, 550])));
    expect(text).toContain("1 of 2 recipients refused");
    expect(text).toContain("<r1@d.test> (550 5.1.1 text)");
    expect(describeFailure(delivery(result([250])))).toBeUndefined();
  });

  test("describeFailure names the stage of a refused message", () => {
    const d = delivery(
      result([250], {
        ok: false,
        data: reply(554, "5.3.0", "no"),
        failedStage: "data",
        failedReply: reply(554),
      }),
    );
    expect(describeFailure(d)).toContain("server refused the message at data: 554");
  });

  test("describeFailure adds a hint for a certificate that did not verify", () => {
    const d = delivery(undefined, clientError("network", "tls", { netKind: "tls-verify" }));
    expect(describeFailure(d)).toContain("--insecure");
  });

  test("deliveryJson: per-recipient outcome with its reply, each stage's reply, the error", () => {
    const json = deliveryJson(delivery(result([250, 550])));
    expect(json.recipients).toEqual([
      { address: "r0@d.test", accepted: true, reply: { code: 250, enhanced: "2.1.1", text: "text" } },
      { address: "r1@d.test", accepted: false, reply: { code: 550, enhanced: "5.1.1", text: "text" } },
    ]);
    expect(json.mail).toEqual({ code: 250, enhanced: "2.0.0", text: "text" });
    expect(json.data?.code).toBe(354);
    expect(json.final?.code).toBe(250);
    expect(json.error).toBeNull();
    const failed = deliveryJson(
      delivery(undefined, clientError("network", "connect", { netKind: "refused" })),
    );
    expect(failed.error).toEqual({ kind: "network", message: "network at connect", reply: null });
    expect(failed.failedStage).toBe("connect");
    expect(failed.server).toBeNull();
  });
});
