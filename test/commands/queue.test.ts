import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { queueArguments } from "../../src/commands/queue.ts";
import { freePort } from "../interop/peers/ports.ts";
import { SmtpError, startTestServer, type TestServer } from "../queue/test-server.ts";
import { runCli } from "./run-cli.ts";

let dataHome: string;
let server: TestServer;
let env: Record<string, string>;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  dataHome = mkdtempSync(join(tmpdir(), "smtpkit-queue-cli-"));
  env = { XDG_DATA_HOME: dataHome };
  server.received.length = 0;
  server.refuse.clear();
});
afterEach(() => {
  rmSync(dataHome, { recursive: true, force: true });
});

const queueFile = (): string => join(dataHome, "smtpkit", "queue.sqlite");

async function sendQueued(port: number, ...more: string[]): Promise<string> {
  const result = await runCli(
    [
      "send",
      "--queue",
      "-s",
      `127.0.0.1:${port}`,
      "-f",
      "a@a.test",
      "-t",
      "b@b.test",
      "--subject",
      "hi",
      "--body",
      "hello",
      ...more,
    ],
    { env },
  );
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  const id = result.stdout.trim();
  expect(id).toMatch(/^[0-9A-Z]{16}$/);
  return id;
}

interface ListedMessage {
  id: string;
  state: string;
  sender: string;
  recipients: { address: string; state: string; attempts: number; lastError: string | null }[];
}

async function listJson(): Promise<ListedMessage[]> {
  const result = await runCli(["queue", "list", "--json"], { env });
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as ListedMessage[];
}

describe("send --queue, then the queue commands", () => {
  test("queued while the server is down, deferred by flush, delivered once it is up", async () => {
    const down = await freePort();
    const id = await sendQueued(down);

    const mailq = await runCli(["mailq"], { env });
    expect(mailq.code).toBe(0);
    expect(mailq.stdout).toContain(id);
    expect(mailq.stdout).toMatch(/queued\s+b@b\.test/);

    const flush = await runCli(["queue", "flush"], { env });
    expect(flush.code).toBe(75);
    expect(flush.stdout).toMatch(new RegExp(`${id}: <b@b\\.test> deferred .*refused.*next attempt in 5m`));

    const [listed] = await listJson();
    expect(listed).toMatchObject({ id, state: "deferred", sender: "a@a.test" });
    expect(listed?.recipients[0]).toMatchObject({ address: "b@b.test", state: "deferred", attempts: 1 });

    const show = await runCli(["queue", "show", id.toLowerCase(), "--raw"], { env });
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`Queue ID:   ${id}`);
    expect(show.stdout).toContain(`Route:      smtp://127.0.0.1:${down} (STARTTLS auto)`);
    expect(show.stdout).toMatch(/Attempts:\n {2}\S+ {2}<b@b\.test> {2}deferred/);
    expect(show.stdout).toContain("Subject: hi\r\n");
  });

  test("flush ID delivers it, prints the outcome and exits 0; the queue is empty after", async () => {
    const id = await sendQueued(server.port);
    const flush = await runCli(["queue", "flush", id, "--json"], { env });
    expect(flush.code).toBe(0);
    const report = JSON.parse(flush.stdout) as {
      attempts: { id: string; recipients: { state: string }[] }[];
      exitCode: number;
    };
    expect(report.exitCode).toBe(0);
    expect(report.attempts.map((a) => [a.id, a.recipients[0]?.state])).toEqual([[id, "delivered"]]);
    expect(server.received).toHaveLength(1);
    expect(Buffer.from(server.received[0]?.raw ?? new Uint8Array()).toString()).toContain("Subject: hi\r\n");
    expect((await runCli(["mailq"], { env })).stdout).toBe("Mail queue is empty\n");
  });

  test("a 5xx fails the recipient: exit 69, and retry-failed queues it again", async () => {
    server.refuse.set("b@b.test", new SmtpError(550, "5.1.1", "no such user"));
    const id = await sendQueued(server.port);
    const flush = await runCli(["queue", "flush", id, "--dsn-route", "smtp://127.0.0.1:9?starttls=never"], {
      env,
    });
    expect(flush.code).toBe(69);
    expect(flush.stdout).toContain(
      `${id}: <b@b.test> failed via 127.0.0.1 (550 5.1.1 no such user), status 5.1.1`,
    );
    expect(flush.stdout).toMatch(/delivery notification \w+ queued for the sender/);

    const again = await runCli(["queue", "flush", id], { env });
    expect(again.stderr).toContain("has nothing left to deliver");

    server.refuse.clear();
    const retry = await runCli(["queue", "retry-failed", id], { env });
    expect(retry.code).toBe(0);
    expect(retry.stderr).toContain("1 message with failed recipients queued again");
    const delivered = await runCli(["queue", "flush", id], { env });
    expect(delivered.code).toBe(0);
    expect(server.received).toHaveLength(1);
  });

  test("hold, release and delete take IDs from arguments or standard input", async () => {
    const down = await freePort();
    const a = await sendQueued(down);
    const b = await sendQueued(down);

    const hold = await runCli(["queue", "hold", "-"], { env, stdin: `${a}\n${b.toLowerCase()}\n` });
    expect(hold.code).toBe(0);
    expect(hold.stderr).toContain("2 messages held");
    expect((await listJson()).map((m) => m.state)).toEqual(["held", "held"]);

    const flush = await runCli(["queue", "flush", a], { env });
    expect(flush.code).toBe(75);
    expect(flush.stderr).toContain(`${a} is held`);

    expect((await runCli(["queue", "release", b], { env })).code).toBe(0);
    expect((await listJson()).map((m) => m.state)).toEqual(["held", "queued"]);

    const missing = await runCli(["queue", "delete", a, "0000000000000000"], { env });
    expect(missing.code).toBe(64);
    expect(missing.stderr).toContain("not in the queue: 0000000000000000");
    expect((await listJson()).map((m) => m.id)).toEqual([b]);

    const all = await runCli(["queue", "delete", "--all"], { env });
    expect(all.code).toBe(0);
    expect(all.stderr).toContain("1 message deleted");
    expect(await listJson()).toEqual([]);
  });

  test("stats --json counts by state and destination", async () => {
    const down = await freePort();
    await sendQueued(down);
    await sendQueued(down, "-t", "c@c.test");
    const stats = await runCli(["queue", "stats", "--json"], { env });
    expect(stats.code).toBe(0);
    const document = JSON.parse(stats.stdout) as {
      messages: number;
      recipients: Record<string, number>;
      destinations: { destination: string; recipients: Record<string, number> }[];
    };
    expect(document.messages).toBe(2);
    expect(document.recipients.queued).toBe(3);
    expect(document.destinations).toEqual([
      {
        destination: `127.0.0.1:${down}`,
        recipients: { queued: 3, active: 0, deferred: 0, held: 0, delivered: 0, failed: 0 },
      },
    ]);
  });

  test("the password is stored by reference, never in clear", async () => {
    const id = await sendQueued(
      server.port,
      "--user",
      "me",
      "--password-env",
      "SMTPKIT_TEST_SECRET",
      "--starttls",
      "never",
      "--allow-plaintext-auth",
    );
    const bytes = readFileSync(queueFile());
    expect(bytes.includes(Buffer.from("SMTPKIT_TEST_SECRET"))).toBe(true);
    const show = await runCli(["queue", "show", id, "--json"], { env });
    expect(JSON.parse(show.stdout)).toMatchObject({ route: { user: "me" } });
    const flush = await runCli(["queue", "flush", id], {
      env: { ...env, SMTPKIT_TEST_SECRET: "s3cret-value" },
    });
    expect(flush.code).toBe(0);
    expect(readFileSync(queueFile()).includes(Buffer.from("s3cret-value"))).toBe(false);
  });

  test("--queue with --user but no password source is refused", async () => {
    const result = await runCli(
      [
        "send",
        "--queue",
        "-s",
        "127.0.0.1:25",
        "-f",
        "a@a.test",
        "-t",
        "b@b.test",
        "--body",
        "x",
        "--user",
        "me",
      ],
      { env },
    );
    expect(result.code).toBe(64);
    expect(result.stderr).toContain("needs the password by reference");
  });

  test("send --queue --json", async () => {
    const result = await runCli(
      ["send", "--queue", "--json", "-s", "127.0.0.1:25", "-f", "a@a.test", "-t", "b@b.test", "--body", "x"],
      { env },
    );
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ recipients: 1, queue: queueFile() });
  });

  test("--data-dir puts the queue elsewhere", async () => {
    const other = join(dataHome, "elsewhere");
    const result = await runCli(
      [
        "send",
        "--queue",
        "--data-dir",
        other,
        "-s",
        "127.0.0.1:25",
        "-f",
        "a@a.test",
        "-t",
        "b@b.test",
        "--body",
        "x",
      ],
      { env },
    );
    expect(result.code).toBe(0);
    const listed = await runCli(["queue", "list", "--data-dir", other], { env });
    expect(listed.stdout).toContain(result.stdout.trim());
    expect((await runCli(["mailq"], { env })).stdout).toBe("Mail queue is empty\n");
  });
});

describe("queueArguments", () => {
  test("a lone '-' (which cac drops with all after it) is read from argv, flag values skipped", () => {
    const argv = ["bun", "cli.ts", "queue", "hold", "-", "--data-dir", "/d", "ABC", "--json", "--", "--odd"];
    expect(queueArguments(argv, { action: "hold", ids: [] })).toEqual({
      action: "hold",
      ids: ["-", "ABC", "--odd"],
    });
  });

  test("without '-', cac's reading stands", () => {
    expect(queueArguments(["bun", "cli.ts", "queue", "hold", "A"], { action: "hold", ids: ["A"] })).toEqual({
      action: "hold",
      ids: ["A"],
    });
  });
});

describe("usage errors", () => {
  test.each([
    [["queue"], "needs an action"],
    [["queue", "frobnicate"], "unknown queue action 'frobnicate'"],
    [["queue", "show", "nonsense"], "'nonsense' is not a queue ID"],
    [["queue", "hold"], "needs queue IDs"],
    [["queue", "list", "0000000000000000"], "takes no IDs"],
    [["queue", "delete", "0000000000000000", "--all"], "not both"],
    [["queue", "run", "--max-age", "soon"], "--max-age wants a duration"],
  ])("%j", async (args, message) => {
    const result = await runCli(args, { env });
    expect(result.code).toBe(64);
    expect(result.stderr).toContain(message);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
  });
});

describe("queue run", () => {
  test("delivers what is queued, logs each attempt, stops on SIGTERM with exit 0", async () => {
    const id = await sendQueued(server.port);
    const child = Bun.spawn(
      [
        process.execPath,
        join(import.meta.dir, "..", "..", "src", "cli.ts"),
        "queue",
        "run",
        "--hostname",
        "me.test",
      ],
      { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" },
    );
    for (let i = 0; i < 500 && server.received.length === 0; i++) await Bun.sleep(10);
    child.kill("SIGTERM");
    const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
    expect(code).toBe(0);
    expect(server.received).toHaveLength(1);
    expect(stderr).toContain(`${id}: <b@b.test> delivered via 127.0.0.1`);
    expect(stderr).toContain("queue worker stopped");
  });
});
