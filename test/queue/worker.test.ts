import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { parsePath } from "../../src/core/address.ts";
import type { Envelope } from "../../src/core/envelope.ts";
import { emptyMailParams, emptyRcptParams } from "../../src/core/esmtp-params.ts";
import { createResolver } from "../../src/net/dns.ts";
import { newLeaseOwner, retireLeaseOwner } from "../../src/queue/lease-owner.ts";
import { openQueue } from "../../src/queue/open-queue.ts";
import type { QueueRoute } from "../../src/queue/route.ts";
import type { LeaseRequest, Queue } from "../../src/queue/types.ts";
import { flushQueue, runWorker } from "../../src/queue/worker.ts";
import { type DnsResponder, startDnsResponder } from "../helpers/dns-responder.ts";
import { freePort } from "../interop/peers/ports.ts";
import { type Gauge, SmtpError, startTestServer, type TestServer } from "./test-server.ts";

const DAY = 86_400_000;
const encoder = new TextEncoder();
const text = (bytes: Uint8Array | undefined): string =>
  Buffer.from(bytes ?? new Uint8Array()).toString("latin1");

function envelope(from: string, ...to: string[]): Envelope {
  return {
    from: parsePath(from),
    mailParams: emptyMailParams(),
    recipients: to.map((address) => ({ path: parsePath(`<${address}>`), params: emptyRcptParams() })),
  };
}

function message(n: number | string): Uint8Array {
  return encoder.encode(`From: a@a.test\r\nSubject: message ${n}\r\n\r\n.line with a dot\r\nbody ${n}\r\n`);
}

function routeTo(server: { port: number }): QueueRoute {
  return { kind: "smarthost", host: "127.0.0.1", port: server.port, starttls: "never" };
}

let dir: string;
let queue: Queue;
let clock: number;
let server: TestServer;
const now = (): number => clock;
const cleanups: (() => Promise<void>)[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "smtpkit-worker-test-"));
  clock = Date.now();
  queue = openQueue({ path: join(dir, "queue.sqlite"), now });
  server = await startTestServer();
});

afterEach(async () => {
  await queue.close();
  await server.close();
  for (const cleanup of cleanups.splice(0)) await cleanup();
  rmSync(dir, { recursive: true, force: true });
});

async function enqueueMany(count: number, route: QueueRoute, ...to: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(
      await queue.enqueue(message(i), envelope("<a@a.test>", ...(to.length ? to : ["b@b.test"])), route),
    );
  }
  return ids;
}

describe("flushQueue", () => {
  test("delivers everything over one reused connection; the bytes arrive as queued", async () => {
    const ids = await enqueueMany(20, routeTo(server));
    const result = await flushQueue(queue, { now, perDestination: 1, hostname: "me.test" });
    expect(result.attempts.map((a) => a.id).sort()).toEqual([...ids].sort());
    expect(result.attempts.every((a) => a.recipients[0]?.outcome.state === "delivered")).toBe(true);
    expect(result.attempts[0]?.remoteMta).toBe("127.0.0.1");
    expect(server.connections).toBe(1);
    expect(server.received.map((m) => text(m.raw)).sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => text(message(i))).sort(),
    );
    expect(await queue.list()).toEqual([]);
  });

  test("a connection's first lease is small, later ones its whole share; its outcomes commit once it is done", async () => {
    await enqueueMany(100, routeTo(server));
    const leaseLimits: number[] = [];
    let commits = 0;
    // Spies on the two calls; everything else goes to the queue itself (its methods use private fields).
    const spied = new Proxy(queue, {
      get(target, property) {
        if (property === "lease")
          return (destination: string, request: LeaseRequest) => {
            leaseLimits.push(request.limit);
            return target.lease(destination, request);
          };
        if (property === "commitWaiting")
          return () => {
            commits++;
            target.commitWaiting();
          };
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const result = await flushQueue(spied, { now, perDestination: 1 });
    expect(result.attempts).toHaveLength(100);
    // 20 first, then the share: all 100 due messages over the one connection.
    expect(leaseLimits.slice(0, 2)).toEqual([20, 100]);
    expect(commits).toBe(1);
    expect(await queue.list()).toEqual([]);
  });

  test("no more than --per-destination connections to one destination", async () => {
    await enqueueMany(120, routeTo(server));
    await flushQueue(queue, { now, perDestination: 3, batchSize: 5 });
    expect(server.received).toHaveLength(120);
    expect(server.maxOpen).toBeLessThanOrEqual(3);
    expect(server.connections).toBeLessThanOrEqual(3);
  });

  test("no more than --concurrency connections deliver at once", async () => {
    const gauge: Gauge = { open: 0, max: 0 };
    const servers = await Promise.all([1, 2, 3].map((i) => startTestServer(`s${i}.test`, gauge)));
    cleanups.push(async () => {
      for (const s of servers) await s.close();
    });
    for (const s of servers) await enqueueMany(10, routeTo(s));
    await flushQueue(queue, { now, concurrency: 2, perDestination: 5, batchSize: 2 });
    expect(servers.map((s) => s.received.length)).toEqual([10, 10, 10]);
    expect(gauge.max).toBeLessThanOrEqual(2);
  });

  test("4xx: deferred with the next attempt 300 s on; delivered on a later flush once it is accepted", async () => {
    server.refuse.set("b@b.test", new SmtpError(450, "4.2.1", "mailbox busy"));
    const [id] = await enqueueMany(1, routeTo(server));
    const first = await flushQueue(queue, { now });
    expect(first.attempts[0]?.recipients[0]?.outcome).toEqual({
      state: "deferred",
      nextAttempt: clock + 300_000,
      reply: { code: 450, enhanced: "4.2.1", text: "mailbox busy" },
      remoteMta: "127.0.0.1",
    });
    const entry = await queue.get(id ?? "");
    expect(entry?.recipients[0]).toMatchObject({
      state: "deferred",
      attempts: 1,
      nextAttempt: clock + 300_000,
    });
    expect(await queue.list({ ids: [] })).toEqual([]);
    server.refuse.clear();
    clock += 300_000;
    const second = await flushQueue(queue, { now });
    expect(second.attempts[0]?.recipients[0]?.outcome.state).toBe("delivered");
    expect(server.received).toHaveLength(1);
    expect(await queue.get(id ?? "")).toBeUndefined();
  });

  test("the second deferral waits twice as long", async () => {
    server.refuse.set("b@b.test", new SmtpError(451, "4.3.0", "later"));
    const [id] = await enqueueMany(1, routeTo(server));
    await flushQueue(queue, { now });
    clock += 300_000;
    await flushQueue(queue, { now });
    expect((await queue.get(id ?? ""))?.recipients[0]).toMatchObject({
      attempts: 2,
      nextAttempt: clock + 600_000,
    });
  });

  test("5xx: failed at once, and the sender's notification reaches the notice route", async () => {
    const catcher = await startTestServer("catcher.test");
    cleanups.push(() => catcher.close());
    server.refuse.set("b@b.test", new SmtpError(550, "5.1.1", "no such user"));
    const [id] = await enqueueMany(1, routeTo(server));
    const result = await flushQueue(queue, { now, hostname: "me.test", dsnRoute: routeTo(catcher) });
    const [attempt, notice] = result.attempts;
    expect(attempt?.recipients[0]?.outcome).toMatchObject({ state: "failed", status: "5.1.1" });
    expect(attempt?.notices).toHaveLength(1);
    expect(notice?.id).toBe(attempt?.notices[0] ?? "");
    expect(notice?.recipients[0]?.outcome.state).toBe("delivered");
    expect(catcher.received).toHaveLength(1);
    const dsn = catcher.received[0];
    expect(dsn?.from).toBe("");
    expect(dsn?.to).toEqual(["a@a.test"]);
    const body = text(dsn?.raw);
    expect(body).toContain("Reporting-MTA: dns; me.test");
    expect(body).toContain("Final-Recipient: rfc822; b@b.test\r\nAction: failed\r\nStatus: 5.1.1");
    expect(body).toContain("Diagnostic-Code: smtp; 550 5.1.1 no such user");
    expect(body).toContain(text(message(0)));
    expect((await queue.get(id ?? ""))?.recipients[0]?.state).toBe("failed");
  });

  test("several recipients, one refused: the others get it once, the refused one bounces", async () => {
    server.refuse.set("no@b.test", new SmtpError(550, "5.1.1", "unknown"));
    const [id] = await enqueueMany(1, routeTo(server), "x@b.test", "no@b.test", "y@b.test");
    const result = await flushQueue(queue, { now, dsnRoute: routeTo(server) });
    expect(result.attempts[0]?.recipients.map((r) => [r.address, r.outcome.state])).toEqual([
      ["x@b.test", "delivered"],
      ["no@b.test", "failed"],
      ["y@b.test", "delivered"],
    ]);
    const deliveries = server.received.filter((m) => m.from === "a@a.test");
    expect(deliveries.map((m) => m.to)).toEqual([["x@b.test", "y@b.test"]]);
    const bounces = server.received.filter((m) => m.from === "");
    expect(bounces).toHaveLength(1);
    expect(text(bounces[0]?.raw)).toContain("Final-Recipient: rfc822; no@b.test");
    expect(text(bounces[0]?.raw)).not.toContain("Final-Recipient: rfc822; x@b.test");
    expect((await queue.get(id ?? ""))?.recipients.map((r) => r.state)).toEqual([
      "delivered",
      "failed",
      "delivered",
    ]);
  });

  test("a refused message (5xx after the data) fails every recipient", async () => {
    server.refuseData = new SmtpError(554, "5.6.0", "content refused");
    await enqueueMany(1, routeTo(server), "x@b.test", "y@b.test");
    const result = await flushQueue(queue, {
      now,
      dsnRoute: { kind: "smarthost", host: "127.0.0.1", port: 9 },
    });
    expect(result.attempts[0]?.recipients.map((r) => r.outcome.state)).toEqual(["failed", "failed"]);
  });

  test("nobody listening: every message deferred after one connection attempt", async () => {
    const closed = {
      kind: "smarthost" as const,
      host: "127.0.0.1",
      port: await freePort(),
      starttls: "never" as const,
    };
    const ids = await enqueueMany(30, closed);
    const result = await flushQueue(queue, { now, perDestination: 1, batchSize: 7 });
    expect(result.attempts).toHaveLength(30);
    for (const id of ids) {
      expect((await queue.get(id))?.recipients[0]).toMatchObject({
        state: "deferred",
        attempts: 1,
        nextAttempt: clock + 300_000,
      });
      expect((await queue.get(id))?.recipients[0]?.lastError).toMatch(/refused/);
    }
  });

  test("after max age a deferral is a failure (5.4.7) and the sender hears of it", async () => {
    server.refuse.set("b@b.test", new SmtpError(450, "4.2.1", "busy"));
    await queue.enqueue(message(1), envelope("<a@a.test>", "b@b.test"), routeTo(server), {
      arrival: clock - 5 * DAY,
    });
    const catcher = await startTestServer("catcher.test");
    cleanups.push(() => catcher.close());
    const result = await flushQueue(queue, { now, dsnRoute: routeTo(catcher) });
    expect(result.attempts[0]?.recipients[0]?.outcome).toMatchObject({ state: "failed", status: "5.4.7" });
    expect(text(catcher.received[0]?.raw)).toContain("Status: 5.4.7");
  });

  test("--max-age shorter than the default", async () => {
    server.refuse.set("b@b.test", new SmtpError(450, "4.2.1", "busy"));
    await queue.enqueue(message(1), envelope("<>", "b@b.test"), routeTo(server), { arrival: clock - 2000 });
    const result = await flushQueue(queue, { now, maxAgeMs: 1000 });
    expect(result.attempts[0]?.recipients[0]?.outcome).toMatchObject({ state: "failed", status: "5.4.7" });
    expect(result.attempts[0]?.notices).toEqual([]);
  });

  test("--delay-warning: one delayed notice, never a second", async () => {
    server.refuse.set("b@b.test", new SmtpError(450, "4.2.1", "busy"));
    const catcher = await startTestServer("catcher.test");
    cleanups.push(() => catcher.close());
    await queue.enqueue(message(1), envelope("<a@a.test>", "b@b.test"), routeTo(server), {
      arrival: clock - 2 * 3_600_000,
    });
    const options = { now, delayWarningMs: 3_600_000, dsnRoute: routeTo(catcher) };
    await flushQueue(queue, options);
    clock += 300_000;
    await flushQueue(queue, options);
    expect(catcher.received).toHaveLength(1);
    expect(text(catcher.received[0]?.raw)).toContain("Action: delayed");
    expect((await queue.list())[0]?.delayWarned).toBe(true);
  });

  test("held messages are not flushed; explicit IDs limit the flush", async () => {
    const [a, b, c] = await enqueueMany(3, routeTo(server));
    await queue.hold([b ?? ""]);
    const result = await flushQueue(queue, { now, ids: [a ?? "", b ?? ""] });
    expect(result.attempts.map((x) => x.id)).toEqual([a ?? ""]);
    expect((await queue.existing([a ?? "", b ?? "", c ?? ""])).sort()).toEqual([b, c].sort() as string[]);
  });

  test("a message another live worker holds is waited for, then delivered", async () => {
    const [id] = await enqueueMany(1, routeTo(server));
    const other = newLeaseOwner();
    const [due] = await queue.dueDestinations(clock);
    const [leased] = await queue.lease(due?.destination ?? "", {
      owner: other,
      limit: 1,
      now: clock,
      until: clock + 60_000,
    });
    const flushing = flushQueue(queue, { now, ids: [id ?? ""] });
    await Bun.sleep(150);
    expect(server.received).toHaveLength(0);
    await queue.settle({
      id: leased?.id ?? "",
      owner: other,
      at: clock,
      recipients: [{ index: 0, outcome: { state: "released" } }],
    });
    retireLeaseOwner(other);
    const result = await flushing;
    expect(result.waited).toBe(true);
    expect(server.received).toHaveLength(1);
  });

  test("a crashed worker's lease is taken over at once", async () => {
    const child = Bun.spawn([process.execPath, "-e", "0"]);
    await child.exited;
    const dead = `${hostname()}:${child.pid}:feedface`;
    const [id] = await enqueueMany(1, routeTo(server));
    const [due] = await queue.dueDestinations(clock);
    await queue.lease(due?.destination ?? "", {
      owner: dead,
      limit: 1,
      now: clock,
      until: clock + 3_600_000,
    });
    const result = await flushQueue(queue, { now });
    expect(result.attempts.map((a) => a.id)).toEqual([id ?? ""]);
    expect(server.received).toHaveLength(1);
  });

  test("a route whose password source is missing defers with the reason", async () => {
    const route: QueueRoute = {
      kind: "smarthost",
      host: "127.0.0.1",
      port: server.port,
      starttls: "never",
      auth: { username: "u", secret: { env: "SMTPKIT_TEST_UNSET_VARIABLE" } },
    };
    const [id] = await enqueueMany(1, route);
    await flushQueue(queue, { now });
    expect((await queue.get(id ?? ""))?.recipients[0]).toMatchObject({ state: "deferred" });
    expect((await queue.get(id ?? ""))?.recipients[0]?.lastError).toContain("SMTPKIT_TEST_UNSET_VARIABLE");
    expect(server.connections).toBe(0);
  });
});

describe("MX delivery", () => {
  let dns: DnsResponder;
  beforeEach(async () => {
    dns = await startDnsResponder({
      "b.test": { mx: [{ priority: 10, exchange: "mx.b.test" }] },
      "mx.b.test": { a: ["127.0.0.1"] },
      "nullmx.test": { mx: [{ priority: 0, exchange: "." }] },
    });
  });
  afterEach(async () => {
    await dns.close();
  });

  test("through the domain's MX host; an unknown domain fails at once with 5.1.2", async () => {
    const route: QueueRoute = { kind: "mx", port: server.port, starttls: "never" };
    await queue.enqueue(
      message(1),
      envelope("<a@a.test>", "b@b.test", "c@nowhere.test", "d@nullmx.test"),
      route,
    );
    const result = await flushQueue(queue, {
      now,
      resolver: createResolver(dns.server),
      dsnRoute: routeTo(server),
    });
    const outcomes = result.attempts
      .flatMap((a) => a.recipients.map((r) => [r.address, r.outcome.state, a.remoteMta ?? null] as const))
      .sort();
    expect(outcomes).toContainEqual(["b@b.test", "delivered", "mx.b.test"]);
    const failed = result.attempts.flatMap((a) => a.recipients).filter((r) => r.outcome.state === "failed");
    expect(
      failed.map((r) => [r.address, r.outcome.state === "failed" ? r.outcome.status : ""]).sort(),
    ).toEqual([
      ["c@nowhere.test", "5.1.2"],
      ["d@nullmx.test", "5.1.10"],
    ]);
    expect(server.received.filter((m) => m.from === "a@a.test").map((m) => m.to)).toEqual([["b@b.test"]]);
  });

  test("the port comes from the engine when the route names none (the CLI's SMTPKIT_MX_PORT)", async () => {
    await queue.enqueue(message(1), envelope("<a@a.test>", "b@b.test"), { kind: "mx", starttls: "never" });
    await flushQueue(queue, { now, resolver: createResolver(dns.server), mxPort: server.port });
    expect(server.received).toHaveLength(1);
  });
});

describe("runWorker", () => {
  test("delivers what is queued while it runs, and stops cleanly", async () => {
    const worker = runWorker(queue, { pollIntervalMs: 50 });
    const ids = await enqueueMany(5, routeTo(server));
    for (let i = 0; i < 200 && server.received.length < 5; i++) await Bun.sleep(10);
    await worker.stop();
    expect(server.received).toHaveLength(5);
    expect(await queue.existing(ids)).toEqual([]);
  });

  test("a deferred message waits for its next attempt", async () => {
    server.refuse.set("b@b.test", new SmtpError(450, "4.2.1", "busy"));
    const worker = runWorker(queue, { now, pollIntervalMs: 20 });
    const [id] = await enqueueMany(1, routeTo(server));
    for (let i = 0; i < 200 && (await queue.get(id ?? ""))?.recipients[0]?.state !== "deferred"; i++)
      await Bun.sleep(10);
    server.refuse.clear();
    await Bun.sleep(100);
    expect(server.received).toHaveLength(0);
    clock += 300_000;
    worker.wake();
    for (let i = 0; i < 200 && server.received.length === 0; i++) await Bun.sleep(10);
    await worker.stop();
    expect(server.received).toHaveLength(1);
  });

  test("stopping midway gives back what was not attempted", async () => {
    await enqueueMany(300, routeTo(server));
    const worker = runWorker(queue, { perDestination: 1, batchSize: 100 });
    for (let i = 0; i < 500 && server.received.length === 0; i++) await Bun.sleep(2);
    await worker.stop();
    const states = (await queue.list()).flatMap((e) => e.recipients.map((r) => r.state));
    expect(states.filter((s) => s === "active")).toEqual([]);
    expect(states.length + server.received.length).toBe(300);
  });
});
