import { afterEach, describe, expect, test } from "bun:test";
import { createTransport } from "nodemailer";
import { cramMd5Response, verifyCramMd5 } from "../../src/core/auth-server.ts";
import type { Envelope } from "../../src/core/envelope.ts";
import { SmtpError } from "../../src/core/errors.ts";
import { makeSelfSignedCertificate, type PemCertificate } from "../../src/net/self-signed.ts";
import type { Backend, SessionInfo } from "../../src/server/backend.ts";
import { readMessage } from "../../src/server/message-stream.ts";
import { type SmtpServer, type SmtpServerOptions, startSmtpServer } from "../../src/server/smtp-server.ts";
import { RawSmtpClient } from "./raw-smtp-client.ts";

interface Received {
  session: SessionInfo;
  envelope: Envelope;
  body: string;
}

function recorder(overrides: Partial<Backend> = {}) {
  const messages: Received[] = [];
  const closed: SessionInfo[] = [];
  const errors: unknown[] = [];
  const backend: Backend = {
    async data(session, envelope, message) {
      const body = Buffer.from(await readMessage(message)).toString("latin1");
      messages.push({ session, envelope, body });
      return `Q${messages.length}`;
    },
    close(session) {
      closed.push(session);
    },
    ...overrides,
  };
  return { backend, messages, closed, errors };
}

const servers: SmtpServer[] = [];

async function start(options: Partial<SmtpServerOptions> & { backend: Backend }): Promise<SmtpServer> {
  const server = await startSmtpServer({
    hostname: "mx.test",
    listen: [{ host: "127.0.0.1", port: 0 }],
    ...options,
  });
  servers.push(server);
  return server;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close(100)));
});

const port = (server: SmtpServer, index = 0) => server.listeners[index]?.port ?? 0;

let certificate: PemCertificate | undefined;
async function cert(): Promise<PemCertificate> {
  certificate ??= await makeSelfSignedCertificate("mx.test", { altNames: ["127.0.0.1"] });
  return certificate;
}

/** Greeting and EHLO; returns the EHLO reply. */
async function hello(client: RawSmtpClient): Promise<string> {
  expect(await client.reply()).toBe("220 mx.test ESMTP smtpkit");
  return client.command("EHLO client.test\r\n");
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe("delivery over loopback", () => {
  test("a transaction in lock step: 250 only after data() stored it, with its queue id", async () => {
    const r = recorder();
    const server = await start({ backend: r.backend });
    const client = await RawSmtpClient.connect(port(server));
    expect(await hello(client)).toContain("250-PIPELINING");
    expect(await client.command("MAIL FROM:<a@example.com>\r\n")).toBe("250 2.1.0 Sender ok");
    expect(await client.command("RCPT TO:<b@example.com>\r\n")).toBe("250 2.1.5 Recipient ok");
    expect(await client.command("DATA\r\n")).toBe("354 End data with <CR><LF>.<CR><LF>");
    expect(await client.command("Subject: hi\r\n\r\n..dot\r\n.\r\n")).toBe("250 2.0.0 Ok: queued as Q1");
    expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    await client.closed;
    expect(r.messages.length).toBe(1);
    expect(r.messages[0]?.body).toBe("Subject: hi\r\n\r\n.dot\r\n");
    expect(r.messages[0]?.session.heloName).toBe("client.test");
    expect(r.messages[0]?.session.remoteAddress).toBe("127.0.0.1");
    await until(() => r.closed.length === 1);
    expect(server.connections).toBe(0);
  });

  test("a whole pipelined transaction in one write", async () => {
    const r = recorder();
    const server = await start({ backend: r.backend });
    const client = await RawSmtpClient.connect(port(server));
    await hello(client);
    client.send(
      "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n",
    );
    expect(await client.reply()).toBe("250 2.1.0 Sender ok");
    expect(await client.reply()).toBe("250 2.1.5 Recipient ok");
    expect(await client.reply()).toBe("250 2.1.5 Recipient ok");
    expect(await client.reply()).toBe("354 End data with <CR><LF>.<CR><LF>");
    client.send("x\r\n.\r\nQUIT\r\n");
    expect(await client.reply()).toBe("250 2.0.0 Ok: queued as Q1");
    expect(await client.reply()).toBe("221 2.0.0 Bye");
    expect(r.messages[0]?.envelope.recipients.map((x) => x.path.mailbox?.local)).toEqual(["b", "c"]);
  });

  test("nodemailer delivers to it, and the bytes arrive unchanged", async () => {
    const r = recorder();
    const server = await start({ backend: r.backend });
    const transport = createTransport({
      host: "127.0.0.1",
      port: port(server),
      secure: false,
      ignoreTLS: true,
    });
    const info = await transport.sendMail({
      from: "alice@example.com",
      to: ["bob@example.com", "carol@example.com"],
      subject: "Grüße",
      text: ".leading dot\nline two\n",
    });
    transport.close();
    expect(info.accepted).toEqual(["bob@example.com", "carol@example.com"]);
    expect(info.response).toBe("250 2.0.0 Ok: queued as Q1");
    const body = r.messages[0]?.body ?? "";
    expect(body).toContain("\r\n\r\n.leading dot\r\nline two\r\n");
    expect(r.messages[0]?.envelope.from.mailbox?.local).toBe("alice");
  });

  test("a big message reaches a slow backend whole (the socket is paused, not buffered without end)", async () => {
    let body = "";
    const r = recorder({
      async data(_session, _envelope, message) {
        const parts: string[] = [];
        for await (const chunk of message) {
          parts.push(Buffer.from(chunk).toString("latin1"));
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
        body = parts.join("");
      },
    });
    const server = await start({ backend: r.backend });
    const client = await RawSmtpClient.connect(port(server));
    await hello(client);
    client.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    await client.reply();
    await client.reply();
    await client.reply();
    const line = `${"x".repeat(76)}\r\n`;
    const message = line.repeat(40_000);
    client.send(`${message}.\r\n`);
    expect(await client.reply()).toBe("250 2.0.0 Ok: queued");
    expect(body.length).toBe(message.length);
    expect(body === message).toBe(true);
  });
});

describe("backend errors", () => {
  test("an SmtpError goes to the wire as is; any other error is 451 and the server keeps going", async () => {
    const errors: unknown[] = [];
    const r = recorder({
      rcpt(_session, to) {
        if (to.mailbox?.local === "nobody") throw new SmtpError(550, "5.1.1", "no such user");
        if (to.mailbox?.local === "bug") throw new Error("database down");
      },
    });
    const server = await start({ backend: r.backend, onError: (error) => errors.push(error) });
    const client = await RawSmtpClient.connect(port(server));
    await hello(client);
    await client.command("MAIL FROM:<a@example.com>\r\n");
    expect(await client.command("RCPT TO:<nobody@example.com>\r\n")).toBe("550 5.1.1 no such user");
    expect(await client.command("RCPT TO:<bug@example.com>\r\n")).toBe(
      "451 4.3.0 Requested action aborted: local error in processing",
    );
    expect(await client.command("RCPT TO:<ok@example.com>\r\n")).toBe("250 2.1.5 Recipient ok");
    expect(errors.map((e) => (e as Error).message)).toEqual(["database down"]);
  });

  test("async hooks are waited for; data() rejecting with SmtpError refuses the message", async () => {
    const r = recorder({
      async mail() {
        await new Promise((resolve) => setTimeout(resolve, 5));
      },
      async data(_s, _e, message) {
        await readMessage(message);
        throw new SmtpError(552, "5.2.2", "mailbox full");
      },
    });
    const server = await start({ backend: r.backend });
    const client = await RawSmtpClient.connect(port(server));
    await hello(client);
    client.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    expect(await client.reply()).toBe("250 2.1.0 Sender ok");
    expect(await client.reply()).toBe("250 2.1.5 Recipient ok");
    expect(await client.reply()).toBe("354 End data with <CR><LF>.<CR><LF>");
    expect(await client.command("x\r\n.\r\n")).toBe("552 5.2.2 mailbox full");
  });

  test("a connect hook may refuse the client", async () => {
    const r = recorder({
      connect() {
        throw new SmtpError(554, "5.7.1", "not you");
      },
    });
    const server = await start({ backend: r.backend });
    const client = await RawSmtpClient.connect(port(server));
    expect(await client.reply()).toBe("554 5.7.1 not you");
    await client.closed;
  });
});

describe("hostile clients", () => {
  test("a fake end-of-data with a smuggled transaction stores nothing smuggled", async () => {
    const r = recorder();
    const server = await start({ backend: r.backend });
    const client = await RawSmtpClient.connect(port(server));
    await hello(client);
    client.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    await client.reply();
    await client.reply();
    await client.reply();
    client.send(
      "Subject: x\r\n\r\nhi\n.\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nsmuggled\r\n.\r\nNOOP\r\n",
    );
    expect(await client.reply()).toBe(
      "550 5.6.0 Error: message contains a bare CR or LF; lines end with CRLF (RFC 5321 section 2.3.8)",
    );
    expect(await client.reply()).toBe("250 2.0.0 Ok");
    expect(r.messages).toEqual([]);
  });

  test("commands before the greeting (with a slow connect hook) get 554 and a close", async () => {
    const r = recorder({
      async connect() {
        await new Promise((resolve) => setTimeout(resolve, 50));
      },
    });
    const server = await start({ backend: r.backend });
    const client = await RawSmtpClient.connect(port(server));
    client.send("EHLO early\r\n");
    expect(await client.reply()).toBe(
      "554 5.5.0 Error: SMTP protocol synchronization: command sent before the greeting",
    );
    await client.closed;
  });

  test("STARTTLS\\r\\nRSET\\r\\n in one segment: the RSET never gets an answer; TLS works", async () => {
    const r = recorder();
    const server = await start({ backend: r.backend, tls: await cert() });
    const client = await RawSmtpClient.connect(port(server));
    expect(await hello(client)).toContain("250-STARTTLS");
    expect(await client.command("STARTTLS\r\nRSET\r\n")).toBe("220 2.0.0 Ready to start TLS");
    await client.startTls();
    const ehlo = await client.command("EHLO client.test\r\n");
    expect(ehlo.startsWith("250-mx.test")).toBe(true);
    expect(ehlo).not.toContain("STARTTLS");
    expect(await client.command("MAIL FROM:<a@example.com>\r\n")).toBe("250 2.1.0 Sender ok");
    expect(await client.command("RCPT TO:<b@example.com>\r\n")).toBe("250 2.1.5 Recipient ok");
    expect(await client.command("DATA\r\n")).toBe("354 End data with <CR><LF>.<CR><LF>");
    expect(await client.command("secret\r\n.\r\n")).toBe("250 2.0.0 Ok: queued as Q1");
    expect(r.messages[0]?.session.tls?.protocol).toMatch(/^TLSv1\.[23]$/);
    client.destroy();
  });

  test("implicit TLS listener", async () => {
    const r = recorder();
    const server = await start({
      backend: r.backend,
      tls: await cert(),
      listen: [{ host: "127.0.0.1", port: 0, implicitTls: true }],
    });
    const client = await RawSmtpClient.connectTls(port(server));
    const ehlo = await hello(client);
    expect(ehlo).not.toContain("STARTTLS");
    expect(ehlo).toContain("250-AUTH PLAIN LOGIN CRAM-MD5");
    client.destroy();
  });

  test("a client that never stops sending commands without reading is throttled, not buffered", async () => {
    const r = recorder();
    const server = await start({ backend: r.backend });
    const client = await RawSmtpClient.connect(port(server));
    await hello(client);
    client.send("NOOP\r\n".repeat(20_000));
    for (let i = 0; i < 20_000; i++) expect(await client.reply()).toBe("250 2.0.0 Ok");
    expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
  });

  test("a half-closed client is let go and the backend is told", async () => {
    const r = recorder();
    const server = await start({ backend: r.backend });
    const client = await RawSmtpClient.connect(port(server));
    await hello(client);
    client.end();
    await client.closed;
    await until(() => r.closed.length === 1);
    expect(server.connections).toBe(0);
  });

  test("a client that disconnects mid-message: the backend's read fails, nothing is stored", async () => {
    let failure: unknown;
    const r = recorder({
      async data(_s, _e, message) {
        try {
          await readMessage(message);
        } catch (error) {
          failure = error;
          throw error;
        }
      },
    });
    const server = await start({ backend: r.backend });
    const client = await RawSmtpClient.connect(port(server));
    await hello(client);
    client.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    await client.reply();
    await client.reply();
    await client.reply();
    client.send("half a message\r\n");
    await new Promise((resolve) => setTimeout(resolve, 20));
    client.destroy();
    await until(() => r.closed.length === 1);
    expect(failure).toBeInstanceOf(SmtpError);
    expect(r.messages).toEqual([]);
  });

  test("idle clients time out with 421 (RFC 5321 §4.5.3.2)", async () => {
    const r = recorder();
    const server = await start({ backend: r.backend, idleTimeoutMs: 50 });
    const client = await RawSmtpClient.connect(port(server));
    await hello(client);
    expect(await client.reply()).toBe("421 4.4.2 mx.test Error: timeout exceeded");
    await client.closed;
  });
});

describe("limits", () => {
  test("maxConnections: one too many gets 421", async () => {
    const r = recorder();
    const server = await start({ backend: r.backend, maxConnections: 1 });
    const first = await RawSmtpClient.connect(port(server));
    await first.reply();
    const second = await RawSmtpClient.connect(port(server));
    expect(await second.reply()).toBe("421 4.7.0 mx.test Error: too many connections, try again later");
    first.destroy();
    await until(() => server.connections === 0);
    const third = await RawSmtpClient.connect(port(server));
    expect(await third.reply()).toBe("220 mx.test ESMTP smtpkit");
    third.destroy();
  });

  test("maxConnectionsPerIp", async () => {
    const r = recorder();
    const server = await start({ backend: r.backend, maxConnectionsPerIp: 2 });
    const clients = await Promise.all([1, 2, 3].map(() => RawSmtpClient.connect(port(server))));
    const greetings = await Promise.all(clients.map((c) => c.reply()));
    expect(greetings.filter((g) => g.startsWith("220")).length).toBe(2);
    expect(greetings.filter((g) => g.startsWith("421 4.7.0")).length).toBe(1);
    for (const c of clients) c.destroy();
  });

  test("many short connections leave nothing behind", async () => {
    const r = recorder();
    const server = await start({ backend: r.backend });
    for (let i = 0; i < 50; i++) {
      const client = await RawSmtpClient.connect(port(server));
      await client.reply();
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
      await client.closed;
    }
    await until(() => r.closed.length === 50);
    expect(server.connections).toBe(0);
  });
});

describe("AUTH through the backend", () => {
  test("PLAIN credentials reach auth(); its refusal goes to the wire", async () => {
    const seen: string[] = [];
    const r = recorder({
      auth(session, mechanism, username, password) {
        seen.push(`${mechanism}:${username}:${String(password)}:${session.id !== ""}`);
        if (password !== "right") throw new SmtpError(535, "5.7.8", "Authentication credentials invalid");
      },
    });
    const server = await start({ backend: r.backend });
    const client = await RawSmtpClient.connect(port(server));
    await hello(client);
    const plain = (p: string) => Buffer.from(`\0alice\0${p}`).toString("base64");
    expect(await client.command(`AUTH PLAIN ${plain("wrong")}\r\n`)).toBe(
      "535 5.7.8 Authentication credentials invalid",
    );
    expect(await client.command(`AUTH PLAIN ${plain("right")}\r\n`)).toBe(
      "235 2.7.0 Authentication successful",
    );
    await client.command("MAIL FROM:<a@example.com>\r\n");
    await client.command("RCPT TO:<b@example.com>\r\n");
    await client.command("DATA\r\n");
    await client.command("x\r\n.\r\n");
    expect(seen).toEqual(["PLAIN:alice:wrong:true", "PLAIN:alice:right:true"]);
    expect(r.messages[0]?.session.authUser).toBe("alice");
  });

  test("CRAM-MD5: the backend verifies the proof with the password", async () => {
    const r = recorder({
      auth(_session, mechanism, _username, password) {
        if (mechanism !== "CRAM-MD5" || typeof password === "string") throw new Error("expected a proof");
        if (!verifyCramMd5("tanstaaf", password.challenge, password.cramResponse))
          throw new SmtpError(535, "5.7.8", "bad");
      },
    });
    const server = await start({ backend: r.backend });
    const client = await RawSmtpClient.connect(port(server));
    await hello(client);
    const challengeLine = await client.command("AUTH CRAM-MD5\r\n");
    expect(challengeLine.startsWith("334 ")).toBe(true);
    const challenge = Buffer.from(challengeLine.slice(4), "base64").toString();
    expect(challenge).toMatch(/^<[0-9a-f]+\.\d+@mx\.test>$/);
    const response = Buffer.from(cramMd5Response("tim", "tanstaaf", challenge)).toString("base64");
    expect(await client.command(`${response}\r\n`)).toBe("235 2.7.0 Authentication successful");
  });
});

describe("shutdown", () => {
  test("close(): idle sessions get 421 now, a transaction in flight finishes first", async () => {
    const r = recorder();
    const server = await start({ backend: r.backend });
    const idle = await RawSmtpClient.connect(port(server));
    await hello(idle);
    const busy = await RawSmtpClient.connect(port(server));
    await hello(busy);
    busy.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n");
    await busy.reply();
    await busy.reply();
    await busy.reply();
    const closing = server.close(5_000);
    expect(await idle.reply()).toBe("421 4.3.2 mx.test Service shutting down");
    expect(await busy.command("last words\r\n.\r\n")).toBe("250 2.0.0 Ok: queued as Q1");
    expect(await busy.reply()).toBe("421 4.3.2 mx.test Service shutting down");
    await closing;
    expect(r.messages.map((m) => m.body)).toEqual(["last words\r\n"]);
    expect(server.connections).toBe(0);
  });

  test("after the grace period what is left is cut off with 421", async () => {
    const r = recorder();
    const server = await start({ backend: r.backend });
    const client = await RawSmtpClient.connect(port(server));
    await hello(client);
    await client.command("MAIL FROM:<a@example.com>\r\n");
    const closing = server.close(30);
    expect(await client.reply()).toBe("421 4.3.2 mx.test Service shutting down");
    await closing;
    await client.closed;
  });
});
