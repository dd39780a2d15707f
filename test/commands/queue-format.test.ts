import { describe, expect, test } from "bun:test";
import {
  ageText,
  attemptLines,
  listText,
  messageJson,
  messageState,
  routeText,
  showText,
  statsJson,
  statsText,
  untilText,
} from "../../src/commands/queue-format.ts";
import { parsePath } from "../../src/core/address.ts";
import { emptyMailParams, emptyRcptParams } from "../../src/core/esmtp-params.ts";
import type { QueueEntry, QueueRecipient, QueueStats } from "../../src/queue/types.ts";

const T0 = Date.UTC(2025, 4, 6, 7, 8, 9);

function recipient(address: string, overrides: Partial<QueueRecipient> = {}): QueueRecipient {
  return {
    index: 0,
    path: parsePath(`<${address}>`),
    params: emptyRcptParams(),
    destination: "1|relay.test:587",
    state: "queued",
    attempts: 0,
    nextAttempt: T0,
    lastAttempt: null,
    lastReply: null,
    lastError: null,
    remoteMta: null,
    status: null,
    leaseOwner: null,
    ...overrides,
  };
}

function entry(overrides: Partial<QueueEntry> = {}): QueueEntry {
  return {
    id: "M8EJQB7ZDQA76QRJ",
    arrival: T0,
    size: 1234,
    from: parsePath("<alice@a.test>"),
    mailParams: { ...emptyMailParams(), ret: "HDRS" },
    route: {
      kind: "smarthost",
      host: "relay.test",
      port: 587,
      starttls: "always",
      auth: { username: "me", secret: { env: "P" } },
    },
    kind: "mail",
    held: false,
    delayWarned: false,
    recipients: [
      recipient("b@b.test", {
        index: 0,
        state: "deferred",
        attempts: 2,
        nextAttempt: T0 + 600_000,
        lastAttempt: T0 + 1000,
        lastReply: { code: 450, enhanced: "4.2.1", text: "busy\nnow" },
        remoteMta: "relay.test",
      }),
      recipient("c@b.test", {
        index: 1,
        state: "failed",
        nextAttempt: null,
        lastError: "refused",
        status: "5.1.1",
      }),
    ],
    ...overrides,
  };
}

describe("states", () => {
  test("the state needing attention first stands for the message", () => {
    expect(messageState(entry())).toBe("deferred");
    expect(messageState(entry({ held: true }))).toBe("held");
    expect(messageState(entry({ recipients: [recipient("x@b.test", { state: "failed" })] }))).toBe("failed");
    expect(
      messageState(entry({ recipients: [recipient("x@b.test", { state: "active" })], held: true })),
    ).toBe("held");
  });

  test("ages round down, times to come round to the nearest second", () => {
    expect([ageText(59_999), ageText(60_000), ageText(7_200_000), ageText(3 * 86_400_000)]).toEqual([
      "59s",
      "1m",
      "2h",
      "3d",
    ]);
    expect(untilText(299_990)).toBe("5m");
  });

  test("routes for people: no secret, only where it comes from is not shown either", () => {
    expect(routeText(entry().route)).toBe("smtp://me@relay.test:587 (STARTTLS always)");
    expect(routeText({ kind: "mx" })).toBe("MX");
    expect(routeText({ kind: "smarthost", host: "::1", port: 465, implicitTls: true })).toBe(
      "smtps://[::1]:465",
    );
  });
});

describe("list", () => {
  test("empty", () => {
    expect(listText([], T0)).toBe("Mail queue is empty\n");
  });

  test("a line per message, one per recipient with its state and last problem", () => {
    expect(listText([entry()], T0 + 125_000)).toBe(
      [
        "ID                  AGE      SIZE  SENDER",
        "M8EJQB7ZDQA76QRJ     2m      1234  alice@a.test",
        "    deferred  b@b.test  (450 4.2.1 busy now)",
        "    failed    c@b.test  (refused)",
        "-- 1234 octets in 1 message",
        "",
      ].join("\n"),
    );
  });

  test("JSON: one object per message with every recipient", () => {
    expect(messageJson(entry(), T0 + 5000)).toEqual({
      id: "M8EJQB7ZDQA76QRJ",
      arrival: "2025-05-06T07:08:09.000Z",
      ageSeconds: 5,
      size: 1234,
      sender: "alice@a.test",
      kind: "mail",
      held: false,
      state: "deferred",
      route: {
        kind: "smarthost",
        host: "relay.test",
        port: 587,
        implicitTls: false,
        starttls: "always",
        user: "me",
      },
      recipients: [
        {
          address: "b@b.test",
          state: "deferred",
          destination: "relay.test:587",
          attempts: 2,
          nextAttempt: "2025-05-06T07:18:09.000Z",
          lastAttempt: "2025-05-06T07:08:10.000Z",
          lastReply: { code: 450, enhanced: "4.2.1", text: "busy\nnow" },
          lastError: null,
          remoteMta: "relay.test",
          status: null,
        },
        {
          address: "c@b.test",
          state: "failed",
          destination: "relay.test:587",
          attempts: 0,
          nextAttempt: null,
          lastAttempt: null,
          lastReply: null,
          lastError: "refused",
          remoteMta: null,
          status: "5.1.1",
        },
      ],
    });
  });
});

describe("show", () => {
  test("envelope, recipients and attempts", () => {
    const text = showText(
      entry(),
      [
        {
          recipientIndex: 0,
          at: T0 + 1000,
          state: "deferred",
          reply: { code: 450, text: "busy" },
          error: null,
          remoteMta: "relay.test",
        },
      ],
      T0 + 60_000,
    );
    expect(text).toContain("Queue ID:   M8EJQB7ZDQA76QRJ\n");
    expect(text).toContain("Sender:     <alice@a.test>  RET=HDRS\n");
    expect(text).toContain("Route:      smtp://me@relay.test:587 (STARTTLS always)\n");
    expect(text).toContain(
      "  <b@b.test>  deferred\n      attempts 2, destination relay.test:587, next attempt 2025-05-06T07:18:09.000Z\n",
    );
    expect(text).toContain("      last: 450 4.2.1 busy now\n");
    expect(text).toContain("status 5.1.1");
    expect(text).toContain("  2025-05-06T07:08:10.000Z  <b@b.test>  deferred (relay.test): 450 busy\n");
  });
});

describe("attempt lines", () => {
  test("one per recipient, then the notifications", () => {
    const lines = attemptLines(
      {
        id: "M8EJQB7ZDQA76QRJ",
        destination: "relay.test:587",
        at: T0,
        remoteMta: "relay.test",
        recipients: [
          {
            index: 0,
            address: "b@b.test",
            outcome: { state: "delivered", reply: { code: 250, text: "ok" } },
          },
          {
            index: 1,
            address: "c@b.test",
            outcome: { state: "deferred", nextAttempt: T0 + 300_000, error: "timeout" },
          },
          {
            index: 2,
            address: "d@b.test",
            outcome: {
              state: "failed",
              status: "5.1.1",
              reply: { code: 550, enhanced: "5.1.1", text: "no" },
            },
          },
        ],
        notices: ["N000000000000000"],
      },
      T0,
    );
    expect(lines).toEqual([
      "M8EJQB7ZDQA76QRJ: <b@b.test> delivered via relay.test (250 ok)",
      "M8EJQB7ZDQA76QRJ: <c@b.test> deferred via relay.test (timeout), next attempt in 5m",
      "M8EJQB7ZDQA76QRJ: <d@b.test> failed via relay.test (550 5.1.1 no), status 5.1.1",
      "M8EJQB7ZDQA76QRJ: delivery notification N000000000000000 queued for the sender",
    ]);
  });
});

describe("stats", () => {
  const stats: QueueStats = {
    messages: 3,
    held: 1,
    bytes: 4096,
    recipients: { queued: 1, active: 0, deferred: 2, held: 1, delivered: 4, failed: 1 },
    destinations: [
      {
        destination: "1|relay.test:587",
        recipients: { queued: 1, active: 0, deferred: 2, held: 1, delivered: 0, failed: 0 },
      },
      {
        destination: "2|example.com",
        recipients: { queued: 0, active: 0, deferred: 0, held: 0, delivered: 4, failed: 1 },
      },
    ],
    oldest: { id: "M8EJQB7ZDQA76QRJ", arrival: T0 },
  };

  test("text", () => {
    expect(statsText(stats, T0 + 3_600_000)).toBe(
      [
        "messages:   3 (1 held), 4096 octets, oldest M8EJQB7ZDQA76QRJ (1h)",
        "recipients: queued 1, active 0, deferred 2, held 1, failed 1",
        "",
        "destination      queued   active deferred     held   failed",
        "relay.test:587        1        0        2        1        0",
        "example.com           0        0        0        0        1",
        "",
      ].join("\n"),
    );
  });

  test("JSON names destinations as people read them", () => {
    const json = statsJson(stats, T0 + 1000);
    expect(json.destinations.map((d) => d.destination)).toEqual(["relay.test:587", "example.com"]);
    expect(json.oldest).toEqual({
      id: "M8EJQB7ZDQA76QRJ",
      arrival: "2025-05-06T07:08:09.000Z",
      ageSeconds: 1,
    });
  });
});
