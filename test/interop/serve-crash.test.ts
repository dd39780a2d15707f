// Durability and shutdown of `smtpkit serve`: a 250 is given only after the store committed the
// message, so SIGKILL in the middle of a run loses nothing that was acknowledged; SIGTERM lets a
// transaction in flight finish and closes the store cleanly.

import { afterEach, describe, expect, test } from "bun:test";
import { PreparedMessage } from "../../src/client/prepared-message.ts";
import { SmtpClient } from "../../src/client/smtp-client.ts";
import { parsePath } from "../../src/core/address.ts";
import type { Envelope } from "../../src/core/envelope.ts";
import { RawSmtpClient } from "../server/raw-smtp-client.ts";
import { LOOPBACK } from "./peers/ports.ts";
import { requirePeer } from "./peers/require-peer.ts";
import { onTestProcessExit } from "./peers/run-process.ts";
import { makeTempDir, removeTempDir } from "./peers/temp-dir.ts";
import {
  bytesOf,
  latin1,
  SERVE_HOSTNAME,
  type ServeProcess,
  splitReceived,
  startServe,
} from "./serve-process.ts";

/** Acknowledged messages to see from smtp-source, and from our own clients, before the kill. */
const SOURCE_ACKS_BEFORE_KILL = 300;
const OWN_ACKS_BEFORE_KILL = 20;
/** Far more than gets sent before the kill: the run is cut short, never finished. */
const SOURCE_MESSAGES = 1_000_000;
/** A hung smtp-source fails the test instead of hanging it. */
const SOURCE_TIMEOUT_MS = 60_000;
const QUEUED = /<<< 250 2\.0\.0 Ok: queued as (\S+)/;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * smtp-source -v, read as it runs: every "250 ... queued as ID" it printed is a message it got a
 * 250 for. Output is read in full (a verbose run prints far more than a log tail keeps).
 */
function countingSource(port: number) {
  const child = Bun.spawn(
    [
      requirePeer("smtp-source"),
      "-v",
      "-s",
      "8",
      "-m",
      String(SOURCE_MESSAGES),
      "-d",
      "-l",
      "1024",
      "-f",
      "source@a.test",
      "-t",
      "sink@b.test",
      `${LOOPBACK}:${port}`,
    ],
    { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
  );
  const unregister = onTestProcessExit(() => child.kill("SIGKILL"));
  const timer = setTimeout(() => child.kill("SIGKILL"), SOURCE_TIMEOUT_MS);
  const ids: string[] = [];
  let waiter: { count: number; resolve: () => void } | undefined;
  const reading = (async () => {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of child.stderr) {
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const id = QUEUED.exec(line)?.[1];
        if (id !== undefined) ids.push(id);
      }
      if (waiter && ids.length >= waiter.count) waiter.resolve();
    }
  })();
  return {
    ids,
    /** Resolves once count messages were acknowledged (or the run ended first). */
    acknowledged(count: number): Promise<void> {
      if (ids.length >= count) return Promise.resolve();
      return new Promise((resolve) => {
        waiter = { count, resolve };
        reading.then(resolve);
      });
    },
    /** Waits for the end of the run (killing it if it outlives the server), and for its last output. */
    async finish(): Promise<number> {
      const exited = await Promise.race([child.exited, Bun.sleep(5_000).then(() => undefined)]);
      if (exited === undefined) child.kill("SIGKILL");
      const code = await child.exited;
      await reading;
      clearTimeout(timer);
      unregister();
      return code;
    },
  };
}

function envelope(from: string, to: string): Envelope {
  return {
    from: parsePath(`<${from}>`),
    mailParams: { other: [] },
    recipients: [{ path: parsePath(`<${to}>`), params: { other: [] } }],
  };
}

interface Acknowledged {
  id: string;
  message: Uint8Array;
}

/**
 * Our own client sends numbered messages over one connection until the server goes away,
 * recording each message that got its 250 and the queue id the 250 named.
 */
async function numberedSender(port: number, name: string, acked: Acknowledged[]): Promise<void> {
  let client: SmtpClient;
  try {
    client = await SmtpClient.connect({ host: LOOPBACK, port, helo: `${name}.test`, starttls: "never" });
  } catch {
    return;
  }
  for (let n = 1; ; n++) {
    const message = bytesOf(
      `Subject: ${name} ${n}\r\nX-Number: ${n}\r\n\r\n${`${name} ${n} `.repeat(50)}\r\n`,
    );
    try {
      const result = await client.send(envelope(`${name}@a.test`, "b@b.test"), new PreparedMessage(message));
      const id = /queued as (\S+)/.exec(result.final?.lines.join(" ") ?? "")?.[1];
      if (!result.ok || id === undefined) break;
      acked.push({ id, message });
    } catch {
      break;
    }
  }
  client.close();
}

describe("SIGKILL", () => {
  test("in the middle of an smtp-source run: after a restart, every message that got a 250 is stored", async () => {
    const dataDir = await makeTempDir("serve-crash");
    cleanups.push(() => removeTempDir(dataDir));
    // No retention limit: pruning must not be mistaken for loss.
    const args = ["--max-messages", "0"];
    const first = await startServe({ dataDir, args });
    cleanups.push(() => first.close());

    const source = countingSource(first.port);
    const own: Acknowledged[] = [];
    const senders = [
      numberedSender(first.port, "one", own),
      numberedSender(first.port, "two", own),
      numberedSender(first.port, "three", own),
    ];
    await source.acknowledged(SOURCE_ACKS_BEFORE_KILL);
    while (own.length < OWN_ACKS_BEFORE_KILL && first.isRunning()) await Bun.sleep(5);
    await first.kill();
    expect(await first.exited).not.toBe(0);
    const sourceExit = await source.finish();
    await Promise.all(senders);

    // The run was cut short: smtp-source failed, and it had not sent everything.
    expect(sourceExit).not.toBe(0);
    expect(source.ids.length).toBeGreaterThanOrEqual(SOURCE_ACKS_BEFORE_KILL);
    expect(source.ids.length).toBeLessThan(SOURCE_MESSAGES);
    expect(own.length).toBeGreaterThanOrEqual(OWN_ACKS_BEFORE_KILL);

    await using second = await startServe({ dataDir, args });
    const stored = new Set((await second.messages()).map((m) => m.ID));
    const missing = [...source.ids, ...own.map((m) => m.id)].filter((id) => !stored.has(id));
    expect(missing).toEqual([]);
    // A message may be stored without its 250 having arrived; never the other way round.
    expect(stored.size).toBeGreaterThanOrEqual(source.ids.length + own.length);
    for (const { id, message } of own)
      expect(latin1(splitReceived(await second.raw(id)).message)).toBe(latin1(message));

    // The reopened store is healthy: ready, and it takes new mail.
    expect(await (await second.api("/readyz")).text()).toBe("ok");
    const after: Acknowledged[] = [];
    const client = await SmtpClient.connect({
      host: LOOPBACK,
      port: second.port,
      helo: "after.test",
      starttls: "never",
    });
    const message = bytesOf("Subject: after the crash\r\n\r\nstill fine\r\n");
    const result = await client.send(envelope("a@a.test", "b@b.test"), new PreparedMessage(message));
    await client.quit();
    expect(result.ok).toBe(true);
    after.push({ id: /queued as (\S+)/.exec(result.final?.lines.join(" ") ?? "")?.[1] ?? "", message });
    expect(latin1(splitReceived(await second.raw(after[0]?.id ?? "")).message)).toBe(latin1(message));
    expect(await second.count()).toBe(stored.size + 1);
  });
});

describe("SIGTERM", () => {
  async function greeted(serve: ServeProcess): Promise<RawSmtpClient> {
    const client = await RawSmtpClient.connect(serve.port);
    expect(await client.reply()).toBe(`220 ${SERVE_HOSTNAME} ESMTP smtpkit`);
    expect(await client.command("EHLO client.test\r\n")).toStartWith(`250-${SERVE_HOSTNAME}\n`);
    return client;
  }

  test("an idle client gets 421 at once, a message in flight is finished and kept, then serve exits 0", async () => {
    const dataDir = await makeTempDir("serve-term");
    cleanups.push(() => removeTempDir(dataDir));
    const serve = await startServe({ dataDir });
    cleanups.push(() => serve.close());

    const idle = await greeted(serve);
    const busy = await greeted(serve);
    busy.send("MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n");
    expect(await busy.reply()).toBe("250 2.1.0 Sender ok");
    expect(await busy.reply()).toBe("250 2.1.5 Recipient ok");
    expect(await busy.reply()).toStartWith("354 ");
    busy.send("Subject: in flight\r\n\r\nfirst half, ");

    process.kill(serve.pid, "SIGTERM");
    expect(await idle.reply()).toBe(`421 4.3.2 ${SERVE_HOSTNAME} Service shutting down`);
    await idle.closed;

    const queued = await busy.command("second half\r\n.\r\n");
    expect(queued).toMatch(/^250 2\.0\.0 Ok: queued as \S+$/);
    expect(await busy.reply()).toBe(`421 4.3.2 ${SERVE_HOSTNAME} Service shutting down`);
    await busy.closed;
    expect(await serve.exited).toBe(0);

    await using again = await startServe({ dataDir });
    const id = queued.split(" ").at(-1) ?? "";
    expect(latin1(splitReceived(await again.raw(id)).message)).toBe(
      "Subject: in flight\r\n\r\nfirst half, second half\r\n",
    );
  });

  test("SIGINT works the same: serve exits 0 and the store reopens with everything", async () => {
    const dataDir = await makeTempDir("serve-int");
    cleanups.push(() => removeTempDir(dataDir));
    const serve = await startServe({ dataDir });
    cleanups.push(() => serve.close());
    const client = await greeted(serve);
    client.send("MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n");
    await client.reply();
    await client.reply();
    expect(await client.reply()).toStartWith("354 ");
    expect(await client.command("Subject: before sigint\r\n\r\nx\r\n.\r\n")).toMatch(/^250 /);
    process.kill(serve.pid, "SIGINT");
    expect(await client.reply()).toBe(`421 4.3.2 ${SERVE_HOSTNAME} Service shutting down`);
    expect(await serve.exited).toBe(0);
    await using again = await startServe({ dataDir });
    expect((await again.search("subject:sigint")).length).toBe(1);
  });
});
