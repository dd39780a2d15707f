// The interop harness checked against the peers themselves, before any of our code relies on it.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { connect } from "node:net";
import { generate } from "selfsigned";
import { type Aiosmtpd, startAiosmtpd } from "./peers/aiosmtpd.ts";
import { runMsmtp } from "./peers/msmtp.ts";
import { freePort, LOOPBACK } from "./peers/ports.ts";
import { startPostfix } from "./peers/postfix.ts";
import { headerValues, parseWithPythonEmail, partBytes } from "./peers/python-email.ts";
import { MissingPeerError, requirePeer } from "./peers/require-peer.ts";
import { runProcess } from "./peers/run-process.ts";
import { parseSinkDump, type SmtpSink, splitPathArgs, startSmtpSink } from "./peers/smtp-sink.ts";
import { runSmtpSource } from "./peers/smtp-source.ts";
import { startAll } from "./peers/start-all.ts";
import { runSwaks } from "./peers/swaks.ts";

const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("latin1");
const bytesOf = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"));

/** A message that exercises the dump format: dot-led lines, an 8-bit byte, an empty line. */
const TRICKY_MESSAGE =
  "Subject: dots\r\nX-Test: 1\r\n\r\n.leading dot\r\n..two dots\r\n.\tdot tab\r\n\r\ncaf\xe9\r\nend\r\n";
/** swaks ends what it reads with one more CRLF before the final dot (measured). */
const TRICKY_AS_SWAKS_SENDS = `${TRICKY_MESSAGE}\r\n`;

function swaksTo(port: number, ...more: string[]): string[] {
  return ["--server", `${LOOPBACK}:${port}`, "--from", "alice@a.test", "--to", "bob@b.test", ...more];
}

/** A zombie (dead, not yet reaped by init) counts as gone. */
async function processRunning(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "latin1").catch(() => "");
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return stat !== "" && state !== "Z" && state !== "X";
}

/** Polls a condition for up to 10 s; the caller asserts it afterwards. */
async function waitUntil(condition: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!(await condition()) && performance.now() < deadline) await Bun.sleep(20);
}

let certificate: { cert: string; key: string };

beforeAll(async () => {
  const pem = await generate([{ name: "commonName", value: "aiosmtpd.test" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    extensions: [
      {
        name: "subjectAltName",
        altNames: [
          { type: 2, value: "aiosmtpd.test" },
          { type: 2, value: "postfix.test" },
          { type: 7, ip: "127.0.0.1" },
        ],
      },
    ],
  });
  certificate = { cert: pem.cert, key: pem.private };
});

describe("requirePeer", () => {
  test("finds every installed peer", () => {
    for (const peer of [
      "smtp-sink",
      "smtp-source",
      "postfix",
      "swaks",
      "msmtp",
      "aiosmtpd",
      "python-email",
    ] as const) {
      expect(requirePeer(peer)).toStartWith("/");
    }
  });

  test("a missing peer's error names the Debian package and the install script", () => {
    const error = new MissingPeerError("aiosmtpd", "/usr/bin/python3 cannot import aiosmtpd");
    expect(error.message).toContain('"python3-aiosmtpd"');
    expect(error.message).toContain("scripts/install-peers");
  });
});

describe("cleanup after an aborted run", () => {
  test("a process that exits without close() leaves no peer and no directory behind", async () => {
    // What a crashed test run looks like: peers started, then the process just ends.
    const script = `
      import { startSmtpSink } from ${JSON.stringify(`${import.meta.dir}/peers/smtp-sink.ts`)};
      const sink = await startSmtpSink();
      console.log(JSON.stringify({ pid: sink.pid, dir: sink.dumpDir }));
      process.exit(0);
    `;
    const run = await runProcess([process.execPath, "-e", script], { timeoutMs: 30_000 });
    expect(run.exitCode).toBe(0);
    const left = JSON.parse(run.stdout) as { pid: number; dir: string };
    const gone = async (): Promise<boolean> => !(await processRunning(left.pid)) && !existsSync(left.dir);
    await waitUntil(gone);
    expect(await gone()).toBe(true);
  });
});

describe("freePort", () => {
  test("gives a loopback port nobody listens on", async () => {
    const port = await freePort();
    const refused = await new Promise<string>((resolve) => {
      const socket = connect({ host: LOOPBACK, port });
      socket.on("connect", () => {
        socket.destroy();
        resolve("connected");
      });
      socket.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
    expect(refused).toBe("ECONNREFUSED");
  });
});

describe("smtp-sink", () => {
  let sink: SmtpSink;
  beforeAll(async () => {
    sink = await startSmtpSink();
  });
  afterAll(async () => {
    await sink?.close();
  });

  test("greets, and swaks delivers a message that reads back byte for byte", async () => {
    expect(sink.greeting).toStartWith("220 ");
    const sent = await runSwaks(swaksTo(sink.port, "--to", "bob@b.test,carol@b.test", "--data", "-"), {
      input: bytesOf(TRICKY_MESSAGE),
    });
    expect(sent.exitCode).toBe(0);
    const [message] = await sink.waitForMessages(1);
    expect(message?.mailFrom).toBe("alice@a.test");
    expect(message?.rcptTos).toEqual(["bob@b.test", "carol@b.test"]);
    expect(message?.clientAddr).toBe(LOOPBACK);
    expect(latin1(message?.raw ?? new Uint8Array())).toBe(TRICKY_AS_SWAKS_SENDS);
  });

  test("smtp-source delivers to it over reused connections", async () => {
    const before = (await sink.messages()).length;
    const run = await runSmtpSource({
      port: sink.port,
      sessions: 2,
      messages: 6,
      messageSize: 300,
      reuseConnections: true,
      from: "source@a.test",
      to: "sink@b.test",
    });
    expect(run.exitCode).toBe(0);
    expect(run.elapsedMs).toBeGreaterThan(0);
    const messages = (await sink.waitForMessages(before + 6)).slice(before);
    expect(messages.map((m) => m.rcptTos)).toEqual(Array(6).fill(["sink@b.test"]));
    expect(messages.every((m) => m.mailFrom === "source@a.test")).toBe(true);
  });

  test("flags hide extensions and force replies", async () => {
    await using quiet = await startSmtpSink({ no8BitMime: true, noPipelining: true, hardReject: ["RCPT"] });
    const ehlo = await runSwaks(swaksTo(quiet.port, "--quit-after", "EHLO"));
    expect(ehlo.transcript).toContain("250-ENHANCEDSTATUSCODES");
    expect(ehlo.transcript).not.toContain("8BITMIME");
    expect(ehlo.transcript).not.toContain("PIPELINING");
    const refused = await runSwaks(swaksTo(quiet.port));
    expect(refused.exitCode).not.toBe(0);
    expect(refused.transcript).toMatch(/<\*\* +500 5\.3\.0/);

    await using deferring = await startSmtpSink({ softReject: ["MAIL"], noEsmtp: true, dump: false });
    const deferred = await runSwaks(swaksTo(deferring.port));
    expect(deferred.transcript).toMatch(/ -> EHLO [^\n]*\n<\*\* +500 /);
    expect(deferred.transcript).toMatch(/<\*\* +450 4\.3\.0/);
  });

  test("restarts on the same port (a destination that was down comes back)", async () => {
    const port = await freePort();
    const first = await startSmtpSink({ port });
    await first.close();
    await using second = await startSmtpSink({ port });
    expect(second.port).toBe(port);
    expect((await runSwaks(swaksTo(port))).exitCode).toBe(0);
    expect(await second.waitForMessages(1)).toHaveLength(1);
  });

  test("dump parser: headers, parameters, CRLF restored", () => {
    const dump = bytesOf(
      "X-Client-Addr: 127.0.0.1\nX-Client-Proto: ESMTP\nX-Helo-Args: client.test\n" +
        "X-Mail-Args: <a@b> SIZE=10 BODY=8BITMIME\nX-Rcpt-Args: <c@d> NOTIFY=NEVER\nX-Rcpt-Args: <e@f>\n" +
        "Received: from client.test ([127.0.0.1])\n\tby smtp-sink (smtp-sink) with ESMTP id 1;\n" +
        "\tFri, 27 Nov 2026 12:57:27 +0000 (UTC)\nSubject: x\n\n.dot\nbody\n\n",
    );
    const message = parseSinkDump(dump);
    expect(message.heloArgs).toBe("client.test");
    expect(message.mailFrom).toBe("a@b");
    expect(message.mailParams).toEqual(["SIZE=10", "BODY=8BITMIME"]);
    expect(message.rcptArgs).toEqual(["<c@d> NOTIFY=NEVER", "<e@f>"]);
    expect(message.rcptTos).toEqual(["c@d", "e@f"]);
    expect(latin1(message.raw)).toBe("Subject: x\r\n\r\n.dot\r\nbody\r\n");
    expect(splitPathArgs('<"a>b"@c> X=1')).toEqual({ address: '"a>b"@c', params: ["X=1"] });
    expect(splitPathArgs("<>")).toEqual({ address: "", params: [] });
  });
});

describe("aiosmtpd", () => {
  const users = { alice: "s3cret" };
  let plain: Aiosmtpd;
  let starttls: Aiosmtpd;
  beforeAll(async () => {
    [plain, starttls] = await startAll(
      () => startAiosmtpd({ rcptReplies: { "nobody@b.test": "550 5.1.1 No such user" } }),
      () => startAiosmtpd({ starttls: certificate, auth: { users } }),
    );
  });
  afterAll(async () => {
    await Promise.all([plain?.close(), starttls?.close()]);
  });

  test("keeps the content exactly as received, and the same bytes as smtp-sink", async () => {
    const sent = await runSwaks(swaksTo(plain.port, "--data", "-"), { input: bytesOf(TRICKY_MESSAGE) });
    expect(sent.exitCode).toBe(0);
    const [message] = await plain.waitForMessages(1);
    expect(latin1(message?.raw ?? new Uint8Array())).toBe(TRICKY_AS_SWAKS_SENDS);
    expect(message?.tls).toBe(false);
    expect(message?.authLogin).toBeNull();
  });

  test("per-recipient replies refuse one recipient and keep the other", async () => {
    const before = (await plain.messages()).length;
    const sent = await runSwaks(swaksTo(plain.port, "--to", "nobody@b.test,bob@b.test"));
    expect(sent.transcript).toMatch(/<\*\* +550 5\.1\.1 No such user/);
    const messages = await plain.waitForMessages(before + 1);
    expect(messages.at(-1)?.rcptTos).toEqual(["bob@b.test"]);
  });

  test("offers AUTH only after STARTTLS, with our certificate", async () => {
    const ehlo = await runSwaks(swaksTo(starttls.port, "--tls", "--quit-after", "EHLO"));
    const [beforeTls, afterTls] = ehlo.transcript.split(" -> STARTTLS");
    expect(beforeTls).toContain("250-STARTTLS");
    expect(beforeTls).not.toContain("AUTH");
    expect(afterTls).toContain("CN=aiosmtpd.test");
    expect(afterTls).toContain("250-AUTH CRAM-MD5 LOGIN PLAIN");
  });

  test.each(["PLAIN", "LOGIN", "CRAM-MD5"])(
    "AUTH %s succeeds with the right password only",
    async (mechanism) => {
      const before = (await starttls.messages()).length;
      const auth = ["--tls", "--auth", mechanism, "--auth-user", "alice"];
      const [good, bad] = await Promise.all([
        runSwaks(swaksTo(starttls.port, ...auth, "--auth-password", "s3cret")),
        runSwaks(swaksTo(starttls.port, ...auth, "--auth-password", "wrong")),
      ]);
      expect(good.transcript).toContain("235 2.7.0 Authentication successful");
      expect(good.exitCode).toBe(0);
      expect(bad.transcript).toContain("535 5.7.8");
      expect(bad.exitCode).not.toBe(0);
      const messages = await starttls.waitForMessages(before + 1);
      expect(messages).toHaveLength(before + 1);
      expect(messages.at(-1)).toMatchObject({ tls: true, authLogin: "alice" });
    },
  );

  test("implicit TLS with AUTH", async () => {
    await using smtps = await startAiosmtpd({
      implicitTls: certificate,
      auth: { users, mechanisms: ["LOGIN"] },
    });
    const sent = await runSwaks(
      swaksTo(smtps.port, "--tlsc", "--auth", "LOGIN", "--auth-user", "alice", "--auth-password", "s3cret"),
    );
    expect(sent.transcript).toContain("250-AUTH LOGIN\n");
    expect(sent.exitCode).toBe(0);
    const [message] = await smtps.waitForMessages(1);
    expect(message).toMatchObject({ tls: true, authLogin: "alice" });
  });

  test("msmtp delivers with STARTTLS and AUTH", async () => {
    const before = (await starttls.messages()).length;
    const message = "From: alice@a.test\r\nTo: bob@b.test\r\nSubject: msmtp\r\n\r\nhello\r\n";
    const run = await runMsmtp({
      port: starttls.port,
      from: "alice@a.test",
      recipients: ["bob@b.test"],
      message,
      tls: "starttls",
      auth: { user: "alice", password: "s3cret", mechanism: "plain" },
    });
    expect(run.stderr).toBe("");
    expect(run.exitCode).toBe(0);
    const received = (await starttls.waitForMessages(before + 1)).at(-1);
    expect(received).toMatchObject({
      mailFrom: "alice@a.test",
      rcptTos: ["bob@b.test"],
      tls: true,
      authLogin: "alice",
    });
    expect(latin1(received?.raw ?? new Uint8Array())).toContain("Subject: msmtp\r\n\r\nhello\r\n");
  });
});

describe("python email parser", () => {
  test("decodes headers, parts, filenames and payloads of a known message", async () => {
    const subject = "Xin chào 👋 世界";
    const message = [
      "From: =?UTF-8?Q?Ph=E1=BA=A1m?= <alice@a.test>",
      "To: bob@b.test",
      `Subject: =?UTF-8?B?${Buffer.from(subject).toString("base64")}?=`,
      "MIME-Version: 1.0",
      'Content-Type: multipart/mixed; boundary="b1"',
      "",
      "--b1",
      "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: quoted-printable",
      "",
      "Xin ch=C3=A0o",
      "--b1",
      "Content-Type: application/octet-stream",
      "Content-Disposition: attachment; filename*=utf-8''%E4%B8%96%E7%95%8C.bin",
      "Content-Transfer-Encoding: base64",
      "",
      "AAEC/w==",
      "--b1--",
      "",
    ].join("\r\n");
    const parsed = await parseWithPythonEmail(message);
    expect(headerValues(parsed, "subject")).toEqual([subject]);
    expect(headerValues(parsed, "From")).toEqual(["Phạm <alice@a.test>"]);
    expect(parsed.structure).toBe("multipart/mixed(text/plain,application/octet-stream)");
    expect(parsed.defects).toEqual([]);
    const [text, attachment] = parsed.parts;
    expect(text?.text).toBe("Xin chào");
    expect(text?.charset).toBe("utf-8");
    expect(attachment?.filename).toBe("世界.bin");
    expect(attachment?.disposition).toBe("attachment");
    expect([...partBytes(attachment ?? parsed.parts[0]!)]).toEqual([0, 1, 2, 255]);
    expect(parsed).toMatchObject({ sevenBit: true, bareLf: 0, bareCr: 0, endsWithCrlf: true, nulBytes: 0 });
    expect(parsed.maxLineLength).toBe(
      "Content-Disposition: attachment; filename*=utf-8''%E4%B8%96%E7%95%8C.bin".length,
    );
  });

  test("reports 8-bit bytes, bare line ends and long lines", async () => {
    const raw = bytesOf(`Subject: raw\n\ncaf\xe9\r${"x".repeat(1200)}\r\n`);
    const parsed = await parseWithPythonEmail(raw);
    expect(parsed).toMatchObject({ sevenBit: false, bareLf: 2, bareCr: 1, maxLineLength: 1200 });
  });

  test("reads a delivery status notification's groups", async () => {
    const dsn = [
      "From: MAILER-DAEMON@a.test",
      "Subject: Undelivered",
      "MIME-Version: 1.0",
      'Content-Type: multipart/report; report-type=delivery-status; boundary="r"',
      "",
      "--r",
      "Content-Type: text/plain",
      "",
      "It bounced.",
      "--r",
      "Content-Type: message/delivery-status",
      "",
      "Reporting-MTA: dns; a.test",
      "",
      "Final-Recipient: rfc822; bob@b.test",
      "Action: failed",
      "Status: 5.1.1",
      "",
      "--r",
      "Content-Type: message/rfc822",
      "",
      "Subject: original",
      "",
      "hi",
      "--r--",
      "",
    ].join("\r\n");
    const parsed = await parseWithPythonEmail(dsn);
    expect(parsed.structure).toBe("multipart/report(text/plain,message/delivery-status,message/rfc822)");
    const status = parsed.parts[1]?.statusGroups ?? [];
    expect(status.map((group) => group.map((field) => field.name))).toEqual([
      ["Reporting-MTA"],
      ["Final-Recipient", "Action", "Status"],
    ]);
    expect(headerValues({ headers: status[1] ?? [] }, "status")).toEqual(["5.1.1"]);
    expect(headerValues(parsed.parts[2]?.message ?? { headers: [] }, "subject")).toEqual(["original"]);
  });
});

describe("postfix", () => {
  test("a private instance answers EHLO with STARTTLS and refuses to relay; with mynetworks open it relays", async () => {
    const [closed, open] = await startAll(
      () => startPostfix({ tls: certificate }),
      () => startPostfix({ mynetworks: ["127.0.0.0/8"] }),
    );
    await using _closed = closed;
    await using _open = open;
    expect(closed.greeting).toStartWith("220 postfix.test ESMTP");

    const tls = await runSwaks(
      swaksTo(closed.port, "--tls", "--quit-after", "RCPT", "--to", "x@elsewhere.test"),
    );
    expect(tls.transcript).toContain("250-STARTTLS");
    expect(tls.transcript).toContain("CN=aiosmtpd.test");
    expect(tls.transcript).toMatch(/<~\* +554 5\.7\.1 <x@elsewhere\.test>: Relay access denied/);

    const relayed = await runSwaks(swaksTo(open.port, "--quit-after", "RCPT", "--to", "x@elsewhere.test"));
    expect(relayed.transcript).toMatch(/ -> RCPT TO:<x@elsewhere\.test>\n<- +250 2\.1\.5 Ok/);
    expect(relayed.exitCode).toBe(0);
    expect(await closed.log()).toContain("Relay access denied");
  });
});
