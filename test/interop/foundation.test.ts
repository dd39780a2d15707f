// Foundation smoke test (issue 2): our client code delivers to real servers (Postfix's smtp-sink,
// Python's aiosmtpd), and real clients (swaks, smtp-source) deliver to a minimal server built on
// our server session (startSmtpServer with an in-memory backend).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PreparedMessage } from "../../src/client/prepared-message.ts";
import { type ClientOptions, SmtpClient } from "../../src/client/smtp-client.ts";
import { formatPath, parsePath } from "../../src/core/address.ts";
import type { Envelope } from "../../src/core/envelope.ts";
import { SmtpError } from "../../src/core/errors.ts";
import type { Backend, SessionInfo } from "../../src/server/backend.ts";
import { readMessage } from "../../src/server/message-stream.ts";
import { type SmtpServer, startSmtpServer } from "../../src/server/smtp-server.ts";
import { createTestPki, type PemFiles, type TestPki, writePemFiles } from "../helpers/certs.ts";
import { type Aiosmtpd, startAiosmtpd } from "./peers/aiosmtpd.ts";
import { LOOPBACK } from "./peers/ports.ts";
import { type SmtpSink, startSmtpSink } from "./peers/smtp-sink.ts";
import { runSmtpSource } from "./peers/smtp-source.ts";
import { startAll } from "./peers/start-all.ts";
import { runSwaks } from "./peers/swaks.ts";

const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("latin1");
const bytesOf = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"));

/** Dot-led lines, an 8-bit octet and an empty line: what dot-stuffing and DATA framing can get wrong. */
const TRICKY_MESSAGE =
  "Subject: foundation\r\nX-Test: 1\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n\r\ncaf\xe9\r\nend\r\n";

function envelope(from: string, ...to: string[]): Envelope {
  return {
    from: parsePath(`<${from}>`),
    mailParams: { other: [] },
    recipients: to.map((address) => ({ path: parsePath(`<${address}>`), params: { other: [] } })),
  };
}

async function deliver(options: ClientOptions, message: Uint8Array, ...to: string[]) {
  const client = await SmtpClient.connect(options);
  try {
    return await client.send(
      envelope("alice@a.test", ...to),
      new PreparedMessage(message, { eightBit: true }),
    );
  } finally {
    await client.quit();
  }
}

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});

describe("our SmtpClient delivers to real servers", () => {
  let sink: SmtpSink;
  let aiosmtpd: Aiosmtpd;
  let aiosmtpdTls: Aiosmtpd;
  const users = { alice: "s3cret" };

  beforeAll(async () => {
    [sink, aiosmtpd, aiosmtpdTls] = await startAll(
      () => startSmtpSink(),
      () => startAiosmtpd(),
      () => startAiosmtpd({ starttls: pki.server, auth: { users, requireTls: true } }),
    );
  });
  afterAll(async () => {
    await Promise.all([sink?.close(), aiosmtpd?.close(), aiosmtpdTls?.close()]);
  });

  test("to smtp-sink: the dump holds the message and envelope exactly", async () => {
    const result = await deliver(
      { host: LOOPBACK, port: sink.port, helo: "smtpkit.test", starttls: "never" },
      bytesOf(TRICKY_MESSAGE),
      "bob@b.test",
      "carol@c.test",
    );
    expect(result.ok).toBe(true);
    expect(result.method).toBe("data");
    const [message] = await sink.waitForMessages(1);
    expect(message?.heloArgs).toBe("smtpkit.test");
    expect(message?.mailFrom).toBe("alice@a.test");
    expect(message?.mailParams).toContain("BODY=8BITMIME");
    expect(message?.rcptTos).toEqual(["bob@b.test", "carol@c.test"]);
    expect(latin1(message?.raw ?? new Uint8Array())).toBe(TRICKY_MESSAGE);
  });

  test("to aiosmtpd: the content exactly as received, no TLS, no AUTH", async () => {
    const result = await deliver(
      { host: LOOPBACK, port: aiosmtpd.port, helo: "smtpkit.test", starttls: "never" },
      bytesOf(TRICKY_MESSAGE),
      "bob@b.test",
    );
    expect(result.ok).toBe(true);
    const [message] = await aiosmtpd.waitForMessages(1);
    expect(message).toMatchObject({
      mailFrom: "alice@a.test",
      rcptTos: ["bob@b.test"],
      tls: false,
      authLogin: null,
    });
    expect(latin1(message?.raw ?? new Uint8Array())).toBe(TRICKY_MESSAGE);
  });

  test.each(["PLAIN", "LOGIN", "CRAM-MD5"])(
    "to aiosmtpd over STARTTLS (certificate verified against our CA) with AUTH %s",
    async (mechanism) => {
      const before = (await aiosmtpdTls.messages()).length;
      const result = await deliver(
        {
          host: LOOPBACK,
          port: aiosmtpdTls.port,
          helo: "smtpkit.test",
          starttls: "always",
          tls: { ca: pki.ca.cert },
          auth: { mechanism, username: "alice", password: "s3cret" },
        },
        bytesOf(TRICKY_MESSAGE),
        "bob@b.test",
      );
      expect(result.ok).toBe(true);
      const message = (await aiosmtpdTls.waitForMessages(before + 1)).at(-1);
      expect(message).toMatchObject({ tls: true, authLogin: "alice" });
      expect(latin1(message?.raw ?? new Uint8Array())).toBe(TRICKY_MESSAGE);
    },
  );
});

interface Caught {
  session: SessionInfo;
  from: string;
  to: string[];
  raw: Uint8Array;
}

/** The smallest useful server on our session: keeps every message in memory. */
function memoryBackend(caught: Caught[], users: Record<string, string>): Backend {
  return {
    auth(_session, _mechanism, username, password) {
      if (typeof password !== "string" || users[username] !== password)
        throw new SmtpError(535, "5.7.8", "Authentication credentials invalid");
    },
    async data(session, envelope, message) {
      const raw = await readMessage(message);
      caught.push({
        session: { ...session },
        from: formatPath(envelope.from),
        to: envelope.recipients.map((r) => formatPath(r.path)),
        raw,
      });
      return `M${caught.length}`;
    },
  };
}

describe("real clients deliver to a minimal server on our session", () => {
  const caught: Caught[] = [];
  let server: SmtpServer;
  let port: number;
  let files: PemFiles;
  let dir: string;

  beforeAll(async () => {
    server = await startSmtpServer({
      backend: memoryBackend(caught, { alice: "s3cret" }),
      hostname: "minimal.test",
      listen: [{ host: LOOPBACK, port: 0 }],
      tls: pki.server,
      // LOGIN and PLAIN only: CRAM-MD5 needs the password, which this backend checks as text.
      authMechanisms: ["PLAIN", "LOGIN"],
    });
    port = server.listeners[0]?.port ?? 0;
    files = await writePemFiles({ "ca.pem": pki.ca.cert });
    dir = await mkdtemp(join(tmpdir(), "smtpkit-foundation-"));
  });
  afterAll(async () => {
    await server?.close(100);
    await files?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const swaks = (...more: string[]) => [
    "--server",
    `${LOOPBACK}:${port}`,
    "--helo",
    "swaks.test",
    "--from",
    "alice@a.test",
    "--to",
    "bob@b.test",
    ...more,
  ];

  test("swaks: greeting, EHLO extensions, and the message byte for byte", async () => {
    const before = caught.length;
    const sent = await runSwaks(swaks("--data", "-"), { input: bytesOf(TRICKY_MESSAGE) });
    expect(sent.transcript).toContain("<-  220 minimal.test ESMTP smtpkit");
    for (const extension of ["PIPELINING", "8BITMIME", "STARTTLS", "AUTH PLAIN LOGIN", "CHUNKING"])
      expect(sent.transcript).toContain(`<-  250-${extension}\n`);
    expect(sent.transcript).toContain("<-  250 ENHANCEDSTATUSCODES\n");
    expect(sent.transcript).toContain("250 2.0.0 Ok: queued as M");
    expect(sent.exitCode).toBe(0);
    const message = caught[before];
    expect(message).toMatchObject({ from: "<alice@a.test>", to: ["<bob@b.test>"] });
    expect(message?.session.heloName).toBe("swaks.test");
    // swaks adds one more CRLF to what it reads.
    expect(latin1(message?.raw ?? new Uint8Array())).toBe(`${TRICKY_MESSAGE}\r\n`);
  });

  test("swaks --tls --tls-verify --pipeline --auth: one TLS session, one pipelined group", async () => {
    const before = caught.length;
    const sent = await runSwaks(
      swaks(
        "--tls",
        "--tls-verify",
        "--tls-ca-path",
        files.paths["ca.pem"] ?? "",
        "--pipeline",
        "--auth",
        "LOGIN",
        "--auth-user",
        "alice",
        "--auth-password",
        "s3cret",
        "--data",
        "-",
      ),
      { input: bytesOf(TRICKY_MESSAGE) },
    );
    expect(sent.transcript).toContain("235 2.7.0 Authentication successful");
    expect(sent.exitCode).toBe(0);
    const message = caught[before];
    expect(message?.session.tls).toBeDefined();
    expect(message?.session.authUser).toBe("alice");
    expect(latin1(message?.raw ?? new Uint8Array())).toBe(`${TRICKY_MESSAGE}\r\n`);
  });

  test("swaks with a wrong password gets the backend's 535", async () => {
    const before = caught.length;
    const sent = await runSwaks(swaks("--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "nope"));
    expect(sent.transcript).toContain("535 5.7.8 Authentication credentials invalid");
    expect(sent.exitCode).not.toBe(0);
    expect(caught.length).toBe(before);
  });

  test("smtp-source: parallel sessions over reused connections, every message caught whole", async () => {
    const before = caught.length;
    const file = join(dir, "message.txt");
    await writeFile(file, "Subject: source\n\n.dot line\nbody\n");
    const run = await runSmtpSource({
      port,
      sessions: 4,
      messages: 40,
      reuseConnections: true,
      messageFile: file,
      from: "source@a.test",
      to: "sink@b.test",
      timeoutMs: 30_000,
    });
    expect(run.exitCode).toBe(0);
    const messages = caught.slice(before);
    expect(messages).toHaveLength(40);
    for (const message of messages) {
      expect(message).toMatchObject({ from: "<source@a.test>", to: ["<sink@b.test>"] });
      // smtp-source sends the file's lines with CRLF, then one more empty line.
      expect(latin1(message.raw)).toBe("Subject: source\r\n\r\n.dot line\r\nbody\r\n\r\n");
    }
  });

  test("smtp-source: a new connection per message, generated bodies", async () => {
    const before = caught.length;
    const run = await runSmtpSource({
      port,
      sessions: 5,
      messages: 25,
      messageSize: 2048,
      timeoutMs: 30_000,
    });
    expect(run.exitCode).toBe(0);
    expect(caught.length - before).toBe(25);
    expect(new Set(caught.slice(before).map((m) => m.session.id)).size).toBe(25);
  });
});
