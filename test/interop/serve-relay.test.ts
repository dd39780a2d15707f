import { X509Certificate } from "node:crypto";
// `serve --relay` against real peers: aiosmtpd as a smarthost that insists on STARTTLS (with the
// test CA's certificate) and AUTH, swaks as the submitting client, Postfix's smtp-sink as an
// upstream that is down at first, the release API, and direct MX delivery through the loopback
// DNS responder. serve runs with --quiet: its ready line names the relay instead of the mailbox
// without --relay-and-keep, so readiness is its banner.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestPki, type PemFiles, type TestPki, writePemFiles } from "../helpers/certs.ts";
import { type DnsResponder, startDnsResponder } from "../helpers/dns-responder.ts";
import { startAiosmtpd } from "./peers/aiosmtpd.ts";
import { freePort, LOOPBACK } from "./peers/ports.ts";
import { runProcess } from "./peers/run-process.ts";
import { startSmtpSink } from "./peers/smtp-sink.ts";
import { runSwaks } from "./peers/swaks.ts";
import {
  bytesOf,
  latin1,
  queuedIds,
  runServeCommand,
  SERVE_HOSTNAME,
  type ServeProcess,
  splitReceived,
  startServe,
} from "./serve-process.ts";

const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");
const RELAY_USER = "relay";
const RELAY_PASSWORD = "upstream s3cret";
const CLIENT_USER = "alice";
const CLIENT_PASSWORD = "client s3cret";
/** Dot-led lines, an 8-bit octet, an empty line: what a relay could get wrong on the way through. */
const MESSAGE =
  "Subject: relayed\r\nMessage-ID: <relay-1@a.test>\r\n\r\n.leading dot\r\n..two dots\r\n\r\ncaf\xe9\r\nend\r\n";
/** swaks ends what it reads with one more CRLF before the final dot (see serve-deliver.test.ts). */
const SENT = `${MESSAGE}\r\n`;
/** smtp-sink's dumps cannot tell an 8-bit octet apart reliably; keep its messages 7-bit. */
const SINK_MESSAGE = "Subject: to the sink\r\n\r\n.a dot-led line\r\nsecond line\r\n";
const SINK_SENT = `${SINK_MESSAGE}\r\n`;

let pki: TestPki;
let pem: PemFiles;
let work: string;
let users: string;

beforeAll(async () => {
  pki = await createTestPki();
  pem = await writePemFiles({
    "server.pem": pki.server.cert,
    "server-key.pem": pki.server.key,
    "ca.pem": pki.ca.cert,
  });
  work = await mkdtemp(join(tmpdir(), "smtpkit-serve-relay-"));
  users = join(work, "users");
  await writeFile(users, `${CLIENT_USER}:${CLIENT_PASSWORD}\n`);
});
afterAll(async () => {
  await pem?.remove();
  if (work) await rm(work, { recursive: true, force: true });
});

function swaks(port: number, to: string, ...more: string[]) {
  return runSwaks(
    [
      ["--server", `${LOOPBACK}:${port}`, "--helo", "client.test"],
      ["--from", "alice@a.test", "--to", to, "--data", "-"],
      more,
    ].flat(),
    { input: bytesOf(SENT.slice(0, -2)) },
  );
}

function swaksSink(port: number, to: string) {
  return runSwaks(
    [
      "--server",
      `${LOOPBACK}:${port}`,
      "--helo",
      "client.test",
      "--from",
      "alice@a.test",
      "--to",
      to,
      "--data",
      "-",
    ],
    { input: SINK_MESSAGE },
  );
}

function cli(args: string[]) {
  return runProcess([process.execPath, CLI, ...args], { timeoutMs: 60_000 });
}

interface Listed {
  id: string;
  recipients: { address: string; state: string; attempts: number }[];
}

async function queueList(dataDir: string | undefined): Promise<Listed[]> {
  const result = await cli(["queue", "list", "--json", "--data-dir", dataDir ?? ""]);
  expect(result.stderr).toBe("");
  expect(result.exitCode).toBe(0);
  return JSON.parse(result.stdout) as Listed[];
}

/** Polls the queue until `done` holds for what it lists (the worker runs in serve's process). */
async function queueUntil(
  dataDir: string | undefined,
  done: (listed: Listed[]) => boolean,
  what: string,
): Promise<Listed[]> {
  for (let i = 0; i < 200; i++) {
    const listed = await queueList(dataDir);
    if (done(listed)) return listed;
    await Bun.sleep(50);
  }
  throw new Error(`the queue never showed ${what}: ${JSON.stringify(await queueList(dataDir))}`);
}

function expectTrace(raw: Uint8Array, sent: string): string {
  const { received, message } = splitReceived(raw);
  expect(latin1(message)).toBe(sent);
  expect(received).toMatch(
    new RegExp(`^Received: from client\\.test \\(\\[127\\.0\\.0\\.1\\]\\)\r\n\tby ${SERVE_HOSTNAME} `),
  );
  return received;
}

describe("to a smarthost whose certificate no CA vouches for, pinned with --relay-tls-fingerprint", () => {
  test("relayed over STARTTLS to the pinned certificate", async () => {
    const smarthost = await startAiosmtpd({ starttls: pki.unknownCa, requireStarttls: true });
    const serve = await startServe({
      args: [
        "--quiet",
        ["--relay", `smtp://${LOOPBACK}:${smarthost.port}`],
        ["--relay-tls-fingerprint", new X509Certificate(pki.unknownCa.cert).fingerprint256],
        ["--relay-domains", "example.com"],
      ].flat(),
    });
    try {
      expect((await swaks(serve.port, "bob@example.com")).exitCode).toBe(0);
      const [arrived] = await smarthost.waitForMessages(1);
      expect(arrived?.tls).toBe(true);
      expect(arrived?.rcptTos).toEqual(["bob@example.com"]);
    } finally {
      await serve.close();
      await smarthost.close();
    }
  });
});

describe("to a smarthost that requires STARTTLS and AUTH (aiosmtpd)", () => {
  let serve: ServeProcess;
  let smarthost: Awaited<ReturnType<typeof startAiosmtpd>>;

  beforeAll(async () => {
    smarthost = await startAiosmtpd({
      starttls: pki.server,
      requireStarttls: true,
      auth: { users: { [RELAY_USER]: RELAY_PASSWORD }, required: true },
    });
    serve = await startServe({
      args: [
        "--quiet",
        ["--relay", `smtp://${RELAY_USER}@${LOOPBACK}:${smarthost.port}`],
        ["--relay-password-env", "RELAY_PASSWORD"],
        ["--relay-ca", pem.paths["ca.pem"] ?? ""],
        ["--relay-domains", "example.com"],
        ["--relay-to", "ann@other.org"],
        ["--auth-users", users],
      ].flat(),
      env: { RELAY_PASSWORD },
    });
  });
  afterAll(async () => {
    await serve?.close();
    await smarthost?.close();
  });

  test("relayed over STARTTLS with AUTH; the bytes are what was sent, after our Received line", async () => {
    const sent = await swaks(serve.port, "bob@example.com");
    expect(sent.exitCode).toBe(0);
    const [queueId] = queuedIds(sent.transcript);
    const [arrived] = await smarthost.waitForMessages(1);
    expect(arrived?.mailFrom).toBe("alice@a.test");
    expect(arrived?.rcptTos).toEqual(["bob@example.com"]);
    expect(arrived?.tls).toBe(true);
    expect(arrived?.authLogin).toBe(RELAY_USER);
    expectTrace(arrived?.raw ?? new Uint8Array(), SENT);
    // Relay only: nothing stays in the catcher, and the queue lets go of delivered mail.
    expect(await serve.count()).toBe(0);
    await queueUntil(serve.dataDir, (listed) => !listed.some((m) => m.id === queueId), "the message gone");
  });

  test("unauthenticated, to a domain not in --relay-domains: 550 5.7.1 at RCPT; the allowed one still goes", async () => {
    const before = (await smarthost.messages()).length;
    const refused = await swaks(serve.port, "y@other.org");
    expect(refused.exitCode).not.toBe(0);
    expect(refused.transcript).toMatch(/<\*\* +550 5\.7\.1 /);
    expect(refused.transcript).not.toContain("queued as");

    const mixed = await swaks(serve.port, "y@other.org,ann@other.org,z@mail.example.com");
    expect(mixed.transcript).toMatch(/RCPT TO:<y@other\.org>\r?\n<\*\* +550 5\.7\.1 /);
    expect(queuedIds(mixed.transcript)).toHaveLength(1);
    const messages = await smarthost.waitForMessages(before + 1);
    expect(messages.slice(before).map((m) => m.rcptTos)).toEqual([["ann@other.org", "z@mail.example.com"]]);
  });

  test("a client that authenticated against --auth-users may relay anywhere", async () => {
    const before = (await smarthost.messages()).length;
    const sent = await swaks(
      serve.port,
      "y@other.org",
      ...["--auth", "PLAIN", "--auth-user", CLIENT_USER, "--auth-password", CLIENT_PASSWORD],
    );
    expect(sent.exitCode).toBe(0);
    const messages = await smarthost.waitForMessages(before + 1);
    expect(messages.slice(before).map((m) => m.rcptTos)).toEqual([["y@other.org"]]);
    const received = expectTrace(messages[before]?.raw ?? new Uint8Array(), SENT);
    expect(received).toContain(" with ESMTPA ");
  });

  test("wrong credentials grant nothing", async () => {
    const sent = await swaks(
      serve.port,
      "y@other.org",
      ...["--auth", "PLAIN", "--auth-user", CLIENT_USER, "--auth-password", "wrong"],
    );
    expect(sent.exitCode).not.toBe(0);
    expect(sent.transcript).toMatch(/<\*\* +535 /);
  });
});

describe("to smtp-sink", () => {
  test("the upstream is down at first: the message stays queued; once it is up, queue flush delivers it", async () => {
    const port = await freePort();
    await using serve = await startServe({
      args: [
        "--quiet",
        "--relay",
        `smtp://${LOOPBACK}:${port}?starttls=never`,
        "--relay-domains",
        "example.com",
      ],
    });
    const sent = await swaksSink(serve.port, "bob@example.com");
    expect(sent.exitCode).toBe(0);
    const [id] = queuedIds(sent.transcript);
    // The in-process worker tried at once, found nobody listening, and deferred it (next try in 5 min).
    const [deferred] = await queueUntil(
      serve.dataDir,
      (listed) => listed[0]?.recipients[0]?.state === "deferred",
      "a deferred recipient",
    );
    expect(deferred?.id).toBe(id ?? "");
    expect(deferred?.recipients).toMatchObject([
      { address: "bob@example.com", state: "deferred", attempts: 1 },
    ]);

    await using sink = await startSmtpSink({ port });
    // flush from another process while serve's worker runs: leases keep them from both delivering it.
    const flush = await cli(["queue", "flush", "--data-dir", serve.dataDir ?? ""]);
    expect(flush.exitCode).toBe(0);
    expect(await queueList(serve.dataDir)).toEqual([]);
    const arrived = await sink.waitForMessages(1);
    expect(arrived.map((m) => [m.mailFrom, m.rcptTos])).toEqual([["alice@a.test", ["bob@example.com"]]]);
    expectTrace(arrived[0]?.raw ?? new Uint8Array(), SINK_SENT);
  });

  test("--relay-and-keep: every message is kept; the relayable recipients are relayed too", async () => {
    await using sink = await startSmtpSink({});
    await using serve = await startServe({
      args: [
        "--quiet",
        "--relay-and-keep",
        ["--relay", `smtp://${LOOPBACK}:${sink.port}?starttls=never`],
        ["--relay-domains", "example.com"],
      ].flat(),
    });
    const sent = await swaksSink(serve.port, "bob@example.com,y@other.org");
    expect(sent.exitCode).toBe(0);
    expect(sent.transcript).not.toContain("550");
    const arrived = await sink.waitForMessages(1);
    expect(arrived.map((m) => m.rcptTos)).toEqual([["bob@example.com"]]);
    const relayedRaw = arrived[0]?.raw ?? new Uint8Array();
    expectTrace(relayedRaw, SINK_SENT);
    const kept = await serve.messages();
    expect(kept).toHaveLength(1);
    expect(latin1(await serve.raw(kept[0]?.ID ?? ""))).toBe(latin1(relayedRaw));
  });

  test("the release API relays a caught message to a new recipient through the queue", async () => {
    await using sink = await startSmtpSink({});
    await using serve = await startServe({
      args: [
        "--quiet",
        "--relay-and-keep",
        ["--relay", `smtp://${LOOPBACK}:${sink.port}?starttls=never`],
        ["--relay-to", "new@example.com"],
      ].flat(),
    });
    // Caught only: caught@elsewhere.test may not be relayed.
    const sent = await swaksSink(serve.port, "caught@elsewhere.test");
    expect(sent.exitCode).toBe(0);
    const [id] = queuedIds(sent.transcript);
    const stored = await serve.raw(id ?? "");

    const refused = await fetch(`${serve.apiUrl}/api/v1/message/${id}/release`, {
      method: "POST",
      body: JSON.stringify({ To: ["y@other.org"] }),
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { Error: string }).Error).toContain("may not relay to <y@other.org>");

    const released = await serve.api(`/api/v1/message/${id}/release`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ To: ["new@example.com"] }),
    });
    expect(await released.text()).toBe("ok");
    const arrived = await sink.waitForMessages(1);
    expect(arrived.map((m) => [m.mailFrom, m.rcptTos])).toEqual([["alice@a.test", ["new@example.com"]]]);
    // As caught, our Received line included.
    expect(latin1(arrived[0]?.raw ?? new Uint8Array())).toBe(latin1(stored));
  });

  test("without --relay, release is a 400", async () => {
    await using serve = await startServe({ memory: true, args: ["--quiet"] });
    const sent = await swaksSink(serve.port, "caught@elsewhere.test");
    const [id] = queuedIds(sent.transcript);
    const response = await fetch(`${serve.apiUrl}/api/v1/message/${id}/release`, {
      method: "POST",
      body: JSON.stringify({ To: ["new@example.com"] }),
    });
    expect(response.status).toBe(400);
  });
});

describe("--relay mx", () => {
  let dns: DnsResponder;
  beforeAll(async () => {
    dns = await startDnsResponder({
      "example.com": { mx: [{ priority: 10, exchange: "mx.example.com" }] },
      "mx.example.com": { a: [LOOPBACK] },
    });
  });
  afterAll(async () => {
    await dns?.close();
  });

  test("each recipient's MX, looked up through --dns, on the port SMTPKIT_MX_PORT names", async () => {
    await using sink = await startSmtpSink({});
    await using serve = await startServe({
      args: ["--quiet", "--relay", "mx", "--dns", dns.server, "--relay-domains", "example.com"],
      env: { SMTPKIT_MX_PORT: String(sink.port) },
    });
    const sent = await swaksSink(serve.port, "bob@example.com");
    expect(sent.exitCode).toBe(0);
    const arrived = await sink.waitForMessages(1);
    expect(arrived.map((m) => m.rcptTos)).toEqual([["bob@example.com"]]);
    expectTrace(arrived[0]?.raw ?? new Uint8Array(), SINK_SENT);
    expect(dns.queries.some((q) => q.name === "example.com" && q.type === "MX")).toBe(true);
  });
});

describe("start-up", () => {
  test("a bad relay flag stops serve with 64 before it listens", async () => {
    const result = await runServeCommand(["--memory", "--relay", "mx"]);
    expect(result.exitCode).toBe(64);
    expect(result.stderr).toContain("--relay: say who may relay");
  });
});
