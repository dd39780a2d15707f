// Hostile and broken clients against a running `smtpkit serve` (DESIGN.md's list), over raw TCP.
// Every test checks the replies, that nothing smuggled or rejected was stored, and that the
// server still delivers a normal message afterwards, while a silent client stays connected.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RawSmtpClient } from "../server/raw-smtp-client.ts";
import { latin1, SERVE_HOSTNAME, type ServeProcess, splitReceived, startServe } from "./serve-process.ts";

/** Small limits so "too big" and "too many" are cheap to reach. */
const MAX_SIZE = 64 * 1024;
const MAX_RECIPIENTS = 5;
const GREETING = `220 ${SERVE_HOSTNAME} ESMTP smtpkit`;
const BARE_LINE_END =
  "550 5.6.0 Error: message contains a bare CR or LF; lines end with CRLF (RFC 5321 section 2.3.8)";
const IMPROPER_PIPELINING =
  "503 5.5.0 Error: improper use of SMTP command pipelining (wait for each reply; RFC 2920)";
const TOO_BIG = "552 5.3.4 Error: message exceeds the fixed maximum message size";

let serve: ServeProcess;
/** Connected before every test and never says a word: it must not hold anyone up. */
let silent: RawSmtpClient;
let delivered = 0;

beforeAll(async () => {
  serve = await startServe({
    memory: true,
    args: ["--max-size", String(MAX_SIZE), "--max-recipients", String(MAX_RECIPIENTS)],
  });
  silent = await RawSmtpClient.connect(serve.port);
});

afterAll(async () => {
  silent?.destroy();
  await serve?.close();
});

/** Connects, reads the greeting, says EHLO; returns the client after the EHLO reply. */
async function session(): Promise<RawSmtpClient> {
  const client = await RawSmtpClient.connect(serve.port);
  expect(await client.reply()).toBe(GREETING);
  expect(await client.command("EHLO client.test\r\n")).toStartWith(`250-${SERVE_HOSTNAME}\n`);
  return client;
}

/** A well-behaved client delivers a message, and the API returns exactly what it sent. */
async function expectStillServing(): Promise<void> {
  const before = await serve.count();
  delivered++;
  const message = `Subject: normal ${delivered}\r\nFrom: a@a.test\r\n\r\nstill here\r\n..dot\r\n`;
  const client = await session();
  expect(await client.command("MAIL FROM:<a@a.test>\r\n")).toBe("250 2.1.0 Sender ok");
  expect(await client.command("RCPT TO:<b@b.test>\r\n")).toBe("250 2.1.5 Recipient ok");
  expect(await client.command("DATA\r\n")).toStartWith("354 ");
  const reply = await client.command(`${message}.\r\n`);
  expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as \S+$/);
  expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
  const id = reply.split(" ").at(-1) ?? "";
  const stored = splitReceived(await serve.raw(id));
  expect(latin1(stored.message)).toBe(message.replace("\r\n..dot", "\r\n.dot"));
  expect(await serve.count()).toBe(before + 1);
}

/** Runs a hostile exchange, then checks how many messages it stored and that serving goes on. */
async function hostile(stores: number, exchange: () => Promise<void>): Promise<void> {
  const before = await serve.count();
  await exchange();
  expect(await serve.count()).toBe(before + stores);
  await expectStillServing();
}

async function smuggledCount(): Promise<number> {
  return (await serve.search("subject:smuggled")).length;
}

describe("fake end-of-data sequences followed by a smuggled transaction", () => {
  const smuggled =
    "MAIL FROM:<mallory@evil.test>\r\nRCPT TO:<victim@b.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n";
  const bare: [string, string][] = [
    ["LF . LF", "\n.\n"],
    ["CR . CR", "\r.\r"],
    ["CRLF . LF", "\r\n.\n"],
    ["LF . CRLF", "\n.\r\n"],
  ];

  for (const split of [false, true]) {
    const how = split ? "in two segments" : "in one segment";
    test.each(bare)(`%s ${how}: one 550 for the whole message, nothing stored`, async (_name, fake) => {
      await hostile(0, async () => {
        const client = await session();
        expect(await client.command("MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n")).toBe(
          "250 2.1.0 Sender ok",
        );
        expect(await client.reply()).toBe("250 2.1.5 Recipient ok");
        expect(await client.reply()).toStartWith("354 ");
        const first = `Subject: outer\r\n\r\nhello${fake}`;
        const rest = `${smuggled}.\r\n`;
        if (split) {
          client.send(first);
          await Bun.sleep(20);
          client.send(rest);
        } else client.send(first + rest);
        // Exactly one reply for all of it: the smuggled MAIL, RCPT and DATA were message text.
        expect(await client.reply()).toBe(BARE_LINE_END);
        expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
        expect(await smuggledCount()).toBe(0);
      });
    });
  }

  test("CRLF NUL . CRLF is message text: one message, with the smuggled lines in its body", async () => {
    await hostile(1, async () => {
      const client = await session();
      client.send("MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n");
      expect(await client.reply()).toBe("250 2.1.0 Sender ok");
      expect(await client.reply()).toBe("250 2.1.5 Recipient ok");
      expect(await client.reply()).toStartWith("354 ");
      const body = `Subject: outer nul\r\n\r\nhello\r\n\x00.\r\n${smuggled}`;
      const reply = await client.command(`${body}.\r\n`);
      expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as \S+$/);
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
      const id = reply.split(" ").at(-1) ?? "";
      expect(latin1(splitReceived(await serve.raw(id)).message)).toBe(body);
      expect(await smuggledCount()).toBe(0);
    });
  });

  test("inside a BDAT chunk, a fake end of data and commands are just octets of one message", async () => {
    await hostile(1, async () => {
      const client = await session();
      const chunk = `Subject: outer bdat\r\n\r\nhello\r\n.\r\n${smuggled}.\r\n`;
      client.send(`MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nBDAT ${chunk.length} LAST\r\n${chunk}`);
      expect(await client.reply()).toBe("250 2.1.0 Sender ok");
      expect(await client.reply()).toBe("250 2.1.5 Recipient ok");
      const reply = await client.reply();
      expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as \S+$/);
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
      // BDAT has no dot-stuffing: the stored message is the chunk, octet for octet.
      expect(latin1(splitReceived(await serve.raw(reply.split(" ").at(-1) ?? "")).message)).toBe(chunk);
      expect(await smuggledCount()).toBe(0);
    });
  });

  test("content pipelined behind a refused DATA is never run as commands", async () => {
    await hostile(0, async () => {
      const client = await session();
      client.send(
        "MAIL FROM:<a@a.test>\r\nRCPT TO:<u@d@x.test>\r\nDATA\r\n" +
          "MAIL FROM:<mallory@evil.test>\r\nRCPT TO:<victim@b.test>\r\nDATA\r\n",
      );
      expect(await client.reply()).toBe("250 2.1.0 Sender ok");
      expect(await client.reply()).toStartWith("501 5.1.3 ");
      expect(await client.reply()).toBe("554 5.5.1 Error: no valid recipients");
      for (let i = 0; i < 3; i++) expect(await client.reply()).toBe(IMPROPER_PIPELINING);
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    });
  });
});

describe("bare LF and CR", () => {
  test("in commands: 500, and the session goes on", async () => {
    await hostile(0, async () => {
      const client = await session();
      expect(await client.command("NOOP\n")).toBe(
        "500 5.5.2 Error: bare LF in a command; lines end with CRLF (RFC 5321 section 2.3.8)",
      );
      expect(await client.command("MAIL FROM:<a@a.test>\rRCPT TO:<b@b.test>\r\n")).toBe(
        "500 5.5.2 bare CR, LF or NUL in a command line",
      );
      expect(await client.command("NOOP\r\n")).toBe("250 2.0.0 Ok");
      // No transaction was opened by the line with the bare CR.
      expect(await client.command("RCPT TO:<b@b.test>\r\n")).toBe("503 5.5.1 Error: need MAIL command");
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    });
  });

  test.each([
    ["a bare LF", "Subject: x\nBcc: smuggled@evil.test\r\n\r\nbody\r\n"],
    ["a bare CR", "Subject: x\rBcc: smuggled@evil.test\r\n\r\nbody\r\n"],
  ])("a header with %s rejects the message after its end", async (_name, message) => {
    await hostile(0, async () => {
      const client = await session();
      expect(await client.command("MAIL FROM:<a@a.test>\r\n")).toBe("250 2.1.0 Sender ok");
      expect(await client.command("RCPT TO:<b@b.test>\r\n")).toBe("250 2.1.5 Recipient ok");
      expect(await client.command("DATA\r\n")).toStartWith("354 ");
      expect(await client.command(`${message}.\r\n`)).toBe(BARE_LINE_END);
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    });
  });
});

describe("STARTTLS", () => {
  test("a command pipelined behind STARTTLS in the same segment is discarded (CVE-2011-0411)", async () => {
    await hostile(0, async () => {
      const client = await session();
      expect(await client.command("STARTTLS\r\nRSET\r\n")).toBe("220 2.0.0 Ready to start TLS");
      await client.startTls();
      // Had RSET survived the upgrade, its "250 2.0.0 Ok" would come first here.
      const ehlo = await client.command("EHLO client.test\r\n");
      expect(ehlo).toStartWith(`250-${SERVE_HOSTNAME}\n`);
      expect(ehlo).not.toContain("STARTTLS");
      expect(await client.command("NOOP\r\n")).toBe("250 2.0.0 Ok");
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    });
  });

  test("a transaction pipelined behind STARTTLS is discarded, and mail sent over TLS afterwards is kept", async () => {
    await hostile(1, async () => {
      const client = await session();
      const reply = await client.command(
        "STARTTLS\r\nMAIL FROM:<mallory@evil.test>\r\nRCPT TO:<victim@b.test>\r\nDATA\r\n",
      );
      expect(reply).toBe("220 2.0.0 Ready to start TLS");
      await client.startTls();
      expect(await client.command("EHLO client.test\r\n")).toStartWith(`250-${SERVE_HOSTNAME}\n`);
      expect(await client.command("RCPT TO:<victim@b.test>\r\n")).toBe("503 5.5.1 Error: need MAIL command");
      expect(await client.command("MAIL FROM:<a@a.test>\r\n")).toBe("250 2.1.0 Sender ok");
      expect(await client.command("RCPT TO:<b@b.test>\r\n")).toBe("250 2.1.5 Recipient ok");
      expect(await client.command("DATA\r\n")).toStartWith("354 ");
      const queued = await client.command("Subject: over tls\r\n\r\nhi\r\n.\r\n");
      expect(queued).toMatch(/^250 2\.0\.0 Ok: queued as \S+$/);
      const stored = splitReceived(await serve.raw(queued.split(" ").at(-1) ?? ""));
      expect(stored.received).toContain(" with ESMTPS id ");
      expect((await serve.search("from:mallory@evil.test")).length).toBe(0);
    });
  });
});

describe("protocol synchronization", () => {
  test("a command before the greeting gets 554 and a close", async () => {
    // Hold the greeting back a while, so the client's EHLO surely arrives before it.
    await serve.setChaos({ delay: [{ stage: "connect", ms: 500 }] });
    try {
      await hostile(0, async () => {
        const client = await RawSmtpClient.connect(serve.port);
        client.send("EHLO early.test\r\nMAIL FROM:<a@a.test>\r\n");
        expect(await client.reply()).toBe(
          "554 5.5.0 Error: SMTP protocol synchronization: command sent before the greeting",
        );
        expect(await client.rest()).toBe("");
      });
    } finally {
      await serve.setChaos({});
    }
  });

  test("pipelining after HELO (no PIPELINING offered) is refused command by command", async () => {
    await hostile(0, async () => {
      const client = await RawSmtpClient.connect(serve.port);
      expect(await client.reply()).toBe(GREETING);
      client.send("HELO client.test\r\nMAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\n");
      expect(await client.reply()).toBe(`250 ${SERVE_HOSTNAME}`);
      expect(await client.reply()).toBe(IMPROPER_PIPELINING);
      expect(await client.reply()).toBe(IMPROPER_PIPELINING);
      expect(await client.command("RCPT TO:<b@b.test>\r\n")).toBe("503 5.5.1 Error: need MAIL command");
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    });
  });

  test("a command sent with EHLO, before its reply offered PIPELINING, is refused", async () => {
    await hostile(0, async () => {
      const client = await RawSmtpClient.connect(serve.port);
      expect(await client.reply()).toBe(GREETING);
      client.send("EHLO client.test\r\nMAIL FROM:<a@a.test>\r\n");
      expect(await client.reply()).toContain("\n250-PIPELINING\n");
      expect(await client.reply()).toBe(IMPROPER_PIPELINING);
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    });
  });

  test("a proper pipelined group after EHLO is served (RFC 2920)", async () => {
    await hostile(1, async () => {
      const client = await session();
      client.send("MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nRCPT TO:<c@b.test>\r\nDATA\r\n");
      expect(await client.reply()).toBe("250 2.1.0 Sender ok");
      expect(await client.reply()).toBe("250 2.1.5 Recipient ok");
      expect(await client.reply()).toBe("250 2.1.5 Recipient ok");
      expect(await client.reply()).toStartWith("354 ");
      client.send("Subject: pipelined\r\n\r\nx\r\n.\r\nRSET\r\nQUIT\r\n");
      expect(await client.reply()).toMatch(/^250 2\.0\.0 Ok: queued as /);
      expect(await client.reply()).toBe("250 2.0.0 Ok");
      expect(await client.reply()).toBe("221 2.0.0 Bye");
    });
  });
});

describe("overlong input", () => {
  test("command lines over their limit get 500 and are not executed", async () => {
    await hostile(0, async () => {
      const client = await session();
      const long = `MAIL FROM:<${"a".repeat(1300)}@b.test>\r\n`;
      expect(await client.command(long)).toBe(
        `500 5.5.2 line is ${long.length} octets, the limit is 1202 (RFC 5321 section 4.5.3.1.4)`,
      );
      expect(await client.command(`NOOP ${"a".repeat(20_000)}\r\n`)).toBe("500 5.5.2 Error: line too long");
      // A megabyte without a line end is dropped as it comes, then answered once.
      client.send(`MAIL FROM:<${"x".repeat(1024 * 1024)}`);
      expect(await client.command(">\r\n")).toBe("500 5.5.2 Error: line too long");
      expect(await client.command("RCPT TO:<b@b.test>\r\n")).toBe("503 5.5.1 Error: need MAIL command");
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    });
  });

  test("a text line over 1000 octets rejects the message", async () => {
    await hostile(0, async () => {
      const client = await session();
      client.send("MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n");
      await client.reply();
      await client.reply();
      expect(await client.reply()).toStartWith("354 ");
      expect(await client.command(`Subject: long\r\n\r\n${"y".repeat(1200)}\r\n.\r\n`)).toBe(
        "500 5.5.2 Error: message has a line over 1000 octets (RFC 5321 section 4.5.3.1.6)",
      );
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    });
  });

  test("too many recipients: 452 for each one over the limit, the rest are kept", async () => {
    await hostile(1, async () => {
      const client = await session();
      let group = "MAIL FROM:<a@a.test>\r\n";
      for (let i = 1; i <= MAX_RECIPIENTS + 2; i++) group += `RCPT TO:<r${i}@b.test>\r\n`;
      client.send(`${group}DATA\r\n`);
      expect(await client.reply()).toBe("250 2.1.0 Sender ok");
      for (let i = 1; i <= MAX_RECIPIENTS; i++) expect(await client.reply()).toBe("250 2.1.5 Recipient ok");
      expect(await client.reply()).toBe("452 4.5.3 Error: too many recipients");
      expect(await client.reply()).toBe("452 4.5.3 Error: too many recipients");
      expect(await client.reply()).toStartWith("354 ");
      const queued = await client.command("Subject: many\r\n\r\nx\r\n.\r\n");
      expect(queued).toMatch(/^250 2\.0\.0 Ok: queued as /);
      const [summary] = await serve.search("subject:many");
      expect(summary?.Bcc.map((b) => b.Address).sort()).toEqual(
        Array.from({ length: MAX_RECIPIENTS }, (_, i) => `r${i + 1}@b.test`).sort(),
      );
    });
  });
});

describe("SIZE", () => {
  test("a MAIL SIZE over the limit is refused up front", async () => {
    await hostile(0, async () => {
      const client = await session();
      expect(await client.command(`MAIL FROM:<a@a.test> SIZE=${MAX_SIZE + 1}\r\n`)).toBe(TOO_BIG);
      expect(await client.command(`MAIL FROM:<a@a.test> SIZE=${MAX_SIZE}\r\n`)).toBe("250 2.1.0 Sender ok");
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    });
  });

  test("a DATA message over the limit, with a SIZE that lied, is refused after its end", async () => {
    await hostile(0, async () => {
      const client = await session();
      client.send("MAIL FROM:<a@a.test> SIZE=100\r\nRCPT TO:<b@b.test>\r\nDATA\r\n");
      await client.reply();
      await client.reply();
      expect(await client.reply()).toStartWith("354 ");
      expect(await client.command(`Subject: big\r\n\r\n${"y\r\n".repeat(MAX_SIZE)}.\r\n`)).toBe(TOO_BIG);
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    });
  });

  test("a BDAT message over the limit is refused once its octets are read", async () => {
    await hostile(0, async () => {
      const client = await session();
      const size = MAX_SIZE + 10;
      client.send(`MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nBDAT ${size} LAST\r\n${"z".repeat(size)}`);
      expect(await client.reply()).toBe("250 2.1.0 Sender ok");
      expect(await client.reply()).toBe("250 2.1.5 Recipient ok");
      expect(await client.reply()).toBe(TOO_BIG);
      // The chunk's octets were all consumed as data: the next line is a command again.
      expect(await client.command("NOOP\r\n")).toBe("250 2.0.0 Ok");
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    });
  });
});

describe("wrong command order", () => {
  test("MAIL before EHLO, RCPT before MAIL, DATA before RCPT, nested MAIL, AUTH and STARTTLS in a transaction", async () => {
    await hostile(0, async () => {
      const client = await RawSmtpClient.connect(serve.port);
      expect(await client.reply()).toBe(GREETING);
      expect(await client.command("MAIL FROM:<a@a.test>\r\n")).toBe("503 5.5.1 Error: send HELO/EHLO first");
      expect(await client.command("DATA\r\n")).toBe("503 5.5.1 Error: send HELO/EHLO first");
      expect(await client.command("EHLO client.test\r\n")).toStartWith(`250-${SERVE_HOSTNAME}\n`);
      expect(await client.command("RCPT TO:<b@b.test>\r\n")).toBe("503 5.5.1 Error: need MAIL command");
      expect(await client.command("DATA\r\n")).toBe("503 5.5.1 Error: need MAIL command");
      expect(await client.command("BDAT 3 LAST\r\nabc")).toBe("503 5.5.1 Error: need MAIL command");
      expect(await client.command("MAIL FROM:<a@a.test>\r\n")).toBe("250 2.1.0 Sender ok");
      expect(await client.command("DATA\r\n")).toBe("554 5.5.1 Error: no valid recipients");
      expect(await client.command("MAIL FROM:<a@a.test>\r\n")).toBe("503 5.5.1 Error: nested MAIL command");
      expect(await client.command("AUTH PLAIN AGEAYg==\r\n")).toBe(
        "503 5.5.1 Error: AUTH not allowed during a mail transaction",
      );
      expect(await client.command("STARTTLS\r\n")).toBe(
        "503 5.5.1 Error: STARTTLS not allowed during a mail transaction",
      );
      expect(await client.command("RSET\r\n")).toBe("250 2.0.0 Ok");
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    });
  });

  test("ten errors end the session with 421", async () => {
    await hostile(0, async () => {
      const client = await session();
      for (let i = 1; i < 10; i++)
        expect(await client.command("BOGUS\r\n")).toBe('500 5.5.2 unknown command "BOGUS"');
      expect(await client.command("BOGUS\r\n")).toBe('500 5.5.2 unknown command "BOGUS"');
      expect(await client.reply()).toBe(`421 4.7.0 ${SERVE_HOSTNAME} Error: too many errors`);
      expect(await client.rest()).toBe("");
    });
  });
});

describe("odd addresses", () => {
  test("the null sender, a source route, quoted local parts and address literals are accepted and stored", async () => {
    await hostile(1, async () => {
      const client = await session();
      expect(await client.command("MAIL FROM:<>\r\n")).toBe("250 2.1.0 Sender ok");
      const odd = [
        "<@a.test,@b.test:route@d.test>",
        '<"john doe"@d.test>',
        "<lit@[127.0.0.1]>",
        "<v6@[IPv6:::1]>",
      ];
      for (const path of odd)
        expect(await client.command(`RCPT TO:${path}\r\n`)).toBe("250 2.1.5 Recipient ok");
      expect(await client.command("DATA\r\n")).toStartWith("354 ");
      const message = "Subject: odd addresses\r\n\r\nx\r\n";
      const queued = await client.command(`${message}.\r\n`);
      expect(queued).toMatch(/^250 2\.0\.0 Ok: queued as /);
      const stored = splitReceived(await serve.raw(queued.split(" ").at(-1) ?? ""));
      expect(latin1(stored.message)).toBe(message);
      const [summary] = await serve.search("subject:odd");
      expect(summary?.From?.Address ?? "").toBe("");
      expect(summary?.Bcc.map((b) => b.Address)).toContain("lit@[127.0.0.1]");
    });
  });

  test.each([
    ["two @ signs", "<u@d@x.test>", /^501 5\.1\.3 /],
    ["a NUL", "<u\x00@d.test>", /^500 5\.5\.2 bare CR, LF or NUL/],
    ["a control character", "<u\x01@d.test>", /^501 5\.5\.4 control character/],
    ["a 65-octet local part", `<${"a".repeat(65)}@d.test>`, /^501 5\.1\.3 local part is 65 octets/],
    [
      "a path over 256 octets",
      `<a@${"d".repeat(256)}.test>`,
      /^501 5\.1\.3 path is \d+ octets, the limit is 256/,
    ],
    ["no angle brackets and a space", "u @d.test", /^501 /],
    ["an unterminated quote", '<"u@d.test>', /^501 /],
  ])("RCPT with %s is refused", async (_name, path, expected) => {
    await hostile(0, async () => {
      const client = await session();
      expect(await client.command("MAIL FROM:<a@a.test>\r\n")).toBe("250 2.1.0 Sender ok");
      expect(await client.command(`RCPT TO:${path}\r\n`)).toMatch(expected);
      expect(await client.command("DATA\r\n")).toBe("554 5.5.1 Error: no valid recipients");
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    });
  });
});

describe("bad parameters", () => {
  test.each([
    ["MAIL FROM:<a@a.test> SIZE=-1", /^501 5\.5\.4 SIZE must be a number/],
    ["MAIL FROM:<a@a.test> BODY=bogus", /^501 5\.5\.4 BODY must be/],
    ["MAIL FROM:<a@a.test> SIZE=1 SIZE=2", /^501 5\.5\.4 duplicate SIZE parameter/],
    ["MAIL FROM:<a@a.test> BODY=8BITMIME BODY=7BIT", /^501 5\.5\.4 duplicate BODY parameter/],
    ["MAIL FROM:<a@a.test> FOO=bar", /^555 5\.5\.4 Unsupported parameter FOO/],
    ["MAIL FROM:<a@a.test> RET=SOMETIMES", /^501 /],
    ["MAIL FROM:<a@a.test> ENVID=bad\x01", /^501 /],
  ])("%s is refused, and MAIL works after it", async (line, expected) => {
    await hostile(0, async () => {
      const client = await session();
      expect(await client.command(`${line}\r\n`)).toMatch(expected);
      expect(await client.command("MAIL FROM:<a@a.test>\r\n")).toBe("250 2.1.0 Sender ok");
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    });
  });

  test.each([
    ["NOTIFY=BOGUS", /^501 5\.5\.4 NOTIFY must be/],
    ["NOTIFY=NEVER,SUCCESS", /^501 5\.5\.4 NOTIFY=NEVER cannot be combined/],
    ["NOTIFY=SUCCESS NOTIFY=FAILURE", /^501 5\.5\.4 duplicate NOTIFY parameter/],
    ["X-UNKNOWN=1", /^555 5\.5\.4 Unsupported parameter X-UNKNOWN/],
  ])("RCPT with %s is refused", async (params, expected) => {
    await hostile(0, async () => {
      const client = await session();
      expect(await client.command("MAIL FROM:<a@a.test>\r\n")).toBe("250 2.1.0 Sender ok");
      expect(await client.command(`RCPT TO:<b@b.test> ${params}\r\n`)).toMatch(expected);
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    });
  });

  test("valid DSN, SIZE and BODY parameters are accepted and the message stored", async () => {
    await hostile(1, async () => {
      const client = await session();
      client.send(
        "MAIL FROM:<a@a.test> SIZE=40 BODY=8BITMIME RET=HDRS ENVID=abc+2Bdef\r\n" +
          "RCPT TO:<b@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bx@b.test\r\nDATA\r\n",
      );
      expect(await client.reply()).toBe("250 2.1.0 Sender ok");
      expect(await client.reply()).toBe("250 2.1.5 Recipient ok");
      expect(await client.reply()).toStartWith("354 ");
      expect(await client.command("Subject: dsn\r\n\r\ncaf\xe9\r\n.\r\n")).toMatch(
        /^250 2\.0\.0 Ok: queued as /,
      );
    });
  });
});

describe("silent and half-closed clients", () => {
  test("a client silent in the middle of DATA holds nobody up, and its message is dropped when it leaves", async () => {
    // One message: the one delivered while the other client stalls.
    await hostile(1, async () => {
      const stalled = await session();
      stalled.send("MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n");
      await stalled.reply();
      await stalled.reply();
      expect(await stalled.reply()).toStartWith("354 ");
      stalled.send("Subject: smuggled stalled\r\n\r\nhalf a mess");
      await expectStillServing();
      stalled.destroy();
      await stalled.closed;
      expect(await smuggledCount()).toBe(0);
    });
  });

  test("a client that half-closes after its last command still gets every reply and its message is kept", async () => {
    await hostile(1, async () => {
      const client = await session();
      client.send("MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n");
      await client.reply();
      await client.reply();
      expect(await client.reply()).toStartWith("354 ");
      client.send("Subject: half-closed\r\n\r\nbye\r\n.\r\nQUIT\r\n");
      client.end();
      expect(await client.reply()).toMatch(/^250 2\.0\.0 Ok: queued as /);
      expect(await client.reply()).toBe("221 2.0.0 Bye");
      await client.closed;
    });
  });

  test("a client that half-closes in the middle of DATA: nothing stored, the connection closes", async () => {
    await hostile(0, async () => {
      const client = await session();
      client.send("MAIL FROM:<a@a.test>\r\nRCPT TO:<b@b.test>\r\nDATA\r\n");
      await client.reply();
      await client.reply();
      expect(await client.reply()).toStartWith("354 ");
      client.send("Subject: smuggled half\r\n\r\nno end");
      client.end();
      expect(await client.rest()).not.toContain("250 2.0.0 Ok: queued");
      expect(await smuggledCount()).toBe(0);
    });
  });

  test("a client that connects and leaves at once, or sends garbage and leaves, changes nothing", async () => {
    await hostile(0, async () => {
      const quick = await RawSmtpClient.connect(serve.port);
      quick.destroy();
      const garbage = await RawSmtpClient.connect(serve.port);
      expect(await garbage.reply()).toBe(GREETING);
      garbage.send(new Uint8Array([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x80, 0x0d, 0x0a]));
      garbage.end();
      await garbage.closed;
    });
  });

  test("the silent client connected before all this is still connected, and is served when it speaks", async () => {
    expect(await silent.reply()).toBe(GREETING);
    expect(await silent.command("EHLO late.test\r\n")).toStartWith(`250-${SERVE_HOSTNAME}\n`);
    expect(await silent.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
  });
});

describe("connection limits", () => {
  test("--max-connections: one over the limit gets 421 and is closed; a slot freed is usable again", async () => {
    await using limited = await startServe({ memory: true, http: false, args: ["--max-connections", "2"] });
    const first = await RawSmtpClient.connect(limited.port);
    const second = await RawSmtpClient.connect(limited.port);
    expect(await first.reply()).toBe(GREETING);
    expect(await second.reply()).toBe(GREETING);
    const third = await RawSmtpClient.connect(limited.port);
    expect(await third.reply()).toBe(
      `421 4.7.0 ${SERVE_HOSTNAME} Error: too many connections, try again later`,
    );
    await third.closed;
    expect(await first.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    await first.closed;
    const fourth = await RawSmtpClient.connect(limited.port);
    expect(await fourth.reply()).toBe(GREETING);
    fourth.destroy();
    second.destroy();
  });
});
