// The queue against real peers: Postfix's smtp-sink as the far end (down, soft- and hard-refusing),
// aiosmtpd refusing one recipient of several, our own `serve` catching the delivery status
// notifications (read back through its API and parsed with Python's email package), a SIGKILLed
// worker, and direct MX delivery through the loopback DNS responder.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parsePath } from "../../src/core/address.ts";
import { emptyMailParams, emptyRcptParams } from "../../src/core/esmtp-params.ts";
import { openQueue } from "../../src/queue/open-queue.ts";
import { type DnsResponder, startDnsResponder } from "../helpers/dns-responder.ts";
import { startAiosmtpd } from "./peers/aiosmtpd.ts";
import { freePort, LOOPBACK } from "./peers/ports.ts";
import { type ParsedHeader, parseWithPythonEmail } from "./peers/python-email.ts";
import { runProcess, startProcess } from "./peers/run-process.ts";
import { type SmtpSink, startSmtpSink } from "./peers/smtp-sink.ts";
import { makeTempDir, removeTempDir } from "./peers/temp-dir.ts";
import { latin1, type ServeProcess, splitReceived, startServe } from "./serve-process.ts";

const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");
/** A message that survives smtp-sink's dump format byte for byte: CRLF throughout, a dot-led line. */
const MESSAGE =
  "From: Alice <alice@a.test>\r\nTo: bob@b.test\r\nSubject: queued\r\nMessage-ID: <q1@a.test>\r\n\r\n" +
  ".a line that starts with a dot\r\nsecond line\r\n";

let work: string;
let env: Record<string, string>;
let catcher: ServeProcess;

beforeAll(async () => {
  catcher = await startServe({ memory: true, http: true, args: ["--quiet"] });
});
afterAll(async () => {
  await catcher.close();
});
beforeEach(async () => {
  if (work !== undefined) await removeTempDir(work);
  work = await makeTempDir("queue-interop");
  env = { XDG_DATA_HOME: work, XDG_CONFIG_HOME: work };
});
afterAll(async () => {
  if (work !== undefined) await removeTempDir(work);
});

function cli(args: string[], input?: string, more: Record<string, string> = {}) {
  return runProcess([process.execPath, CLI, ...args], {
    env: { ...env, ...more },
    stdin: input,
    timeoutMs: 120_000,
  });
}

async function queueRaw(port: number, to = "bob@b.test"): Promise<string> {
  const path = join(work, "message.eml");
  await writeFile(path, MESSAGE);
  const result = await cli([
    "send",
    "--queue",
    "-s",
    `${LOOPBACK}:${port}`,
    "-f",
    "alice@a.test",
    "-t",
    to,
    "--raw",
    path,
  ]);
  expect(result.stderr).toBe("");
  expect(result.exitCode).toBe(0);
  return result.stdout.trim();
}

const dsnRoute = (): string[] => ["--dsn-route", `smtp://${LOOPBACK}:${catcher.port}?starttls=never`];

interface Listed {
  id: string;
  recipients: {
    address: string;
    state: string;
    attempts: number;
    nextAttempt: string | null;
    lastAttempt: string | null;
  }[];
}

async function listed(): Promise<Listed[]> {
  const result = await cli(["queue", "list", "--json"]);
  expect(result.exitCode).toBe(0);
  return JSON.parse(result.stdout) as Listed[];
}

function field(group: ParsedHeader[] | undefined, name: string): string | undefined {
  return group?.find((h) => h.name.toLowerCase() === name.toLowerCase())?.value;
}

/** The notifications serve caught for `sender`, parsed with Python's email package. */
async function notificationsFor(sender: string, count: number) {
  const deadline = performance.now() + 20_000;
  for (;;) {
    const all = await catcher.messages();
    const mine = all.filter((m) => m.To.some((to) => to.Address === sender));
    if (mine.length >= count || performance.now() > deadline) {
      return Promise.all(
        mine.map(async (m) => parseWithPythonEmail(splitReceived(await catcher.raw(m.ID)).message)),
      );
    }
    await Bun.sleep(50);
  }
}

describe("against smtp-sink", () => {
  test("queued while the sink is down; flush after it starts delivers the same bytes", async () => {
    const port = await freePort();
    const id = await queueRaw(port);
    const early = await cli(["queue", "flush"]);
    expect(early.exitCode).toBe(75);
    await using sink = await startSmtpSink({ port });
    const flush = await cli(["queue", "flush", id]);
    expect(flush.exitCode).toBe(0);
    expect(flush.stdout).toContain(`${id}: <bob@b.test> delivered via ${LOOPBACK}`);
    const [arrived] = await sink.waitForMessages(1);
    expect(latin1(arrived?.raw ?? new Uint8Array())).toBe(MESSAGE);
    expect(arrived?.mailFrom).toBe("alice@a.test");
    expect(arrived?.rcptTos).toEqual(["bob@b.test"]);
    expect(await listed()).toEqual([]);
  });

  test("-r RCPT (4xx): deferred with the next attempt 300 s after the attempt; delivered once it stops", async () => {
    const port = await freePort();
    const id = await queueRaw(port);
    {
      await using _soft = await startSmtpSink({ port, softReject: ["RCPT"] });
      const flush = await cli(["queue", "flush"]);
      expect(flush.exitCode).toBe(75);
      expect(flush.stdout).toMatch(
        /deferred via 127\.0\.0\.1 \(450 4\.3\.0 Error: command failed\), next attempt in 5m/,
      );
    }
    const [entry] = await listed();
    const recipient = entry?.recipients[0];
    expect(recipient).toMatchObject({ state: "deferred", attempts: 1 });
    const wait = Date.parse(recipient?.nextAttempt ?? "") - Date.parse(recipient?.lastAttempt ?? "");
    expect(wait).toBe(300_000);

    await using sink = await startSmtpSink({ port });
    // Not due yet: a worker leaves it alone; flush tries it now.
    const flush = await cli(["queue", "flush", id]);
    expect(flush.exitCode).toBe(0);
    expect((await sink.waitForMessages(1)).map((m) => latin1(m.raw))).toEqual([MESSAGE]);
    expect(await listed()).toEqual([]);
  });

  test("-f RCPT (5xx): failed, and a notification reaches the sender at serve; Python reads it", async () => {
    const port = await freePort();
    await using _hard = await startSmtpSink({ port, hardReject: ["RCPT"] });
    const sender = "dsn-hard@a.test";
    const path = join(work, "message.eml");
    await writeFile(path, MESSAGE);
    const sent = await cli([
      "send",
      "--queue",
      "-s",
      `${LOOPBACK}:${port}`,
      "-f",
      sender,
      "-t",
      "bob@b.test",
      "--raw",
      path,
      "--envid",
      "env-77",
    ]);
    const id = sent.stdout.trim();
    const flush = await cli(["queue", "flush", id, "--hostname", "queue.test", ...dsnRoute()]);
    expect(flush.exitCode).toBe(69);
    const [dsn] = await notificationsFor(sender, 1);
    expect(dsn?.defects).toEqual([]);
    expect(dsn?.structure).toBe("multipart/report(text/plain,message/delivery-status,message/rfc822)");
    const header = (name: string) => dsn?.headers.find((h) => h.name.toLowerCase() === name)?.value;
    expect(header("content-type")).toContain('report-type="delivery-status"');
    expect(header("from")).toBe("Mail Delivery System <MAILER-DAEMON@queue.test>");
    expect(header("subject")).toBe("Undelivered Mail Returned to Sender");
    const [, statusPart, original] = dsn?.parts ?? [];
    const [perMessage, perRecipient] = statusPart?.statusGroups ?? [];
    expect(field(perMessage, "Reporting-MTA")).toBe("dns; queue.test");
    expect(field(perMessage, "Original-Envelope-Id")).toBe("env-77");
    expect(field(perMessage, "Arrival-Date")).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
    expect(field(perRecipient, "Final-Recipient")).toBe("rfc822; bob@b.test");
    expect(field(perRecipient, "Action")).toBe("failed");
    expect(field(perRecipient, "Status")).toBe("5.3.0");
    expect(field(perRecipient, "Remote-MTA")).toBe("dns; 127.0.0.1");
    expect(field(perRecipient, "Diagnostic-Code")).toBe("smtp; 500 5.3.0 Error: command failed");
    expect(field(perRecipient, "Last-Attempt-Date")).toMatch(/\+0000$/);
    expect(original?.message?.headers.find((h) => h.name === "Subject")?.value).toBe("queued");
    expect(dsn?.parts[0]?.text).toContain("<bob@b.test>");
    // The notification came from <>: serve saw an empty sender.
    const summary = (await catcher.messages()).find((m) => m.To.some((to) => to.Address === sender));
    expect(summary?.From?.Address ?? "").toBe("MAILER-DAEMON@queue.test");
    const [entry] = await listed();
    expect(entry?.recipients[0]?.state).toBe("failed");
  });

  test("SIGKILL the worker midway through 2,000 messages; after a restart every one arrived", async () => {
    const total = 2000;
    await using sink = await startSmtpSink({});
    const queue = openQueue({ path: join(work, "smtpkit", "queue.sqlite") });
    const route = { kind: "smarthost" as const, host: LOOPBACK, port: sink.port, starttls: "never" as const };
    await Promise.all(
      Array.from({ length: total }, (_, i) =>
        queue.enqueue(
          new TextEncoder().encode(
            `Subject: crash ${i}\r\nMessage-ID: <crash-${i}@a.test>\r\n\r\nbody ${i}\r\n`,
          ),
          {
            from: parsePath("<alice@a.test>"),
            mailParams: emptyMailParams(),
            recipients: [{ path: parsePath("<bob@b.test>"), params: emptyRcptParams() }],
          },
          route,
        ),
      ),
    );
    const dumps = sink.dumpDir ?? "";
    const first = startProcess([process.execPath, CLI, "queue", "run", "--quiet", "--per-destination", "2"], {
      env,
    });
    let arrivedAtKill = 0;
    for (let i = 0; i < 3000; i++) {
      arrivedAtKill = (await readdir(dumps)).length;
      if (arrivedAtKill >= 100) break;
      await Bun.sleep(5);
    }
    first.kill("SIGKILL");
    expect((await first.done).signal).toBe("SIGKILL");
    const leftAtKill = (await queue.stats()).messages;
    expect(leftAtKill).toBeGreaterThan(0);

    const second = startProcess([process.execPath, CLI, "queue", "run", "--quiet"], {
      env,
    });
    for (let i = 0; i < 6000 && (await queue.stats()).messages > 0; i++) await Bun.sleep(10);
    second.kill("SIGTERM");
    expect((await second.done).exitCode).toBe(0);
    expect((await queue.stats()).messages).toBe(0);
    await queue.close();

    const messages = await sink.waitForMessages(total, 60_000);
    const seen = new Set(messages.map((m) => /Subject: crash (\d+)/.exec(latin1(m.raw))?.[1]));
    expect(seen.size).toBe(total);
    // At least once, never zero times; duplicates are the ones in flight when the worker died.
    expect(messages.length - total).toBeLessThan(total);
  });
});

describe("against aiosmtpd", () => {
  test("several recipients at one destination, one refused: the others get it once, the refused one bounces", async () => {
    await using server = await startAiosmtpd({
      rcptReplies: { "nobody@b.test": "550 5.1.1 No such user here" },
    });
    const sender = "dsn-partial@a.test";
    const path = join(work, "message.eml");
    await writeFile(path, MESSAGE);
    const sent = await cli([
      "send",
      "--queue",
      "-s",
      `${LOOPBACK}:${server.port}`,
      "--starttls",
      "never",
      "-f",
      sender,
      "-t",
      "x@b.test,nobody@b.test,y@b.test",
      "--raw",
      path,
    ]);
    expect(sent.exitCode).toBe(0);
    const flush = await cli(["queue", "flush", ...dsnRoute()]);
    expect(flush.exitCode).toBe(69);
    const messages = await server.waitForMessages(1);
    expect(messages.map((m) => m.rcptTos)).toEqual([["x@b.test", "y@b.test"]]);
    expect(latin1(messages[0]?.raw ?? new Uint8Array())).toBe(MESSAGE);
    const [dsn] = await notificationsFor(sender, 1);
    const groups = dsn?.parts[1]?.statusGroups ?? [];
    expect(groups.slice(1).map((g) => field(g, "Final-Recipient"))).toEqual(["rfc822; nobody@b.test"]);
    expect(field(groups[1], "Diagnostic-Code")).toBe("smtp; 550 5.1.1 No such user here");
    expect(dsn?.parts[0]?.text).toContain("nobody@b.test");
    // Nothing more goes to aiosmtpd on a second flush: the delivered ones are done.
    await cli(["queue", "flush"]);
    expect((await server.messages()).length).toBe(1);
  });
});

describe("direct MX delivery", () => {
  let dns: DnsResponder;
  beforeAll(async () => {
    dns = await startDnsResponder({
      "b.test": { mx: [{ priority: 10, exchange: "mx.b.test" }] },
      "mx.b.test": { a: [LOOPBACK] },
    });
  });
  afterAll(async () => {
    await dns.close();
  });

  test("send --queue without a server, then flush through the loopback DNS responder", async () => {
    await using sink: SmtpSink = await startSmtpSink({});
    const path = join(work, "message.eml");
    await writeFile(path, MESSAGE);
    const sent = await cli(["send", "--queue", "-f", "alice@a.test", "-t", "bob@b.test", "--raw", path]);
    expect(sent.exitCode).toBe(0);
    const [entry] = await listed();
    expect(entry?.recipients[0]?.state).toBe("queued");
    const flush = await cli(["queue", "flush", "--dns", dns.server], undefined, {
      SMTPKIT_MX_PORT: String(sink.port),
    });
    expect(flush.stderr).toBe("");
    expect(flush.exitCode).toBe(0);
    expect(flush.stdout).toContain("<bob@b.test> delivered via mx.b.test");
    const [arrived] = await sink.waitForMessages(1);
    expect(latin1(arrived?.raw ?? new Uint8Array())).toBe(MESSAGE);
    expect(dns.queries.some((q) => q.name === "b.test" && q.type === "MX")).toBe(true);
  });
});
