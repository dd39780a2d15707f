// Real clients deliver to a running `smtpkit serve` (durable store in a data directory): swaks
// (plain, STARTTLS, implicit TLS, PIPELINING, AUTH), Python's smtplib, nodemailer, Postfix's
// smtp-source and our own SmtpClient. What the API returns byte-compares with what each sent,
// after the Received line serve prepends.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTransport } from "nodemailer";
import MailComposer from "nodemailer/lib/mail-composer";
import { PreparedMessage } from "../../src/client/prepared-message.ts";
import { SmtpClient } from "../../src/client/smtp-client.ts";
import { parsePath } from "../../src/core/address.ts";
import type { Envelope } from "../../src/core/envelope.ts";
import { createTestPki, type PemFiles, type TestPki, writePemFiles } from "../helpers/certs.ts";
import { freePort, LOOPBACK } from "./peers/ports.ts";
import { requirePeer } from "./peers/require-peer.ts";
import { runProcess } from "./peers/run-process.ts";
import { runSmtpSource } from "./peers/smtp-source.ts";
import { runSwaks } from "./peers/swaks.ts";
import {
  bytesOf,
  latin1,
  queuedIds,
  SERVE_HOSTNAME,
  type ServeProcess,
  splitReceived,
  startServe,
} from "./serve-process.ts";

const USER = "alice";
const PASSWORD = "s3cret";
/** Dot-led lines, an 8-bit octet, an empty line: what a DATA framer can get wrong. */
const TRICKY_MESSAGE =
  "Subject: dots\r\nX-Test: 1\r\n\r\n.leading dot\r\n..two dots\r\n.\tdot tab\r\n\r\ncaf\xe9\r\nend\r\n";
/** swaks ends what it reads with one more CRLF before the final dot (measured against aiosmtpd). */
const swaksSent = (message: string): string => `${message}\r\n`;

let pki: TestPki;
let pem: PemFiles;
let workDir: string;
let serve: ServeProcess;
let smtpsPort: number;

beforeAll(async () => {
  pki = await createTestPki();
  pem = await writePemFiles({
    "server.pem": pki.server.cert,
    "server-key.pem": pki.server.key,
    "ca.pem": pki.ca.cert,
  });
  workDir = await mkdtemp(join(tmpdir(), "smtpkit-serve-deliver-"));
  const users = join(workDir, "users");
  await writeFile(users, `# test users\n${USER}:${PASSWORD}\n`);
  smtpsPort = await freePort();
  serve = await startServe({
    args: [
      ["--tls-cert", pem.paths["server.pem"] ?? ""],
      ["--tls-key", pem.paths["server-key.pem"] ?? ""],
      ["--auth-users", users],
      ["--smtps", `${LOOPBACK}:${smtpsPort}`],
    ].flat(),
  });
});

afterAll(async () => {
  await serve?.close();
  await pem?.remove();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** The one message a reply named, checked to be exactly `sent` after serve's Received line. */
async function expectStored(id: string | undefined, sent: string | Uint8Array): Promise<string> {
  expect(id).toBeString();
  const stored = splitReceived(await serve.raw(id ?? ""));
  expect(latin1(stored.message)).toBe(typeof sent === "string" ? sent : latin1(sent));
  expect(stored.received).toMatch(
    new RegExp(
      `^Received: from \\S+ \\(\\[127\\.0\\.0\\.1\\]\\)\r\n\tby ${SERVE_HOSTNAME} \\(smtpkit\\) with \\w+ id \\w+`,
    ),
  );
  return stored.received;
}

function swaksTo(port: number, ...more: string[]): string[] {
  return [
    "--server",
    `${LOOPBACK}:${port}`,
    "--helo",
    "client.test",
    "--from",
    "alice@a.test",
    "--to",
    "bob@b.test",
    ...more,
  ];
}

describe("swaks", () => {
  test("plain: the message arrives byte for byte, with a Received line naming the single recipient", async () => {
    const sent = await runSwaks(swaksTo(serve.port, "--data", "-"), { input: bytesOf(TRICKY_MESSAGE) });
    expect(sent.exitCode).toBe(0);
    const [id] = queuedIds(sent.transcript);
    const received = await expectStored(id, swaksSent(TRICKY_MESSAGE));
    expect(received).toContain(" with ESMTP id ");
    expect(received).toContain("\tfor <bob@b.test>; ");
    expect(received).toStartWith("Received: from client.test ([127.0.0.1])\r\n");
  });

  test("two recipients: no 'for' clause (it would leak one Bcc to the other), both in the envelope", async () => {
    const sent = await runSwaks(swaksTo(serve.port, "--to", "bob@b.test,carol@c.test", "--data", "-"), {
      input: "Subject: two\r\n\r\nhi\r\n",
    });
    expect(sent.exitCode).toBe(0);
    const [id] = queuedIds(sent.transcript);
    const received = await expectStored(id, swaksSent("Subject: two\r\n\r\nhi\r\n"));
    expect(received).not.toContain("for <");
    const message = (await (await serve.api(`/api/v1/message/${id}`)).json()) as {
      Bcc: { Address: string }[];
    };
    expect(message.Bcc.map((b) => b.Address).sort()).toEqual(["bob@b.test", "carol@c.test"]);
  });

  test("--tls with certificate verification: STARTTLS, and the Received line says ESMTPS", async () => {
    const sent = await runSwaks(
      swaksTo(serve.port, "--tls", "--tls-verify", "--tls-ca-path", pem.paths["ca.pem"] ?? "", "--data", "-"),
      { input: bytesOf(TRICKY_MESSAGE) },
    );
    expect(sent.transcript).toContain(" -> STARTTLS");
    expect(sent.exitCode).toBe(0);
    const [id] = queuedIds(sent.transcript);
    expect(await expectStored(id, swaksSent(TRICKY_MESSAGE))).toContain(" with ESMTPS id ");
  });

  test("--tlsc on the --smtps port: implicit TLS", async () => {
    const sent = await runSwaks(swaksTo(smtpsPort, "--tlsc", "--data", "-"), {
      input: "Subject: smtps\r\n\r\nx\r\n",
    });
    expect(sent.transcript).not.toContain("STARTTLS");
    expect(sent.exitCode).toBe(0);
    const [id] = queuedIds(sent.transcript);
    expect(await expectStored(id, swaksSent("Subject: smtps\r\n\r\nx\r\n"))).toContain(" with ESMTPS id ");
  });

  test("--pipeline: MAIL, RCPT and DATA in one group", async () => {
    const sent = await runSwaks(
      swaksTo(serve.port, "--pipeline", "--to", "bob@b.test,carol@c.test", "--data", "-"),
      {
        input: bytesOf(TRICKY_MESSAGE),
      },
    );
    expect(sent.exitCode).toBe(0);
    // swaks prints a pipelined group's commands together, then the replies.
    expect(sent.transcript).toMatch(
      / -> MAIL FROM:<alice@a\.test>\n -> RCPT TO:<bob@b\.test>\n -> RCPT TO:<carol@c\.test>\n -> DATA\n/,
    );
    const [id] = queuedIds(sent.transcript);
    await expectStored(id, swaksSent(TRICKY_MESSAGE));
  });

  test("--protocol SMTP (HELO, no extensions): the Received line says SMTP", async () => {
    const sent = await runSwaks(swaksTo(serve.port, "--protocol", "SMTP", "--data", "-"), {
      input: "Subject: helo\r\n\r\nx\r\n",
    });
    expect(sent.transcript).toContain(" -> HELO client.test");
    expect(sent.exitCode).toBe(0);
    const [id] = queuedIds(sent.transcript);
    expect(await expectStored(id, swaksSent("Subject: helo\r\n\r\nx\r\n"))).toContain(" with SMTP id ");
  });

  test.each(["PLAIN", "LOGIN", "CRAM-MD5"])(
    "--auth %s over STARTTLS: right password delivers (ESMTPSA, Username in the API), wrong one gets 535",
    async (mechanism) => {
      const before = await serve.count();
      const auth = ["--tls", "--auth", mechanism, "--auth-user", USER];
      const bad = await runSwaks(swaksTo(serve.port, ...auth, "--auth-password", "wrong"));
      expect(bad.transcript).toContain("535 5.7.8 Authentication credentials invalid");
      expect(bad.exitCode).not.toBe(0);
      expect(await serve.count()).toBe(before);

      const input = `Subject: auth ${mechanism}\r\n\r\nx\r\n`;
      const good = await runSwaks(swaksTo(serve.port, ...auth, "--auth-password", PASSWORD, "--data", "-"), {
        input,
      });
      expect(good.transcript).toContain("235 2.7.0 Authentication successful");
      expect(good.exitCode).toBe(0);
      const [id] = queuedIds(good.transcript);
      expect(await expectStored(id, swaksSent(input))).toContain(" with ESMTPSA id ");
      const summary = (await (await serve.api(`/api/v1/message/${id}`)).json()) as { Username: string };
      expect(summary.Username).toBe(USER);
    },
  );

  test("--auth without TLS is allowed over loopback (ESMTPA)", async () => {
    const input = "Subject: auth plain text\r\n\r\nx\r\n";
    const sent = await runSwaks(
      swaksTo(serve.port, "--auth", "PLAIN", "--auth-user", USER, "--auth-password", PASSWORD, "--data", "-"),
      { input },
    );
    expect(sent.exitCode).toBe(0);
    const [id] = queuedIds(sent.transcript);
    expect(await expectStored(id, swaksSent(input))).toContain(" with ESMTPA id ");
  });
});

/** smtplib from Debian's Python, driven by a JSON job on argv and the message on stdin. */
const SMTPLIB_CLIENT = String.raw`
import json, smtplib, ssl, sys
job = json.loads(sys.argv[1])
message = sys.stdin.buffer.read()
s = smtplib.SMTP(job["host"], job["port"], local_hostname="python.test", timeout=30)
if job.get("helo"):
    s.helo()
else:
    s.ehlo()
if job.get("cafile"):
    s.starttls(context=ssl.create_default_context(cafile=job["cafile"]))
    s.ehlo()
if job.get("user"):
    s.login(job["user"], job["password"])
code, reply = s.mail(job["from"], job.get("mailOptions", []))
assert code == 250, (code, reply)
for rcpt in job["to"]:
    code, reply = s.rcpt(rcpt)
    assert code == 250, (code, reply)
code, reply = s.data(message)
s.quit()
print(json.dumps({"code": code, "reply": reply.decode()}))
`;

interface SmtplibJob {
  from: string;
  to: string[];
  mailOptions?: string[];
  helo?: boolean;
  cafile?: string;
  user?: string;
  password?: string;
}

async function smtplib(job: SmtplibJob, message: Uint8Array): Promise<{ code: number; reply: string }> {
  const python = requirePeer("python-email");
  const run = await runProcess(
    [python, "-c", SMTPLIB_CLIENT, JSON.stringify({ host: LOOPBACK, port: serve.port, ...job })],
    { stdin: message, timeoutMs: 30_000 },
  );
  if (run.exitCode !== 0) throw new Error(`smtplib client failed (exit ${run.exitCode}):\n${run.stderr}`);
  return JSON.parse(run.stdout) as { code: number; reply: string };
}

const queuedId = (reply: string): string | undefined => /queued as (\S+)/.exec(reply)?.[1];

describe("Python smtplib", () => {
  test("EHLO and BODY=8BITMIME: 8-bit content byte for byte", async () => {
    const message = bytesOf("From: a@a.test\r\nSubject: smtplib\r\n\r\ncaf\xe9 \xff\r\n.dot\r\n");
    const result = await smtplib(
      { from: "a@a.test", to: ["b@b.test"], mailOptions: ["BODY=8BITMIME"] },
      message,
    );
    expect(result.code).toBe(250);
    expect(await expectStored(queuedId(result.reply), message)).toContain(" with ESMTP id ");
  });

  test("STARTTLS verified against our CA, then login (smtplib prefers CRAM-MD5): ESMTPSA", async () => {
    const message = bytesOf("Subject: smtplib tls\r\n\r\nsecret\r\n");
    const result = await smtplib(
      { from: "a@a.test", to: ["b@b.test"], cafile: pem.paths["ca.pem"], user: USER, password: PASSWORD },
      message,
    );
    expect(await expectStored(queuedId(result.reply), message)).toContain(" with ESMTPSA id ");
  });

  test("SMTPUTF8: UTF-8 addresses and headers, stored as sent", async () => {
    const message = new TextEncoder().encode("From: jöran@a.test\r\nSubject: grüße 👋\r\n\r\nhej\r\n");
    const result = await smtplib(
      { from: "jöran@a.test", to: ["bø@b.test"], mailOptions: ["SMTPUTF8", "BODY=8BITMIME"] },
      message,
    );
    const received = await expectStored(queuedId(result.reply), message);
    expect(received).toContain(" with UTF8SMTP id ");
    expect(Buffer.from(received, "latin1").toString("utf8")).toContain("for <bø@b.test>");
    const [summary] = await serve.search("subject:grüße");
    expect(summary?.Subject).toBe("grüße 👋");
  });

  test("HELO only: the Received line says SMTP", async () => {
    const message = bytesOf("Subject: smtplib helo\r\n\r\nx\r\n");
    const result = await smtplib({ from: "a@a.test", to: ["b@b.test"], helo: true }, message);
    expect(await expectStored(queuedId(result.reply), message)).toContain(" with SMTP id ");
  });
});

/**
 * What nodemailer puts on the wire for a raw message: MailComposer leaves the LFs of 7-bit text as
 * given, and nodemailer's DATA stream turns every line end into CRLF.
 */
const asNodemailerSends = (raw: Buffer): string => latin1(raw).replace(/\r?\n/g, "\r\n");

describe("nodemailer", () => {
  const composed = (subject: string): Promise<Buffer> =>
    new MailComposer({
      from: "Ana Ngô <ana@a.test>",
      to: "bob@b.test",
      subject,
      text: "Hello ✓\n.leading dot\n",
      html: "<p>Hello ✓</p>",
      attachments: [{ filename: "data.bin", content: Buffer.from([0, 1, 2, 255]) }],
    })
      .compile()
      .build();

  test("a composed message with an attachment over verified STARTTLS and AUTH, as nodemailer built it", async () => {
    const raw = await composed("nodemailer ✓");
    const transport = createTransport({
      host: LOOPBACK,
      port: serve.port,
      secure: false,
      requireTLS: true,
      name: "nodemailer.test",
      tls: { ca: pki.ca.cert },
      auth: { user: USER, pass: PASSWORD },
    });
    const info = await transport.sendMail({ envelope: { from: "ana@a.test", to: ["bob@b.test"] }, raw });
    transport.close();
    const id = queuedId(info.response);
    expect(await expectStored(id, asNodemailerSends(raw))).toContain(" with ESMTPSA id ");
    const message = (await (await serve.api(`/api/v1/message/${id}`)).json()) as {
      Subject: string;
      Attachments: { FileName: string; Size: number }[];
    };
    expect(message.Subject).toBe("nodemailer ✓");
    expect(message.Attachments.map((a) => [a.FileName, a.Size])).toEqual([["data.bin", 4]]);
  });

  test("a pooled transport sends ten messages over reused connections, each stored as built", async () => {
    const transport = createTransport({
      host: LOOPBACK,
      port: serve.port,
      secure: false,
      pool: true,
      maxConnections: 2,
      ignoreTLS: true,
    });
    const raws = await Promise.all(Array.from({ length: 10 }, (_, i) => composed(`pooled ${i}`)));
    const infos = await Promise.all(
      raws.map((raw) => transport.sendMail({ envelope: { from: "ana@a.test", to: ["bob@b.test"] }, raw })),
    );
    transport.close();
    for (const [index, info] of infos.entries())
      await expectStored(queuedId(info.response), asNodemailerSends(raws[index] ?? Buffer.alloc(0)));
  });

  test("a wrong password is refused with 535 and nothing is stored", async () => {
    const before = await serve.count();
    const transport = createTransport({
      host: LOOPBACK,
      port: serve.port,
      secure: false,
      tls: { ca: pki.ca.cert },
      auth: { user: USER, pass: "wrong" },
    });
    const failure = await transport
      .sendMail({ from: "a@a.test", to: "b@b.test", text: "x" })
      .catch((error: unknown) => error);
    transport.close();
    expect(failure).toMatchObject({ code: "EAUTH", responseCode: 535 });
    expect(await serve.count()).toBe(before);
  });
});

describe("smtp-source", () => {
  test("four sessions over reused connections send a prepared file; every 250 names a stored copy", async () => {
    const dir = await mkdtemp(join(tmpdir(), "smtpkit-source-"));
    try {
      // smtp-source reads the file as lines and sends each with CRLF, dot-stuffed.
      const file = join(dir, "message.txt");
      await writeFile(file, "Subject: source\nX-Test: 1\n\n.leading dot\nbody\n");
      const run = await runSmtpSource({
        port: serve.port,
        sessions: 4,
        messages: 20,
        reuseConnections: true,
        messageFile: file,
        from: "source@a.test",
        to: "sink@b.test",
        args: ["-v"],
        timeoutMs: 30_000,
      });
      expect(run.exitCode).toBe(0);
      const ids = queuedIds(run.stderr);
      expect(new Set(ids).size).toBe(20);
      // smtp-source sends one more empty line after the file (measured against aiosmtpd).
      for (const id of ids)
        await expectStored(id, "Subject: source\r\nX-Test: 1\r\n\r\n.leading dot\r\nbody\r\n\r\n");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a new connection per message with generated 1 KiB bodies", async () => {
    const before = await serve.count();
    const run = await runSmtpSource({
      port: serve.port,
      sessions: 5,
      messages: 25,
      messageSize: 1024,
      args: ["-v", "-S", "generated"],
      timeoutMs: 30_000,
    });
    expect(run.exitCode).toBe(0);
    const ids = queuedIds(run.stderr);
    expect(new Set(ids).size).toBe(25);
    expect(await serve.count()).toBe(before + 25);
    for (const id of ids) {
      const { message } = splitReceived(await serve.raw(id));
      expect(latin1(message)).toContain("Subject: generated\r\n\r\n");
    }
  });
});

describe("our SmtpClient", () => {
  const envelope = (from: string, ...to: string[]): Envelope => ({
    from: parsePath(`<${from}>`),
    mailParams: { other: [] },
    recipients: to.map((t) => ({ path: parsePath(`<${t}>`), params: { other: [] } })),
  });

  test.each([
    ["BDAT (CHUNKING)", true],
    ["DATA", false],
  ])("%s over verified STARTTLS with AUTH", async (_name, chunking) => {
    const client = await SmtpClient.connect({
      host: LOOPBACK,
      port: serve.port,
      helo: "smtpkit.test",
      starttls: "always",
      tls: { ca: pki.ca.cert },
      auth: { username: USER, password: PASSWORD },
      chunking,
    });
    const message = bytesOf(TRICKY_MESSAGE);
    const result = await client.send(
      envelope("a@a.test", "b@b.test"),
      new PreparedMessage(message, { eightBit: true }),
    );
    await client.quit();
    expect(result.ok).toBe(true);
    expect(result.method).toBe(chunking ? "bdat" : "data");
    expect(await expectStored(queuedId(result.final?.lines.join(" ") ?? ""), message)).toContain(
      " with ESMTPSA id ",
    );
  });
});
