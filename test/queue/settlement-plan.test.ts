import { describe, expect, test } from "bun:test";
import { parsePath } from "../../src/core/address.ts";
import { emptyMailParams, emptyRcptParams, type NotifyType } from "../../src/core/esmtp-params.ts";
import type { Verdict } from "../../src/queue/outcome.ts";
import { EXPIRED_STATUS, planSettlement, type RetryPolicy } from "../../src/queue/settlement-plan.ts";
import type { LeasedMessage } from "../../src/queue/types.ts";

const HOUR = 3_600_000;
const ARRIVAL = 1_700_000_000_000;
const policy: RetryPolicy = {
  backoffMinMs: 300_000,
  backoffMaxMs: 4_000_000,
  maxAgeMs: 5 * 24 * HOUR,
  reportingMta: "mx.me.test",
};

function leased(
  options: { from?: string; notify?: NotifyType[]; attempts?: number[]; delayWarned?: boolean } = {},
) {
  const count = options.attempts?.length ?? 2;
  const message: LeasedMessage = {
    id: "0ABCDEFGHJKMNPQR",
    arrival: ARRIVAL,
    expiryBase: ARRIVAL,
    kind: "mail",
    route: { kind: "smarthost", host: "relay.test", port: 25 },
    raw: new TextEncoder().encode("Subject: s\r\n\r\nb\r\n"),
    envelope: {
      from: parsePath(options.from ?? "<alice@a.test>"),
      mailParams: emptyMailParams(),
      recipients: Array.from({ length: count }, (_, i) => ({
        path: parsePath(`<r${i}@b.test>`),
        params:
          options.notify === undefined ? emptyRcptParams() : { ...emptyRcptParams(), notify: options.notify },
      })),
    },
    recipientIndexes: Array.from({ length: count }, (_, i) => i + 10),
    attempts: options.attempts ?? [0, 0],
    delayWarned: options.delayWarned ?? false,
  };
  return message;
}

const delivered: Verdict = { kind: "delivered", reply: { code: 250, text: "ok" } };
const later: Verdict = {
  kind: "temporary",
  status: "4.2.1",
  reply: { code: 450, enhanced: "4.2.1", text: "busy" },
};
const refused: Verdict = {
  kind: "permanent",
  status: "5.1.1",
  reply: { code: 550, enhanced: "5.1.1", text: "no" },
};
const text = (bytes: Uint8Array | undefined) => Buffer.from(bytes ?? new Uint8Array()).toString("latin1");

describe("planSettlement", () => {
  test("4xx: deferred for 300 s after the first attempt, 600 s after the second", () => {
    const now = ARRIVAL + HOUR;
    const plan = planSettlement(leased({ attempts: [0, 1] }), [later, later], "mx.b.test", "me", now, policy);
    expect(plan.recipients).toEqual([
      {
        index: 10,
        outcome: {
          state: "deferred",
          nextAttempt: now + 300_000,
          reply: later.reply,
          remoteMta: "mx.b.test",
        },
      },
      {
        index: 11,
        outcome: {
          state: "deferred",
          nextAttempt: now + 600_000,
          reply: later.reply,
          remoteMta: "mx.b.test",
        },
      },
    ]);
    expect(plan.notifications).toBeUndefined();
    expect(plan).toMatchObject({ id: "0ABCDEFGHJKMNPQR", owner: "me", at: now });
  });

  test("5xx: failed at once, one notification for the failed recipients only, by the message's route", () => {
    const plan = planSettlement(leased(), [delivered, refused], "mx.b.test", "me", ARRIVAL + 1000, policy);
    expect(plan.recipients.map((r) => r.outcome.state)).toEqual(["delivered", "failed"]);
    expect(plan.notifications).toHaveLength(1);
    const notice = plan.notifications?.[0];
    expect(notice?.envelope.from).toEqual({ mailbox: null });
    expect(notice?.envelope.recipients[0]?.path).toEqual(parsePath("<alice@a.test>"));
    expect(notice?.route).toEqual({ kind: "smarthost", host: "relay.test", port: 25 });
    expect(notice?.options).toEqual({ kind: "dsn", arrival: ARRIVAL + 1000 });
    expect(text(notice?.message)).toContain(
      "Final-Recipient: rfc822; r1@b.test\r\nAction: failed\r\nStatus: 5.1.1",
    );
    expect(text(notice?.message)).not.toContain("r0@b.test");
  });

  test("notifications go by the notice route when one is set", () => {
    const route = { kind: "smarthost" as const, host: "catcher.test", port: 1025 };
    const plan = planSettlement(leased(), [refused, refused], undefined, "me", ARRIVAL, {
      ...policy,
      noticeRoute: route,
    });
    expect(plan.notifications?.[0]?.route).toEqual(route);
  });

  test("past max age a temporary failure is final, status 5.4.7, with the last reason", () => {
    const now = ARRIVAL + policy.maxAgeMs;
    const plan = planSettlement(leased(), [later, delivered], undefined, "me", now, policy);
    expect(plan.recipients[0]?.outcome).toEqual({
      state: "failed",
      status: EXPIRED_STATUS,
      reply: later.reply,
      error: "gave up after 5 days in the queue",
    });
    expect(text(plan.notifications?.[0]?.message)).toContain("Status: 5.4.7");
  });

  test("no notification about a message from <> (it is one)", () => {
    const plan = planSettlement(leased({ from: "<>" }), [refused, refused], undefined, "me", ARRIVAL, policy);
    expect(plan.recipients.map((r) => r.outcome.state)).toEqual(["failed", "failed"]);
    expect(plan.notifications).toBeUndefined();
  });

  test("NOTIFY=NEVER or SUCCESS only: no failure notice", () => {
    for (const notify of [["NEVER"], ["SUCCESS"], ["DELAY"]] as NotifyType[][]) {
      const plan = planSettlement(leased({ notify }), [refused, refused], undefined, "me", ARRIVAL, policy);
      expect(plan.notifications).toBeUndefined();
    }
  });

  describe("delay warnings", () => {
    const warn = { ...policy, delayWarningMs: 4 * HOUR };

    test("off unless asked for", () => {
      const plan = planSettlement(leased(), [later, later], undefined, "me", ARRIVAL + 10 * HOUR, policy);
      expect(plan.notifications).toBeUndefined();
    });

    test("not before the message has waited that long", () => {
      const plan = planSettlement(leased(), [later, later], undefined, "me", ARRIVAL + HOUR, warn);
      expect(plan.notifications).toBeUndefined();
      expect(plan.delayWarned).toBeUndefined();
    });

    test("once it has: one notice, Action delayed, Will-Retry-Until the expiry", () => {
      const plan = planSettlement(leased(), [later, delivered], undefined, "me", ARRIVAL + 5 * HOUR, warn);
      expect(plan.delayWarned).toBe(true);
      const message = text(plan.notifications?.[0]?.message);
      expect(message).toContain("Action: delayed\r\nStatus: 4.2.1");
      expect(message).toContain("Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000");
    });

    test("never twice", () => {
      const plan = planSettlement(
        leased({ delayWarned: true }),
        [later, later],
        undefined,
        "me",
        ARRIVAL + 5 * HOUR,
        warn,
      );
      expect(plan.notifications).toBeUndefined();
    });

    test("not for recipients whose NOTIFY leaves out DELAY", () => {
      const plan = planSettlement(
        leased({ notify: ["FAILURE"] }),
        [later, later],
        undefined,
        "me",
        ARRIVAL + 5 * HOUR,
        warn,
      );
      expect(plan.notifications).toBeUndefined();
    });

    test("a failure and a delay in one attempt: two notices", () => {
      const plan = planSettlement(leased(), [refused, later], undefined, "me", ARRIVAL + 5 * HOUR, warn);
      expect(plan.notifications).toHaveLength(2);
    });
  });
});
