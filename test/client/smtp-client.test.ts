import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { SmtpClientError } from "../../src/client/errors.ts";
import { PreparedMessage } from "../../src/client/prepared-message.ts";
import { type ClientOptions, SmtpClient } from "../../src/client/smtp-client.ts";
import { type ClientTranscriptLine, formatTranscriptLine } from "../../src/client/transcript.ts";
import { parsePath } from "../../src/core/address.ts";
import type { Envelope } from "../../src/core/envelope.ts";
import { createTestPki, type TestPki } from "../helpers/certs.ts";
import { closedPort, type Peer, type ScriptedServer, scriptedServer } from "./scripted-server.ts";

const enc = new TextEncoder();

const EHLO_FULL =
  "250-mx.test greets you\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 DSN\r\n";
const EHLO_CHUNKING = "250-mx.test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n";

let servers: ScriptedServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function serve(...scripts: ((peer: Peer) => Promise<void>)[]): Promise<ScriptedServer> {
  const s = await scriptedServer(...scripts);
  servers.push(s);
  return s;
}

function options(port: number, extra: Partial<ClientOptions> = {}): ClientOptions {
  return { host: "127.0.0.1", port, helo: "client.test", starttls: "never", ...extra };
}

function envelope(from: string, ...to: string[]): Envelope {
  return {
    from: parsePath(from),
    mailParams: { other: [] },
    recipients: to.map((t) => ({ path: parsePath(t), params: { other: [] } })),
  };
}

async function greet(p: Peer, ehlo = EHLO_FULL): Promise<void> {
  p.send("220 mx.test ESMTP ready\r\n");
  expect(await p.line()).toBe("EHLO client.test");
  p.send(ehlo);
}

async function answerQuit(p: Peer): Promise<void> {
  expect(await p.line()).toBe("QUIT");
  p.send("221 2.0.0 bye\r\n");
  p.end();
}

async function expectClientError(promise: Promise<unknown>): Promise<SmtpClientError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(SmtpClientError);
    return error as SmtpClientError;
  }
  throw new Error("expected an SmtpClientError");
}

describe("SmtpClient", () => {
  let pki: TestPki;
  beforeAll(async () => {
    pki = await createTestPki();
  });

  test("pipelined delivery: one write for MAIL, RCPTs and DATA; SIZE announced; stages timed", async () => {
    const server = await serve(async (p) => {
      await greet(p);
      const group = await p.until("DATA\r\n");
      expect(group).toBe(
        "MAIL FROM:<a@client.test> SIZE=20\r\nRCPT TO:<b@mx.test>\r\nRCPT TO:<nobody@mx.test>\r\nDATA\r\n",
      );
      p.send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n");
      expect(await p.until("\r\n.\r\n")).toBe("Subject: t\r\n\r\n..dot\r\n.\r\n");
      p.send("250 2.0.0 queued as ABC\r\n");
      await answerQuit(p);
    });
    const client = await SmtpClient.connect(options(server.port));
    expect(client.greeting.code).toBe(220);
    expect(client.capabilities).toMatchObject({ pipelining: true, size: 10000, dsn: true });
    expect(client.stages.map((s) => s.stage)).toEqual(["connect", "greeting", "ehlo"]);
    expect(client.stages.every((s) => s.ms >= 0)).toBe(true);
    const result = await client.send(
      envelope("<a@client.test>", "<b@mx.test>", "<nobody@mx.test>"),
      enc.encode("Subject: t\n\n.dot\n"),
    );
    expect(result).toMatchObject({
      ok: true,
      method: "data",
      size: 20,
      final: { code: 250, enhanced: "2.0.0", lines: ["queued as ABC"] },
    });
    expect(result.recipients.map((r) => [r.accepted, r.reply?.code])).toEqual([
      [true, 250],
      [false, 550],
    ]);
    expect((await client.quit())?.code).toBe(221);
    await server.done();
  });

  test("EHLO refused: HELO fallback, no extensions, no pipelining", async () => {
    const server = await serve(async (p) => {
      p.send("220 old.test\r\n");
      expect(await p.line()).toBe("EHLO client.test");
      p.send("502 5.5.1 what?\r\n");
      expect(await p.line()).toBe("HELO client.test");
      p.send("250 old.test\r\n");
      expect(await p.line()).toBe("MAIL FROM:<a@client.test>");
      p.send("250 ok\r\n");
      expect(await p.line()).toBe("RCPT TO:<b@old.test>");
      p.send("250 ok\r\n");
      expect(await p.line()).toBe("DATA");
      p.send("354 go\r\n");
      await p.until("\r\n.\r\n");
      p.send("250 ok\r\n");
      await answerQuit(p);
    });
    const client = await SmtpClient.connect(options(server.port));
    expect(client.stages.map((s) => s.stage)).toEqual(["connect", "greeting", "helo"]);
    expect(client.capabilities.pipelining).toBe(false);
    const result = await client.send(envelope("<a@client.test>", "<b@old.test>"), enc.encode("hi\r\n"));
    expect(result.ok).toBe(true);
    await client.quit();
    await server.done();
  });

  test("CHUNKING: MAIL, RCPT and BDAT LAST with the message in one write", async () => {
    const server = await serve(async (p) => {
      await greet(p, EHLO_CHUNKING);
      expect(await p.until("LAST\r\n")).toBe(
        "MAIL FROM:<a@client.test>\r\nRCPT TO:<b@mx.test>\r\nBDAT 9 LAST\r\n",
      );
      expect(await p.bytes(9)).toBe(".x\r\nabc\r\n");
      p.send("250 ok\r\n250 ok\r\n250 2.0.0 got 9 octets\r\n");
      await answerQuit(p);
    });
    const client = await SmtpClient.connect(options(server.port));
    const result = await client.send(envelope("<a@client.test>", "<b@mx.test>"), enc.encode(".x\nabc"));
    expect(result).toMatchObject({ ok: true, method: "bdat", final: { code: 250 } });
    await client.quit();
    await server.done();
  });

  test("chunking: false keeps to DATA even when CHUNKING is offered", async () => {
    const server = await serve(async (p) => {
      await greet(p, EHLO_CHUNKING);
      expect(await p.until("DATA\r\n")).toEndWith("RCPT TO:<b@mx.test>\r\nDATA\r\n");
      p.send("250 ok\r\n250 ok\r\n354 go\r\n");
      await p.until("\r\n.\r\n");
      p.send("250 ok\r\n");
      await answerQuit(p);
    });
    const client = await SmtpClient.connect(options(server.port, { chunking: false }));
    expect((await client.send(envelope("<a@client.test>", "<b@mx.test>"), enc.encode("x"))).method).toBe(
      "data",
    );
    await client.quit();
    await server.done();
  });

  test("a streamed message is dot-stuffed on the way (DATA) and chunked (BDAT)", async () => {
    async function* parts(): AsyncIterable<Uint8Array> {
      yield enc.encode("Subject: s\r\n\r\nline one\r\n.");
      yield enc.encode("line two\r\n");
    }
    const server = await serve(
      async (p) => {
        await greet(p);
        await p.until("DATA\r\n");
        p.send("250 ok\r\n250 ok\r\n354 go\r\n");
        expect(await p.until("\r\n.\r\n")).toBe("Subject: s\r\n\r\nline one\r\n..line two\r\n.\r\n");
        p.send("250 ok\r\n");
        await answerQuit(p);
      },
      async (p) => {
        await greet(p, EHLO_CHUNKING);
        expect(await p.until("RCPT TO:<b@mx.test>\r\n")).toStartWith("MAIL FROM:");
        p.send("250 ok\r\n250 ok\r\n");
        expect(await p.until("LAST\r\n")).toBe("BDAT 35 LAST\r\n");
        expect(await p.bytes(35)).toBe("Subject: s\r\n\r\nline one\r\n.line two\r\n");
        p.send("250 ok\r\n");
        await answerQuit(p);
      },
    );
    for (let i = 0; i < 2; i++) {
      const client = await SmtpClient.connect(options(server.port));
      const result = await client.send(envelope("<a@client.test>", "<b@mx.test>"), parts());
      expect(result.ok).toBe(true);
      await client.quit();
    }
    await server.done();
  });

  test("many transactions on one connection; RSET only after one was left open", async () => {
    const server = await serve(async (p) => {
      await greet(p);
      for (let i = 0; i < 30; i++) {
        const group = await p.until("DATA\r\n");
        const rset = group.startsWith("RSET\r\n");
        expect(rset).toBe(i === 11);
        if (i === 10) {
          p.send("250 ok\r\n451 4.3.0 try later\r\n503 5.5.1 no recipients\r\n");
          continue;
        }
        p.send(`${rset ? "250 flushed\r\n" : ""}250 ok\r\n250 ok\r\n354 go\r\n`);
        await p.until("\r\n.\r\n");
        p.send(`250 ok ${i}\r\n`);
      }
      await answerQuit(p);
    });
    const client = await SmtpClient.connect(options(server.port));
    const message = new PreparedMessage(enc.encode("Subject: repeat\r\n\r\nbody\r\n"));
    const env = envelope("<a@client.test>", "<b@mx.test>");
    const outcomes: string[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await client.send(env, message);
      outcomes.push(r.ok ? "ok" : `${r.failedStage} ${r.failedReply?.code}`);
    }
    expect(outcomes.filter((o) => o === "ok").length).toBe(29);
    expect(outcomes[10]).toBe("rcpt 451");
    await client.quit();
    await server.done();
  });

  test("sendMany: the next transaction is written behind the message, before its reply", async () => {
    const server = await serve(async (p) => {
      await greet(p);
      expect(await p.until("DATA\r\n")).toStartWith("MAIL FROM:<a@client.test>");
      p.send("250 ok\r\n250 ok\r\n354 go\r\n");
      expect(await p.until("\r\n.\r\n")).toBe("one\r\n.\r\n");
      // The client must not wait for this message's reply before starting the next transaction.
      expect(await p.until("DATA\r\n")).toBe(
        "MAIL FROM:<a@client.test> SIZE=5\r\nRCPT TO:<c@mx.test>\r\nDATA\r\n",
      );
      p.send("250 first\r\n250 ok\r\n250 ok\r\n354 go\r\n");
      expect(await p.until("\r\n.\r\n")).toBe("two\r\n.\r\n");
      p.send("250 second\r\n");
      await answerQuit(p);
    });
    const client = await SmtpClient.connect(options(server.port));
    const jobs = [
      { envelope: envelope("<a@client.test>", "<b@mx.test>"), message: enc.encode("one") },
      { envelope: envelope("<a@client.test>", "<c@mx.test>"), message: enc.encode("two") },
    ];
    const finals: string[] = [];
    await client.sendMany(jobs, (_job, outcome) => {
      finals.push(outcome instanceof Error ? outcome.message : (outcome.final?.lines[0] ?? ""));
    });
    expect(finals).toEqual(["first", "second"]);
    await client.quit();
    await server.done();
  });

  test("sendMany: a local refusal skips one job; a broken connection stops the run", async () => {
    const server = await serve(async (p) => {
      await greet(p);
      await p.until("DATA\r\n");
      p.send("250 ok\r\n250 ok\r\n354 go\r\n");
      await p.until("\r\n.\r\n");
      p.send("250 delivered\r\n");
      await p.until("DATA\r\n");
      p.destroy();
    });
    const client = await SmtpClient.connect(options(server.port));
    const env = envelope("<a@client.test>", "<b@mx.test>");
    const jobs = [
      { envelope: env, message: new Uint8Array(50000).fill(97) },
      { envelope: env, message: enc.encode("fits") },
      { envelope: env, message: enc.encode("lost") },
      { envelope: env, message: enc.encode("never started") },
    ];
    const outcomes: string[] = [];
    const error = await expectClientError(
      client.sendMany(
        jobs,
        (_job, outcome) =>
          outcomes.push(
            outcome instanceof SmtpClientError
              ? outcome.kind
              : outcome instanceof Error
                ? outcome.message
                : outcome.ok
                  ? "ok"
                  : "failed",
          ),
        1,
      ),
    );
    expect(error.kind).toBe("closed");
    expect(outcomes).toEqual(["size-exceeded", "ok", "closed"]);
    await server.done();
  });

  test("a message over the server's SIZE is refused before MAIL", async () => {
    const server = await serve(async (p) => {
      await greet(p);
      expect(await p.line()).toBe("QUIT");
      p.send("221 bye\r\n");
      p.end();
    });
    const client = await SmtpClient.connect(options(server.port));
    const error = await expectClientError(
      client.send(envelope("<a@client.test>", "<b@mx.test>"), new Uint8Array(20000).fill(97)),
    );
    expect(error).toMatchObject({ kind: "size-exceeded", stage: "mail", temporary: false });
    expect(error.message).toContain("10000");
    await client.quit();
    await server.done();
  });

  test("a UTF-8 address without SMTPUTF8 is refused; with it, SMTPUTF8 is sent", async () => {
    const server = await serve(async (p) => {
      await greet(p, "250-mx.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
      expect(await p.until("DATA\r\n")).toBe(
        "MAIL FROM:<a@client.test> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<người@mx.test>\r\nDATA\r\n".replace(
          "người",
          Buffer.from("người").toString("latin1"),
        ),
      );
      p.send("250 ok\r\n250 ok\r\n354 go\r\n");
      await p.until("\r\n.\r\n");
      p.send("250 ok\r\n");
      await answerQuit(p);
    });
    const client = await SmtpClient.connect(options(server.port));
    const env = envelope("<a@client.test>", "<b@mx.test>");
    env.recipients[0] = { path: parsePath("<người@mx.test>", { utf8: true }), params: { other: [] } };
    const result = await client.send(env, enc.encode("Subject: chào\r\n\r\nxin chào\r\n"));
    expect(result.ok).toBe(true);
    await client.quit();
    await server.done();

    const plain = await serve(async (p) => {
      await greet(p);
      await answerQuit(p);
    });
    const c2 = await SmtpClient.connect(options(plain.port));
    const error = await expectClientError(c2.send(env, enc.encode("x")));
    expect(error.kind).toBe("smtputf8-unsupported");
    await c2.quit();
    await plain.done();
  });

  test("DSN parameters go out only when DSN is offered", async () => {
    const env = envelope("<a@client.test>", "<b@mx.test>");
    env.mailParams = { ret: "HDRS", envid: "id 1", other: [] };
    env.recipients[0] = {
      path: parsePath("<b@mx.test>"),
      params: { notify: ["FAILURE", "DELAY"], other: [] },
    };
    const server = await serve(
      async (p) => {
        await greet(p);
        expect(await p.until("DATA\r\n")).toBe(
          "MAIL FROM:<a@client.test> SIZE=3 RET=HDRS ENVID=id+201\r\nRCPT TO:<b@mx.test> NOTIFY=FAILURE,DELAY\r\nDATA\r\n",
        );
        p.send("250 ok\r\n250 ok\r\n354 go\r\n");
        await p.until("\r\n.\r\n");
        p.send("250 ok\r\n");
        await answerQuit(p);
      },
      async (p) => {
        await greet(p, "250-mx.test\r\n250 PIPELINING\r\n");
        expect(await p.until("DATA\r\n")).toBe(
          "MAIL FROM:<a@client.test>\r\nRCPT TO:<b@mx.test>\r\nDATA\r\n",
        );
        p.send("250 ok\r\n250 ok\r\n354 go\r\n");
        await p.until("\r\n.\r\n");
        p.send("250 ok\r\n");
        await answerQuit(p);
      },
    );
    const c1 = await SmtpClient.connect(options(server.port));
    expect((await c1.send(env, enc.encode("x"))).warnings).toEqual([]);
    await c1.quit();
    const c2 = await SmtpClient.connect(options(server.port));
    const r2 = await c2.send(env, enc.encode("x"));
    expect(r2.warnings.join(" ")).toContain("DSN");
    await c2.quit();
    await server.done();
  });

  test("AUTH is refused over an unencrypted connection unless allowed; the password is masked", async () => {
    const server = await serve(
      async (p) => {
        await greet(p, "250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n");
        await answerQuit(p);
      },
      async (p) => {
        await greet(p, "250-mx.test\r\n250 AUTH LOGIN\r\n");
        expect(await p.line()).toBe("AUTH LOGIN");
        p.send("334 VXNlcm5hbWU6\r\n");
        expect(await p.line()).toBe(Buffer.from("ana").toString("base64"));
        p.send("334 UGFzc3dvcmQ6\r\n");
        expect(await p.line()).toBe(Buffer.from("s3cret!").toString("base64"));
        p.send("235 2.7.0 welcome\r\n");
        await answerQuit(p);
      },
    );
    const auth = { username: "ana", password: "s3cret!" };
    const error = await expectClientError(SmtpClient.connect(options(server.port, { auth })));
    expect(error).toMatchObject({ kind: "auth-plaintext", stage: "auth" });

    const lines: ClientTranscriptLine[] = [];
    const client = await SmtpClient.connect(
      options(server.port, { auth, allowPlaintextAuth: true, transcript: (l) => lines.push(l) }),
    );
    expect(client.authenticated).toBe(true);
    await client.quit();
    await server.done();
    const text = lines.map(formatTranscriptLine);
    expect(text).toContain(" -> AUTH LOGIN");
    expect(text).toContain(" -> ********");
    expect(text).toContain("<- 235 2.7.0 welcome");
    expect(text.join("\n")).not.toContain(Buffer.from("s3cret!").toString("base64"));
    expect(lines.find((l) => l.direction === "received")?.elapsedMs).toBeGreaterThanOrEqual(0);
  });

  test("AUTH failure carries the reply", async () => {
    const server = await serve(async (p) => {
      await greet(p, "250-mx.test\r\n250 AUTH PLAIN\r\n");
      expect(await p.line()).toStartWith("AUTH PLAIN ");
      p.send("535 5.7.8 authentication credentials invalid\r\n");
      await answerQuit(p);
    });
    const error = await expectClientError(
      SmtpClient.connect(
        options(server.port, { auth: { username: "a", password: "b" }, allowPlaintextAuth: true }),
      ),
    );
    expect(error).toMatchObject({
      kind: "auth-failed",
      temporary: false,
      reply: { code: 535, enhanced: "5.7.8" },
    });
    await server.done();
  });

  test("STARTTLS: verified handshake, EHLO again, transcript marks TLS lines", async () => {
    const server = await serve(async (p) => {
      await greet(p, "250-mx.test\r\n250-STARTTLS\r\n250 PIPELINING\r\n");
      expect(await p.line()).toBe("STARTTLS");
      p.send("220 2.0.0 ready\r\n");
      await p.startTls(pki.server);
      expect(await p.line()).toBe("EHLO client.test");
      p.send("250-mx.test\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n");
      expect(await p.line()).toMatch(/^AUTH PLAIN /);
      p.send("235 ok\r\n");
      await answerQuit(p);
    });
    const lines: ClientTranscriptLine[] = [];
    const client = await SmtpClient.connect(
      options(server.port, {
        host: "localhost",
        starttls: "auto",
        tls: { ca: pki.ca.cert },
        auth: { username: "u", password: "p" },
        transcript: (l) => lines.push(l),
      }),
    );
    expect(client.tls).toMatchObject({ authorized: true });
    expect(client.capabilities.auth).toEqual(["PLAIN"]);
    expect(client.stages.map((s) => s.stage)).toEqual([
      "connect",
      "greeting",
      "ehlo",
      "starttls",
      "tls",
      "ehlo",
      "auth",
    ]);
    await client.quit();
    await server.done();
    const text = lines.map(formatTranscriptLine);
    expect(text).toContain(" -> STARTTLS");
    expect(text).toContain(" ~> EHLO client.test");
    expect(text).toContain("<~ 250 AUTH PLAIN");
    expect(text.some((t) => t.startsWith("=== TLS started"))).toBe(true);
  });

  test("STARTTLS with a certificate that does not verify is a tls-verify error", async () => {
    const server = await serve(async (p) => {
      await greet(p, "250-mx.test\r\n250 STARTTLS\r\n");
      expect(await p.line()).toBe("STARTTLS");
      p.send("220 ready\r\n");
      await p.startTls(pki.unknownCa).catch(() => {});
      await p.closed();
    });
    const error = await expectClientError(
      SmtpClient.connect(
        options(server.port, { host: "localhost", starttls: "always", tls: { ca: pki.ca.cert } }),
      ),
    );
    expect(error).toMatchObject({ kind: "network", stage: "tls", netKind: "tls-verify", temporary: false });
    await server.done();
  });

  test("STARTTLS answered, then no handshake: a timeout at stage tls, bounded by the command timeout", async () => {
    const server = await serve(async (p) => {
      await greet(p, "250-mx.test\r\n250 STARTTLS\r\n");
      expect(await p.line()).toBe("STARTTLS");
      p.send("220 2.0.0 ready\r\n");
      // The ClientHello arrives and is never answered.
      await p.closed();
    });
    const error = await expectClientError(
      SmtpClient.connect(
        options(server.port, {
          host: "localhost",
          starttls: "always",
          tls: { ca: pki.ca.cert },
          timeouts: { command: 200 },
        }),
      ),
    );
    expect(error).toMatchObject({ kind: "timeout", stage: "tls", netKind: "timeout", temporary: true });
    expect(error.message).toContain("TLS handshake");
    await server.done();
  });

  test("starttls always, not offered: tls-unavailable", async () => {
    const server = await serve(async (p) => {
      await greet(p);
      await answerQuit(p);
    });
    const error = await expectClientError(SmtpClient.connect(options(server.port, { starttls: "always" })));
    expect(error).toMatchObject({ kind: "tls-unavailable", stage: "starttls" });
    await server.done();
  });

  test("implicit TLS from the first byte", async () => {
    const tlsServer = await import("node:tls");
    const server = tlsServer.createServer({ cert: pki.server.cert, key: pki.server.key }, (socket) => {
      socket.write("220 secure.test ESMTP\r\n");
      socket.on("data", (d) => {
        const line = d.toString();
        if (line.startsWith("EHLO")) socket.write("250 secure.test\r\n");
        if (line.startsWith("QUIT")) socket.end("221 bye\r\n");
      });
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const client = await SmtpClient.connect(
        options(port, { host: "localhost", implicitTls: true, tls: { ca: pki.ca.cert } }),
      );
      expect(client.tls?.protocol).toMatch(/^TLSv1\.[23]$/);
      expect(client.greeting.lines[0]).toBe("secure.test ESMTP");
      expect((await client.quit())?.code).toBe(221);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test("a refusing greeting is a permanent reply error at the greeting stage", async () => {
    const server = await serve(async (p) => {
      p.send("554 5.7.1 no service for you\r\n");
      await answerQuit(p);
    });
    const error = await expectClientError(SmtpClient.connect(options(server.port)));
    expect(error).toMatchObject({ kind: "reply", stage: "greeting", temporary: false, reply: { code: 554 } });
    await server.done();
  });

  test("connection refused", async () => {
    const port = await closedPort();
    const error = await expectClientError(SmtpClient.connect(options(port)));
    expect(error).toMatchObject({ kind: "network", stage: "connect", netKind: "refused", temporary: true });
  });

  test("no greeting within the timeout", async () => {
    const server = await serve(async (p) => {
      await p.closed();
    });
    const error = await expectClientError(
      SmtpClient.connect(options(server.port, { timeouts: { greeting: 100 } })),
    );
    expect(error).toMatchObject({ kind: "timeout", stage: "greeting", netKind: "timeout", temporary: true });
    await server.done();
  });

  test("the server hangs up in the middle of a transaction", async () => {
    const server = await serve(async (p) => {
      await greet(p);
      await p.until("DATA\r\n");
      p.send("250 ok\r\n");
      p.destroy();
    });
    const client = await SmtpClient.connect(options(server.port));
    const error = await expectClientError(
      client.send(envelope("<a@client.test>", "<b@mx.test>"), enc.encode("x")),
    );
    expect(error).toMatchObject({ kind: "closed", stage: "rcpt", temporary: true });
    expect(client.usable).toBe(false);
    await expectClientError(client.send(envelope("<a@client.test>", "<b@mx.test>"), enc.encode("x")));
    await server.done();
  });

  test("a malformed reply is a protocol error", async () => {
    const server = await serve(async (p) => {
      p.send("220 mx\r\n");
      await p.line();
      p.send("this is not smtp\r\n");
      await p.closed();
    });
    const error = await expectClientError(SmtpClient.connect(options(server.port)));
    expect(error).toMatchObject({ kind: "protocol", stage: "ehlo" });
    await server.done();
  });

  test("verifyRecipients: MAIL, each RCPT, RSET; never DATA", async () => {
    const server = await serve(async (p) => {
      await greet(p);
      expect(await p.line()).toBe("MAIL FROM:<a@client.test>");
      p.send("250 ok\r\n");
      expect(await p.line()).toBe("RCPT TO:<b@mx.test>");
      p.send("250 ok\r\n");
      expect(await p.line()).toBe("RCPT TO:<c@mx.test>");
      p.send("550 5.1.1 unknown\r\n");
      expect(await p.line()).toBe("RSET");
      p.send("250 ok\r\n");
      await answerQuit(p);
    });
    const client = await SmtpClient.connect(options(server.port));
    const check = await client.verifyRecipients(envelope("<a@client.test>", "<b@mx.test>", "<c@mx.test>"));
    expect(check.mail.code).toBe(250);
    expect(check.recipients.map((r) => r.accepted)).toEqual([true, false]);
    expect(check.reset?.code).toBe(250);
    await client.quit();
    await server.done();
  });

  test("typed commands and a typed message (probe's interactive mode)", async () => {
    const server = await serve(async (p) => {
      await greet(p);
      expect(await p.line()).toBe("NOOP");
      p.send("250 ok\r\n");
      expect(await p.line()).toBe("DATA");
      p.send("354 go\r\n");
      expect(await p.until("\r\n.\r\n")).toBe("..leading dot\r\nplain\r\n.\r\n");
      p.send("250 queued\r\n");
      await answerQuit(p);
    });
    const client = await SmtpClient.connect(options(server.port));
    expect((await client.command("NOOP")).code).toBe(250);
    expect((await client.command("DATA")).code).toBe(354);
    expect((await client.data(enc.encode(".leading dot\nplain\n"))).code).toBe(250);
    await client.quit();
    await server.done();
  });
});
