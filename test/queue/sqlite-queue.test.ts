import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePath } from "../../src/core/address.ts";
import type { Envelope } from "../../src/core/envelope.ts";
import { emptyMailParams, emptyRcptParams } from "../../src/core/esmtp-params.ts";
import { openQueue } from "../../src/queue/open-queue.ts";
import type { QueueRoute } from "../../src/queue/route.ts";
import { type Queue, QueueClosedError, type RecipientOutcome } from "../../src/queue/types.ts";

const T0 = 1_700_000_000_000;
const encoder = new TextEncoder();
const route: QueueRoute = { kind: "smarthost", host: "relay.test", port: 2525, starttls: "never" };
const mx: QueueRoute = { kind: "mx", port: 2526 };

function envelope(from: string, ...to: string[]): Envelope {
  return {
    from: parsePath(from),
    mailParams: { ...emptyMailParams(), ret: "HDRS", envid: "e-1" },
    recipients: to.map((address) => ({
      path: parsePath(`<${address}>`),
      params: { ...emptyRcptParams(), notify: ["FAILURE" as const] },
    })),
  };
}

let dir: string;
let clock: number;
let queue: Queue;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "smtpkit-queue-test-"));
  clock = T0;
  queue = openQueue({ path: join(dir, "data", "queue.sqlite"), now: () => clock });
});

afterEach(async () => {
  await queue.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Leases everything due for the first due destination. */
async function leaseAll(owner = "host:1:a", limit = 100) {
  const [due] = await queue.dueDestinations(clock);
  if (due === undefined) return [];
  return await queue.lease(due.destination, { owner, limit, now: clock, until: clock + 60_000 });
}

function outcomes(...list: RecipientOutcome[]) {
  return list.map((outcome, index) => ({ index, outcome }));
}

describe("enqueue", () => {
  test("stores message, envelope and route; what comes back is what went in", async () => {
    const raw = encoder.encode("Subject: hi\r\n\r\n.dot\r\ncaf\u00e9\r\n");
    const id = await queue.enqueue(raw, envelope("<a@a.test>", "b@b.test", "c@c.test"), route);
    const entry = await queue.get(id);
    expect(entry).toMatchObject({
      id,
      arrival: T0,
      size: raw.length,
      from: parsePath("<a@a.test>"),
      mailParams: { ret: "HDRS", envid: "e-1", other: [] },
      route,
      kind: "mail",
      held: false,
      delayWarned: false,
    });
    expect(entry?.recipients.map((r) => [r.index, r.path.mailbox?.local, r.state, r.nextAttempt])).toEqual([
      [0, "b", "queued", T0],
      [1, "c", "queued", T0],
    ]);
    expect(entry?.recipients[0]?.params.notify).toEqual(["FAILURE"]);
    expect(await queue.raw(id)).toEqual(raw);
  });

  test("many at once share a commit; every promise resolves with its own ID, and listeners hear once", async () => {
    const heard: string[][] = [];
    queue.onEnqueued((ids) => heard.push([...ids]));
    const ids = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        queue.enqueue(encoder.encode(`m${i}`), envelope("<a@a.test>", "b@b.test"), route),
      ),
    );
    expect(new Set(ids).size).toBe(300);
    expect(heard).toEqual([ids]);
    expect((await queue.list()).map((e) => e.id)).toEqual([...ids].sort());
  });

  test("a message without recipients is refused", async () => {
    await expect(queue.enqueue(encoder.encode("x"), envelope("<a@a.test>"), route)).rejects.toThrow(
      "recipients",
    );
  });

  test("what was acknowledged is there after reopening", async () => {
    const id = await queue.enqueue(encoder.encode("kept"), envelope("<a@a.test>", "b@b.test"), route);
    await queue.close();
    queue = openQueue({ path: join(dir, "data", "queue.sqlite") });
    expect((await queue.get(id))?.recipients[0]?.state).toBe("queued");
    expect(new TextDecoder().decode(await queue.raw(id))).toBe("kept");
  });

  test("MX routes group recipients by domain; equal routes are stored once", async () => {
    await queue.enqueue(encoder.encode("x"), envelope("<a@a.test>", "b@B.test", "c@c.test", "d@b.test"), mx);
    await queue.enqueue(encoder.encode("y"), envelope("<a@a.test>", "e@b.test"), { port: 2526, kind: "mx" });
    const due = (await queue.dueDestinations(clock)).sort((x, y) =>
      x.destination.localeCompare(y.destination),
    );
    expect(due.map((d) => [d.destination.replace(/^\d+\|/, ""), d.messages, d.route])).toEqual([
      ["b.test", 3, mx],
      ["c.test", 1, mx],
    ]);
  });

  test("after close every call refuses", async () => {
    await queue.close();
    await expect(
      queue.enqueue(encoder.encode("x"), envelope("<a@a.test>", "b@b.test"), route),
    ).rejects.toThrow(QueueClosedError);
    await expect(queue.list()).rejects.toThrow(QueueClosedError);
  });
});

describe("leases", () => {
  test("oldest first, up to the limit, each recipient to one owner only", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      clock = T0 + i;
      ids.push(await queue.enqueue(encoder.encode(`m${i}`), envelope("<a@a.test>", "b@b.test"), route));
    }
    clock = T0 + 10;
    const first = await leaseAll("host:1:a", 3);
    expect(first.map((m) => m.id)).toEqual(ids.slice(0, 3));
    expect(first[0]).toMatchObject({ arrival: T0, expiryBase: T0, kind: "mail", route, delayWarned: false });
    expect(first[0]?.envelope.recipients.map((r) => r.path.mailbox?.local)).toEqual(["b"]);
    expect(first[0]?.recipientIndexes).toEqual([0]);
    const second = await leaseAll("host:1:b", 10);
    expect(second.map((m) => m.id)).toEqual(ids.slice(3));
    expect(await leaseAll("host:1:c")).toEqual([]);
    expect(await queue.countLeased("host:1:c")).toBe(5);
    expect(await queue.countLeased("host:1:a")).toBe(2);
  });

  test("a lease holds at most 32 MiB of bodies, but always one message", async () => {
    const big = new Uint8Array(12 * 1024 * 1024).fill(0x61);
    for (let i = 0; i < 3; i++) await queue.enqueue(big, envelope("<a@a.test>", "b@b.test"), route);
    expect((await leaseAll("w", 10)).length).toBe(2);
    expect((await leaseAll("w", 10)).length).toBe(1);
  });

  test("a lease brings only that destination's recipients", async () => {
    const id = await queue.enqueue(
      encoder.encode("x"),
      envelope("<a@a.test>", "b@b.test", "c@c.test", "d@b.test"),
      mx,
    );
    const b = (await queue.dueDestinations(clock)).find((d) => d.destination.endsWith("|b.test"));
    const leased = await queue.lease(b?.destination ?? "", {
      owner: "o",
      limit: 10,
      now: clock,
      until: clock + 1000,
    });
    expect(leased.map((m) => [m.id, m.recipientIndexes])).toEqual([[id, [0, 2]]]);
    expect((await queue.get(id))?.recipients.map((r) => r.state)).toEqual(["active", "queued", "active"]);
  });

  test("a lease that runs out is due again; one renewed is not", async () => {
    await queue.enqueue(encoder.encode("x"), envelope("<a@a.test>", "b@b.test"), route);
    await leaseAll("host:1:a");
    clock += 30_000;
    expect(await queue.renewLeases("host:1:a", clock + 60_000)).toBe(1);
    clock += 59_000;
    expect(await queue.dueDestinations(clock)).toEqual([]);
    expect(await queue.nextDue()).toBe(clock + 1000);
    clock += 1000;
    expect(await leaseAll("host:2:b")).toHaveLength(1);
    expect((await queue.list())[0]?.recipients[0]?.leaseOwner).toBe("host:2:b");
  });

  test("a dead owner's leases are given back at once, a live one's are not", async () => {
    await queue.enqueue(encoder.encode("x"), envelope("<a@a.test>", "b@b.test"), route);
    await queue.enqueue(encoder.encode("y"), envelope("<a@a.test>", "c@b.test"), route);
    await leaseAll("dead", 1);
    await leaseAll("alive", 1);
    expect(await queue.recoverLeases(clock, (owner) => owner !== "dead")).toBe(1);
    expect((await queue.list()).map((e) => e.recipients[0]?.state)).toEqual(["queued", "active"]);
    expect((await queue.dueDestinations(clock))[0]?.messages).toBe(1);
  });

  test("releaseLeases gives back what an owner holds, keeping deferred ones deferred", async () => {
    await queue.enqueue(encoder.encode("x"), envelope("<a@a.test>", "b@b.test"), route);
    const [message] = await leaseAll("w");
    await queue.settle({
      id: message?.id ?? "",
      owner: "w",
      at: clock,
      recipients: outcomes({ state: "deferred", nextAttempt: clock, error: "refused" }),
    });
    await leaseAll("w");
    expect(await queue.releaseLeases("w", clock + 5)).toBe(1);
    expect((await queue.list())[0]?.recipients[0]).toMatchObject({
      state: "deferred",
      nextAttempt: clock + 5,
      leaseOwner: null,
    });
  });
});

describe("settle", () => {
  test("every recipient delivered: the message leaves the queue", async () => {
    const id = await queue.enqueue(
      encoder.encode("x"),
      envelope("<a@a.test>", "b@b.test", "c@b.test"),
      route,
    );
    await leaseAll("w");
    const notices = await queue.settle({
      id,
      owner: "w",
      at: clock,
      recipients: outcomes(
        { state: "delivered", reply: { code: 250, text: "ok" } },
        { state: "delivered", reply: { code: 250, text: "ok" } },
      ),
    });
    expect(notices).toEqual([]);
    expect(await queue.get(id)).toBeUndefined();
    expect(await queue.raw(id)).toBeUndefined();
    expect(await queue.attempts(id)).toEqual([]);
    expect((await queue.stats()).messages).toBe(0);
  });

  test("mixed outcomes are recorded per recipient, with an attempt log for the undelivered", async () => {
    const id = await queue.enqueue(
      encoder.encode("x"),
      envelope("<a@a.test>", "b@b.test", "c@b.test", "d@b.test"),
      route,
    );
    await leaseAll("w");
    clock += 7;
    await queue.settle({
      id,
      owner: "w",
      at: clock,
      recipients: outcomes(
        { state: "delivered", reply: { code: 250, enhanced: "2.0.0", text: "ok" }, remoteMta: "relay.test" },
        {
          state: "deferred",
          nextAttempt: clock + 300_000,
          reply: { code: 450, text: "busy" },
          remoteMta: "relay.test",
        },
        {
          state: "failed",
          status: "5.1.1",
          reply: { code: 550, enhanced: "5.1.1", text: "no" },
          remoteMta: "relay.test",
        },
      ),
    });
    const entry = await queue.get(id);
    expect(
      entry?.recipients.map((r) => [r.state, r.attempts, r.nextAttempt, r.lastAttempt, r.status]),
    ).toEqual([
      ["delivered", 1, null, clock, null],
      ["deferred", 1, clock + 300_000, clock, null],
      ["failed", 1, null, clock, "5.1.1"],
    ]);
    expect(entry?.recipients[1]?.lastReply).toEqual({ code: 450, text: "busy" });
    expect(await queue.attempts(id)).toEqual([
      {
        recipientIndex: 1,
        at: clock,
        state: "deferred",
        reply: { code: 450, text: "busy" },
        error: null,
        remoteMta: "relay.test",
      },
      {
        recipientIndex: 2,
        at: clock,
        state: "failed",
        reply: { code: 550, enhanced: "5.1.1", text: "no" },
        error: null,
        remoteMta: "relay.test",
      },
    ]);
    expect(await queue.dueDestinations(clock)).toEqual([]);
    clock += 300_000;
    expect((await leaseAll("w")).map((m) => m.recipientIndexes)).toEqual([[1]]);
  });

  test("an owner that lost its lease changes nothing", async () => {
    const id = await queue.enqueue(encoder.encode("x"), envelope("<a@a.test>", "b@b.test"), route);
    await leaseAll("first");
    clock += 60_000;
    await leaseAll("second");
    await queue.settle({ id, owner: "first", at: clock, recipients: outcomes({ state: "delivered" }) });
    expect((await queue.get(id))?.recipients[0]).toMatchObject({ state: "active", leaseOwner: "second" });
  });

  test("notifications are queued with the outcome, in the same commit, and heard by listeners", async () => {
    const id = await queue.enqueue(encoder.encode("x"), envelope("<a@a.test>", "b@b.test"), route);
    const heard: string[] = [];
    queue.onEnqueued((ids) => heard.push(...ids));
    await leaseAll("w");
    const notices = await queue.settle({
      id,
      owner: "w",
      at: clock,
      recipients: outcomes({ state: "failed", status: "5.0.0", error: "no" }),
      notifications: [
        {
          message: encoder.encode("Subject: bounce\r\n\r\n"),
          envelope: {
            from: { mailbox: null },
            mailParams: emptyMailParams(),
            recipients: [{ path: parsePath("<a@a.test>"), params: emptyRcptParams() }],
          },
          route,
          options: { kind: "dsn", arrival: clock },
        },
      ],
    });
    expect(notices).toHaveLength(1);
    expect(heard).toEqual(notices);
    const notice = await queue.get(notices[0] ?? "");
    expect(notice).toMatchObject({ kind: "dsn", from: { mailbox: null } });
    expect(notice?.recipients[0]?.state).toBe("queued");
  });

  test("released recipients go back unattempted", async () => {
    const id = await queue.enqueue(encoder.encode("x"), envelope("<a@a.test>", "b@b.test"), route);
    await leaseAll("w");
    await queue.settle({ id, owner: "w", at: clock + 1, recipients: outcomes({ state: "released" }) });
    expect((await queue.get(id))?.recipients[0]).toMatchObject({
      state: "queued",
      attempts: 0,
      nextAttempt: clock + 1,
    });
  });

  test("the delay notice flag sticks", async () => {
    const id = await queue.enqueue(encoder.encode("x"), envelope("<a@a.test>", "b@b.test"), route);
    const [leased] = await leaseAll("w");
    expect(leased?.delayWarned).toBe(false);
    await queue.settle({
      id,
      owner: "w",
      at: clock,
      delayWarned: true,
      recipients: outcomes({ state: "deferred", nextAttempt: clock, error: "later" }),
    });
    expect((await queue.get(id))?.delayWarned).toBe(true);
    expect((await leaseAll("w"))[0]?.delayWarned).toBe(true);
  });
});

describe("management", () => {
  test("hold keeps a message out of delivery until release makes it due", async () => {
    const id = await queue.enqueue(encoder.encode("x"), envelope("<a@a.test>", "b@b.test"), route);
    expect(await queue.hold([id, "0000000000000000"])).toEqual([id]);
    expect(await queue.dueDestinations(clock)).toEqual([]);
    expect(await queue.nextDue()).toBeUndefined();
    expect((await queue.get(id))?.held).toBe(true);
    expect(await queue.makeDue(clock)).toBe(0);
    clock += 1000;
    expect(await queue.release([id])).toEqual([id]);
    expect((await queue.get(id))?.recipients[0]?.nextAttempt).toBe(clock);
    expect(await queue.dueDestinations(clock)).toHaveLength(1);
  });

  test("a message held while being delivered stays held after the attempt", async () => {
    const id = await queue.enqueue(encoder.encode("x"), envelope("<a@a.test>", "b@b.test"), route);
    await leaseAll("w");
    await queue.hold([id]);
    await queue.settle({
      id,
      owner: "w",
      at: clock,
      recipients: outcomes({ state: "deferred", nextAttempt: clock, error: "x" }),
    });
    expect((await queue.get(id))?.recipients[0]).toMatchObject({ state: "deferred", nextAttempt: null });
    expect(await queue.dueDestinations(clock + 10)).toEqual([]);
  });

  test("makeDue brings deferred mail forward, leaving leased recipients alone", async () => {
    const a = await queue.enqueue(encoder.encode("a"), envelope("<a@a.test>", "b@b.test"), route);
    const b = await queue.enqueue(encoder.encode("b"), envelope("<a@a.test>", "c@b.test"), route);
    await leaseAll("w");
    await queue.settle({
      id: a,
      owner: "w",
      at: clock,
      recipients: outcomes({ state: "deferred", nextAttempt: clock + 9999, error: "x" }),
    });
    expect(await queue.makeDue(clock + 1, { ids: [a, b] })).toBe(1);
    expect((await queue.get(a))?.recipients[0]?.nextAttempt).toBe(clock + 1);
    expect((await queue.get(b))?.recipients[0]?.state).toBe("active");
  });

  test("delete some, delete all", async () => {
    const ids = await Promise.all(
      ["a", "b", "c"].map((n) =>
        queue.enqueue(encoder.encode(n), envelope("<a@a.test>", `${n}@b.test`), route),
      ),
    );
    expect(await queue.delete({ ids: [ids[1] ?? "", "0000000000000000"] })).toEqual([ids[1] ?? ""]);
    expect(await queue.existing(ids)).toEqual([ids[0], ids[2]].sort() as string[]);
    expect(await queue.delete({})).toEqual([ids[0], ids[2]].sort() as string[]);
    expect(await queue.list()).toEqual([]);
    expect(await queue.raw(ids[0] ?? "")).toBeUndefined();
  });

  test("retry-failed queues failed recipients again with max-age counted afresh", async () => {
    const id = await queue.enqueue(
      encoder.encode("x"),
      envelope("<a@a.test>", "b@b.test", "c@b.test"),
      route,
    );
    await leaseAll("w");
    await queue.settle({
      id,
      owner: "w",
      at: clock,
      recipients: outcomes({ state: "failed", status: "5.1.1", error: "no" }, { state: "delivered" }),
    });
    clock += 50_000;
    expect(await queue.retryFailed(clock)).toEqual([id]);
    expect((await queue.get(id))?.recipients.map((r) => [r.state, r.nextAttempt, r.status])).toEqual([
      ["queued", clock, null],
      ["delivered", null, null],
    ]);
    const [leased] = await leaseAll("w");
    expect(leased?.expiryBase).toBe(clock);
    expect(leased?.arrival).toBe(T0);
    expect(await queue.retryFailed(clock, { ids: [id] })).toEqual([]);
  });

  test("stats count recipients by state and destination, held ones apart", async () => {
    const a = await queue.enqueue(
      encoder.encode("12345"),
      envelope("<a@a.test>", "b@b.test", "c@c.test"),
      mx,
    );
    clock += 1;
    const b = await queue.enqueue(encoder.encode("123"), envelope("<a@a.test>", "d@b.test"), route);
    await queue.hold([b]);
    const stats = await queue.stats();
    expect(stats).toMatchObject({ messages: 2, held: 1, bytes: 8, oldest: { id: a, arrival: T0 } });
    expect(stats.recipients).toEqual({ queued: 2, active: 0, deferred: 0, held: 1, delivered: 0, failed: 0 });
    expect(
      stats.destinations.map((d) => [
        d.destination.replace(/^\d+\|/, ""),
        d.recipients.queued,
        d.recipients.held,
      ]),
    ).toEqual([
      ["b.test", 1, 0],
      ["c.test", 1, 0],
      ["relay.test:2525", 0, 1],
    ]);
  });
});
