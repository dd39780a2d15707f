import { describe, expect, test } from "bun:test";
import { cramMd5Challenge, cramMd5Response, verifyCramMd5 } from "../../src/core/auth-server.ts";
import type { Envelope } from "../../src/core/envelope.ts";
import { SmtpError } from "../../src/core/errors.ts";
import {
  type HookRequest,
  type HookResult,
  ServerSession,
  type ServerSessionOptions,
} from "../../src/core/server-session.ts";

const latin1 = (b: Uint8Array) => Buffer.from(b).toString("latin1");
const bytes = (s: string) => Buffer.from(s, "latin1");

interface StoredMessage {
  envelope: Envelope;
  body: string;
}

/** Everything a conversation produced, in a form tests can compare. */
interface Transcript {
  /** Reply lines the server wrote, without CRLF. */
  replies: string[];
  /** Messages the application was asked to store (message-end). */
  stored: StoredMessage[];
  /** Messages the session aborted (message-abort), with the error. */
  aborted: string[];
  hooks: string[];
  resets: number;
  starttls: number;
  closed: boolean;
}

type Policy = (request: HookRequest) => HookResult;

type Split = "whole" | "bytes" | number;

const defaultOptions: ServerSessionOptions = { hostname: "mx.test", loopback: true };

/** Deterministic xorshift, so a failing split can be replayed from its seed. */
function rng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

function splitSegment(segment: Uint8Array, split: Split, random: () => number): Uint8Array[] {
  if (split === "whole" || segment.length <= 1) return [segment];
  if (split === "bytes") return Array.from(segment, (_, i) => segment.subarray(i, i + 1));
  const parts: Uint8Array[] = [];
  let at = 0;
  while (at < segment.length) {
    const take = 1 + Math.floor(random() * Math.min(segment.length - at, 40));
    parts.push(segment.subarray(at, at + take));
    at += take;
  }
  return parts;
}

class Conversation {
  readonly session: ServerSession;
  readonly t: Transcript = {
    replies: [],
    stored: [],
    aborted: [],
    hooks: [],
    resets: 0,
    starttls: 0,
    closed: false,
  };
  private current: { envelope: Envelope; chunks: string[] } | undefined;
  private partial = "";

  constructor(
    options: Partial<ServerSessionOptions> = {},
    private readonly policy: Policy = () => undefined,
  ) {
    this.session = new ServerSession({ ...defaultOptions, ...options });
    this.drain();
  }

  /** Delivers one segment (what the client sends before reading replies), cut as `split` says. */
  send(segment: string, split: Split = "whole"): this {
    const random = rng(typeof split === "number" ? split : 1);
    for (const part of splitSegment(bytes(segment), split, random)) {
      this.session.receive(part);
      this.drain();
    }
    return this;
  }

  drain(): void {
    for (let action = this.session.nextAction(); action !== null; action = this.session.nextAction()) {
      switch (action.type) {
        case "write": {
          const text = this.partial + Buffer.from(action.bytes).toString("utf8");
          const lines = text.split("\r\n");
          this.partial = lines.pop() ?? "";
          this.t.replies.push(...lines);
          break;
        }
        case "hook": {
          const request = action.request;
          this.t.hooks.push(request.kind);
          if (request.kind === "message-end" && this.current !== undefined) {
            this.t.stored.push({ envelope: request.envelope, body: this.current.chunks.join("") });
            this.current = undefined;
          }
          if (request.kind === "message-abort") {
            this.t.aborted.push(`${request.error.code} ${request.error.message}`);
            this.current = undefined;
          }
          this.session.resolve(this.policy(request));
          break;
        }
        case "message-start":
          this.current = { envelope: action.envelope, chunks: [] };
          break;
        case "message-chunk":
          this.current?.chunks.push(latin1(action.bytes));
          break;
        case "reset":
          this.t.resets++;
          break;
        case "starttls":
          this.t.starttls++;
          break;
        case "close":
          this.t.closed = true;
          break;
      }
    }
  }

  /** Replies since the greeting (the greeting itself dropped). */
  get replies(): string[] {
    return this.t.replies.slice(1);
  }
}

/** Sends segments one after the other; each waits for the replies to the previous one. */
function converse(
  segments: string[],
  options: Partial<ServerSessionOptions> = {},
  policy?: Policy,
  split: Split = "whole",
): Conversation {
  const c = new Conversation(options, policy);
  for (const segment of segments) c.send(segment, split);
  return c;
}

/** Runs the conversation whole, byte by byte and at random splits; all must agree. */
function converseEverySplit(
  segments: string[],
  options: Partial<ServerSessionOptions> = {},
  policy?: Policy,
): Transcript {
  const reference = converse(segments, options, policy, "whole").t;
  expect(converse(segments, options, policy, "bytes").t).toEqual(reference);
  for (let seed = 1; seed <= 25; seed++)
    expect(converse(segments, options, policy, seed).t).toEqual(reference);
  return reference;
}

const EHLO = "EHLO client.test\r\n";
const ENVELOPE = "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n";

describe("greeting and connection", () => {
  test("the connect hook comes first, then the 220 greeting", () => {
    const c = new Conversation();
    expect(c.t.hooks).toEqual(["connect"]);
    expect(c.t.replies).toEqual(["220 mx.test ESMTP smtpkit"]);
  });

  test("a connect hook's SmtpError is written and the connection closes", () => {
    const c = new Conversation({}, (r) =>
      r.kind === "connect" ? new SmtpError(554, "5.7.1", "go away") : undefined,
    );
    expect(c.t.replies).toEqual(["554 5.7.1 go away"]);
    expect(c.t.closed).toBe(true);
  });

  test("commands before the greeting get 554 and a close", () => {
    const session = new ServerSession(defaultOptions);
    const hook = session.nextAction();
    expect(hook).toEqual({ type: "hook", request: { kind: "connect" } });
    expect(session.nextAction()).toBeNull();
    session.receive(bytes("EHLO early\r\nMAIL FROM:<a@b.c>\r\n"));
    expect(session.nextAction()).toBeNull();
    session.resolve();
    const write = session.nextAction();
    expect(write?.type === "write" && latin1(write.bytes)).toBe(
      "554 5.5.0 Error: SMTP protocol synchronization: command sent before the greeting\r\n",
    );
    expect(session.nextAction()).toEqual({ type: "close" });
    expect(session.closed).toBe(true);
  });

  test("EHLO lists the extensions; HELO is a single line", () => {
    const c = converse([EHLO, "HELO client.test\r\n"], { cramChallenge: () => "<1.2@mx.test>" });
    expect(c.replies).toEqual([
      "250-mx.test",
      `250-SIZE ${25 * 1024 * 1024}`,
      "250-PIPELINING",
      "250-8BITMIME",
      "250-SMTPUTF8",
      "250-AUTH PLAIN LOGIN CRAM-MD5",
      "250-CHUNKING",
      "250-DSN",
      "250 ENHANCEDSTATUSCODES",
      "250 mx.test",
    ]);
    expect(c.session.heloName).toBe("client.test");
  });

  test("STARTTLS is offered with a certificate, BINARYMIME on request, AUTH hidden without TLS off loopback", () => {
    const c = converse([EHLO], { startTls: true, binaryMime: true, loopback: false, maxSize: 1000 });
    expect(c.replies).toEqual([
      "250-mx.test",
      "250-SIZE 1000",
      "250-PIPELINING",
      "250-8BITMIME",
      "250-SMTPUTF8",
      "250-STARTTLS",
      "250-CHUNKING",
      "250-BINARYMIME",
      "250-DSN",
      "250 ENHANCEDSTATUSCODES",
    ]);
  });

  test("without ENHANCEDSTATUSCODES replies carry no enhanced codes", () => {
    const c = converse([EHLO, "NOOP\r\n", "MAIL FROM:<x>\r\n"], { enhancedStatusCodes: false });
    expect(c.replies).not.toContain("250 ENHANCEDSTATUSCODES");
    expect(c.replies.slice(-2)).toEqual(["250 Ok", expect.stringMatching(/^501 [^0-9]/)]);
  });
});

describe("a mail transaction", () => {
  const message = "Subject: test\r\n\r\nHello.\r\n..dot line\r\n";
  const segments = [
    EHLO,
    "MAIL FROM:<a@example.com>\r\n",
    "RCPT TO:<b@example.com>\r\n",
    "DATA\r\n",
    `${message.replace(/^\.\./m, "..")}.\r\n`,
    "QUIT\r\n",
  ];

  test("EHLO, MAIL, RCPT, DATA, QUIT in lock step: exact replies, message un-stuffed, any chunking", () => {
    const t = converseEverySplit(segments);
    expect(t.replies.slice(-6)).toEqual([
      "250 ENHANCEDSTATUSCODES",
      "250 2.1.0 Sender ok",
      "250 2.1.5 Recipient ok",
      "354 End data with <CR><LF>.<CR><LF>",
      "250 2.0.0 Ok: queued",
      "221 2.0.0 Bye",
    ]);
    expect(t.stored.length).toBe(1);
    expect(t.stored[0]?.body).toBe("Subject: test\r\n\r\nHello.\r\n.dot line\r\n");
    expect(t.stored[0]?.envelope.from.mailbox).toEqual({ local: "a", domain: "example.com" });
    expect(t.stored[0]?.envelope.recipients.map((r) => r.path.mailbox?.local)).toEqual(["b"]);
    expect(t.hooks).toEqual(["connect", "helo", "mail", "rcpt", "data-start", "message-end"]);
    expect(t.closed).toBe(true);
  });

  test("with PIPELINING a whole transaction may come in one segment, for any chunking", () => {
    const t = converseEverySplit([
      EHLO,
      `${ENVELOPE}RCPT TO:<c@example.com>\r\nDATA\r\n`,
      "one\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<d@example.com>\r\nBDAT 3\r\ntwoBDAT 0 LAST\r\nQUIT\r\n",
    ]);
    expect(t.replies.slice(10)).toEqual([
      "250 2.1.0 Sender ok",
      "250 2.1.5 Recipient ok",
      "250 2.1.5 Recipient ok",
      "354 End data with <CR><LF>.<CR><LF>",
      "250 2.0.0 Ok: queued",
      "250 2.1.0 Sender ok",
      "250 2.1.5 Recipient ok",
      "250 2.0.0 3 octets received",
      "250 2.0.0 Ok: queued",
      "221 2.0.0 Bye",
    ]);
    expect(t.stored.map((m) => m.body)).toEqual(["one\r\n", "two"]);
    expect(t.stored[1]?.envelope.from.mailbox).toBeNull();
  });

  test("the queue id from message-end goes into the reply", () => {
    const c = converse([EHLO, ENVELOPE, "DATA\r\n", "x\r\n.\r\n"], {}, (r) =>
      r.kind === "message-end" ? "Q123" : undefined,
    );
    expect(c.replies.at(-1)).toBe("250 2.0.0 Ok: queued as Q123");
  });

  test("hook rejections go to the wire as they are; without an enhanced code the class's X.0.0", () => {
    const c = converse(
      [EHLO, ENVELOPE, "RCPT TO:<ok@example.com>\r\n", "DATA\r\n", "x\r\n.\r\n"],
      {},
      (r) => {
        if (r.kind === "rcpt" && r.to.mailbox?.local === "b")
          return new SmtpError(550, "5.1.1", "no such user");
        if (r.kind === "message-end") return new SmtpError(451, undefined, "try later");
        return undefined;
      },
    );
    expect(c.replies.slice(-5)).toEqual([
      "250 2.1.0 Sender ok",
      "550 5.1.1 no such user",
      "250 2.1.5 Recipient ok",
      "354 End data with <CR><LF>.<CR><LF>",
      "451 4.0.0 try later",
    ]);
    expect(c.t.stored[0]?.envelope.recipients.length).toBe(1);
  });

  test("a hook may answer later; input meanwhile waits", () => {
    const c = converse([EHLO]);
    const session = c.session;
    session.receive(bytes("MAIL FROM:<a@example.com>\r\n"));
    const hook = session.nextAction();
    expect(hook?.type === "hook" && hook.request.kind).toBe("mail");
    session.receive(bytes("NOOP\r\n"));
    expect(session.waiting).toBe(true);
    expect(session.nextAction()).toBeNull();
    session.resolve();
    const write = session.nextAction();
    expect(write?.type === "write" && latin1(write.bytes)).toBe("250 2.1.0 Sender ok\r\n250 2.0.0 Ok\r\n");
    expect(session.nextAction()).toBeNull();
  });

  test("a command sent while EHLO's hook is pending came before PIPELINING was offered", () => {
    const session = new Conversation().session;
    session.receive(bytes(EHLO));
    expect(session.nextAction()?.type).toBe("hook");
    session.receive(bytes("NOOP\r\n"));
    session.resolve();
    const write = session.nextAction();
    expect(write?.type === "write" && latin1(write.bytes)).toEndWith(
      "250 ENHANCEDSTATUSCODES\r\n503 5.5.0 Error: improper use of SMTP command pipelining (wait for each reply; RFC 2920)\r\n",
    );
  });

  test("RSET drops the transaction and tells the driver", () => {
    const c = converse([EHLO, ENVELOPE, "RSET\r\n", "DATA\r\n"]);
    expect(c.replies.slice(-2)).toEqual(["250 2.0.0 Ok", "503 5.5.1 Error: need MAIL command"]);
    expect(c.t.resets).toBe(1);
  });

  test("EHLO in the middle of a transaction resets it (RFC 5321 §4.1.4)", () => {
    const c = converse([EHLO, ENVELOPE, EHLO, "RCPT TO:<c@example.com>\r\n"]);
    expect(c.replies.at(-1)).toBe("503 5.5.1 Error: need MAIL command");
    expect(c.t.resets).toBe(1);
  });

  test("NOOP, VRFY, EXPN, HELP", () => {
    const c = converse([EHLO, "NOOP\r\n", "VRFY someone\r\n", "EXPN list\r\n", "HELP\r\n"]);
    expect(c.replies.slice(-4)).toEqual([
      "250 2.0.0 Ok",
      "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery",
      "502 5.5.1 EXPN not available",
      "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH (see RFC 5321)",
    ]);
  });

  test("after QUIT further input is ignored", () => {
    const c = converse([EHLO, "QUIT\r\nNOOP\r\n", "NOOP\r\n"]);
    expect(c.replies.slice(-1)).toEqual(["221 2.0.0 Bye"]);
    expect(c.t.closed).toBe(true);
  });

  test("DSN, SMTPUTF8 and 8BITMIME parameters are kept in the envelope", () => {
    const c = converse(
      [
        EHLO,
        "MAIL FROM:<ü@exämple.com> BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+2B1 SIZE=100\r\n",
        "RCPT TO:<bé@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40example.com\r\n",
        "DATA\r\n",
        "x\r\n.\r\n",
      ].map((s) => Buffer.from(s, "utf8").toString("latin1")),
    );
    expect(c.replies.slice(-4)).toEqual([
      "250 2.1.0 Sender ok",
      "250 2.1.5 Recipient ok",
      "354 End data with <CR><LF>.<CR><LF>",
      "250 2.0.0 Ok: queued",
    ]);
    const envelope = c.t.stored[0]?.envelope;
    expect(envelope?.mailParams).toEqual({
      body: "8BITMIME",
      smtpUtf8: true,
      ret: "HDRS",
      envid: "id+1",
      size: 100,
      other: [],
    });
    expect(envelope?.from.mailbox).toEqual({ local: "ü", domain: "exämple.com" });
    expect(envelope?.recipients[0]?.params).toEqual({
      notify: ["SUCCESS", "FAILURE"],
      orcpt: { type: "rfc822", address: "b@example.com" },
      other: [],
    });
  });
});

describe("wrong command order (RFC 5321 §4.1.4, 503 5.5.1)", () => {
  test("MAIL before EHLO", () => {
    expect(converse(["MAIL FROM:<a@b.c>\r\n"]).replies).toEqual(["503 5.5.1 Error: send HELO/EHLO first"]);
  });

  test("RCPT before MAIL, DATA before MAIL, nested MAIL, DATA without recipients", () => {
    const c = converse([
      EHLO,
      "RCPT TO:<b@example.com>\r\n",
      "DATA\r\n",
      "MAIL FROM:<a@example.com>\r\n",
      "MAIL FROM:<a@example.com>\r\n",
      "DATA\r\n",
    ]);
    expect(c.replies.slice(-5)).toEqual([
      "503 5.5.1 Error: need MAIL command",
      "503 5.5.1 Error: need MAIL command",
      "250 2.1.0 Sender ok",
      "503 5.5.1 Error: nested MAIL command",
      "554 5.5.1 Error: no valid recipients",
    ]);
  });

  test("unknown verbs get 500 5.5.2", () => {
    expect(converse([EHLO, "FOO bar\r\n"]).replies.at(-1)).toBe('500 5.5.2 unknown command "FOO"');
  });

  test("ESMTP parameters after HELO are refused", () => {
    const c = converse(["HELO client.test\r\n", "MAIL FROM:<a@example.com> SIZE=10\r\n"]);
    expect(c.replies.at(-1)).toBe("555 5.5.4 Unsupported parameter SIZE (send EHLO for ESMTP)");
  });
});

describe("hostile input", () => {
  const smuggled =
    "MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nFrom: ceo\r\n\r\nwire money\r\n";
  const fakes: [string, string, string][] = [
    ["\\n.\\n", "\n.\n", "550 5.6.0"],
    ["\\r.\\r", "\r.\r", "550 5.6.0"],
    ["\\r\\n.\\n", "\r\n.\n", "550 5.6.0"],
    ["\\n.\\r\\n", "\n.\r\n", "550 5.6.0"],
    ["\\r\\n\\x00.\\r\\n", "\r\n\x00.\r\n", "250 2.0.0"],
  ];
  for (const [name, fake, verdict] of fakes) {
    test(`fake end-of-data ${name} with a smuggled transaction: no second message`, () => {
      const t = converseEverySplit([
        EHLO,
        ENVELOPE,
        "DATA\r\n",
        `Subject: x\r\n\r\nhi${fake}${smuggled}.\r\n`,
        "NOOP\r\n",
      ]);
      const replies = t.replies.slice(10);
      expect(replies.length).toBe(5);
      expect(replies.slice(0, 3)).toEqual([
        "250 2.1.0 Sender ok",
        "250 2.1.5 Recipient ok",
        "354 End data with <CR><LF>.<CR><LF>",
      ]);
      expect(replies[3]?.startsWith(verdict)).toBe(true);
      expect(replies[4]).toBe("250 2.0.0 Ok");
      // One message-start only: the smuggled MAIL/RCPT/DATA never ran as commands.
      expect(t.hooks.filter((h) => h === "mail").length).toBe(1);
      expect(t.hooks.filter((h) => h === "data-start").length).toBe(1);
      if (verdict === "250 2.0.0") {
        expect(t.stored.length).toBe(1);
        expect(t.stored[0]?.body).toContain(smuggled);
      } else {
        expect(t.stored).toEqual([]);
        expect(t.aborted.length).toBe(1);
      }
    });
  }

  test("a bare LF ends no command line: the line is refused, the next one runs", () => {
    const c = converse([EHLO, "MAIL FROM:<a@example.com>\nRCPT TO:<b@example.com>\r\n", "NOOP\r\n"]);
    expect(c.replies.slice(-3)).toEqual([
      "500 5.5.2 Error: bare LF in a command; lines end with CRLF (RFC 5321 section 2.3.8)",
      "503 5.5.1 Error: need MAIL command",
      "250 2.0.0 Ok",
    ]);
    expect(c.t.hooks).not.toContain("mail");
  });

  test("a bare CR inside a command line makes it invalid", () => {
    const c = converse([EHLO, "NOOP\rRSET\r\n"]);
    expect(c.replies.at(-1)).toBe("500 5.5.2 bare CR, LF or NUL in a command line");
    expect(c.t.resets).toBe(0);
  });

  test("bare LF inside a message header: rejected after the real end", () => {
    const t = converseEverySplit([EHLO, ENVELOPE, "DATA\r\n", "Subject: a\nBcc: x\r\n\r\nbody\r\n.\r\n"]);
    expect(t.replies.at(-1)).toBe(
      "550 5.6.0 Error: message contains a bare CR or LF; lines end with CRLF (RFC 5321 section 2.3.8)",
    );
    expect(t.stored).toEqual([]);
  });

  test("STARTTLS\\r\\nRSET\\r\\n in one segment: the RSET is discarded", () => {
    const c = converse([EHLO, "STARTTLS\r\nRSET\r\n"], { startTls: true });
    expect(c.replies.at(-1)).toBe("220 2.0.0 Ready to start TLS");
    expect(c.t.starttls).toBe(1);
    c.session.receive(bytes("NOOP\r\n"));
    c.drain();
    c.session.tlsStarted();
    c.drain();
    expect(c.replies.at(-1)).toBe("220 2.0.0 Ready to start TLS");
    expect(c.t.resets).toBe(0);
    expect(c.session.secure).toBe(true);
    // The session starts over: EHLO first, STARTTLS no longer offered nor accepted.
    c.send("MAIL FROM:<a@example.com>\r\n").send(EHLO).send("STARTTLS\r\n");
    expect(c.replies.slice(-11)).toEqual([
      "503 5.5.1 Error: send HELO/EHLO first",
      "250-mx.test",
      `250-SIZE ${25 * 1024 * 1024}`,
      "250-PIPELINING",
      "250-8BITMIME",
      "250-SMTPUTF8",
      "250-AUTH PLAIN LOGIN",
      "250-CHUNKING",
      "250-DSN",
      "250 ENHANCEDSTATUSCODES",
      "503 5.5.1 Error: TLS already active",
    ]);
  });

  test("STARTTLS without a certificate, before EHLO, or inside a transaction is refused", () => {
    expect(converse([EHLO, "STARTTLS\r\n"]).replies.at(-1)).toBe("502 5.5.1 Error: STARTTLS not available");
    expect(converse(["STARTTLS\r\n"], { startTls: true }).replies).toEqual([
      "503 5.5.1 Error: send EHLO first (this is an ESMTP command)",
    ]);
    expect(converse([EHLO, "MAIL FROM:<a@b.c>\r\n", "STARTTLS\r\n"], { startTls: true }).replies.at(-1)).toBe(
      "503 5.5.1 Error: STARTTLS not allowed during a mail transaction",
    );
  });

  test("pipelining after HELO (no PIPELINING offered) is refused and not executed", () => {
    const c = converse(["HELO client.test\r\n", ENVELOPE]);
    expect(c.replies).toEqual([
      "250 mx.test",
      "250 2.1.0 Sender ok",
      "503 5.5.0 Error: improper use of SMTP command pipelining (wait for each reply; RFC 2920)",
    ]);
    expect(c.t.hooks).not.toContain("rcpt");
  });

  test("commands sent with EHLO, before its reply offered PIPELINING, are refused", () => {
    const c = converse([`${EHLO}MAIL FROM:<a@example.com>\r\n`]);
    expect(c.replies.at(-1)).toBe(
      "503 5.5.0 Error: improper use of SMTP command pipelining (wait for each reply; RFC 2920)",
    );
    expect(c.t.hooks).not.toContain("mail");
  });

  test("with PIPELINING disabled, a group is refused even after EHLO", () => {
    const c = converse([EHLO, ENVELOPE], { pipelining: false });
    expect(c.replies).not.toContain("250-PIPELINING");
    expect(c.replies.slice(-2)).toEqual([
      "250 2.1.0 Sender ok",
      "503 5.5.0 Error: improper use of SMTP command pipelining (wait for each reply; RFC 2920)",
    ]);
  });

  test("a BDAT refused for pipelining still has its octets read as data", () => {
    const inner = "MAIL FROM:<evil@x.test>\r\n";
    const c = converse(
      [
        EHLO,
        "MAIL FROM:<a@example.com>\r\n",
        "RCPT TO:<b@example.com>\r\n",
        `BDAT 4\r\nabcdBDAT ${inner.length} LAST\r\n${inner}`,
        "NOOP\r\n",
      ],
      { pipelining: false },
    );
    expect(c.replies.slice(-3)).toEqual([
      "250 2.0.0 4 octets received",
      "503 5.5.0 Error: improper use of SMTP command pipelining (wait for each reply; RFC 2920)",
      "250 2.0.0 Ok",
    ]);
    expect(c.t.hooks.filter((h) => h === "mail").length).toBe(1);
  });

  test("content sent behind a refused DATA is never run as commands, even with PIPELINING", () => {
    const c = converse([
      EHLO,
      "MAIL FROM:<a@example.com>\r\nDATA\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<v@y.test>\r\n",
    ]);
    expect(c.replies.slice(-4)).toEqual([
      "250 2.1.0 Sender ok",
      "554 5.5.1 Error: no valid recipients",
      "503 5.5.0 Error: improper use of SMTP command pipelining (wait for each reply; RFC 2920)",
      "503 5.5.0 Error: improper use of SMTP command pipelining (wait for each reply; RFC 2920)",
    ]);
    expect(c.t.hooks.filter((h) => h === "mail").length).toBe(1);
    expect(c.t.hooks).not.toContain("rcpt");
  });

  test("a command line over 512 octets gets 500 5.5.2; the session stays in step", () => {
    const c = converse([EHLO, `NOOP ${"x".repeat(600)}\r\n`, "NOOP\r\n"]);
    expect(c.replies.slice(-2)).toEqual([
      "500 5.5.2 line is 607 octets, the limit is 512 (RFC 5321 section 4.5.3.1.4)",
      "250 2.0.0 Ok",
    ]);
  });

  test("a huge line is dropped as it comes (bounded memory) and answered once at its end", () => {
    const c = new Conversation();
    c.send(EHLO);
    for (let i = 0; i < 100; i++) c.send("A".repeat(10_000));
    c.send("\r\nNOOP\r\n");
    expect(c.replies.slice(-2)).toEqual(["500 5.5.2 Error: line too long", "250 2.0.0 Ok"]);
  });

  test("a message line over 1000 octets: 500 5.5.2 after the dot, never a desync", () => {
    const t = converseEverySplit([
      EHLO,
      ENVELOPE,
      "DATA\r\n",
      `${"y".repeat(1200)}\r\nMAIL FROM:<x@y.z>\r\n.\r\n`,
      "NOOP\r\n",
    ]);
    expect(t.replies.slice(-2)).toEqual([
      "500 5.5.2 Error: message has a line over 1000 octets (RFC 5321 section 4.5.3.1.6)",
      "250 2.0.0 Ok",
    ]);
    expect(t.stored).toEqual([]);
    expect(t.hooks.filter((h) => h === "mail").length).toBe(1);
  });

  test("SIZE over the limit is refused at MAIL", () => {
    const c = converse([EHLO, "MAIL FROM:<a@example.com> SIZE=2000\r\n"], { maxSize: 1000 });
    expect(c.replies.at(-1)).toBe("552 5.3.4 Error: message exceeds the fixed maximum message size");
  });

  test("a message over the limit is refused after the dot and dropped while it streams", () => {
    const big = `${"z".repeat(100)}\r\n`.repeat(30);
    const t = converseEverySplit([EHLO, ENVELOPE, "DATA\r\n", `${big}.\r\n`, "NOOP\r\n"], { maxSize: 1000 });
    expect(t.replies.slice(-2)).toEqual([
      "552 5.3.4 Error: message exceeds the fixed maximum message size",
      "250 2.0.0 Ok",
    ]);
    expect(t.stored).toEqual([]);
    expect(t.aborted).toEqual(["552 Error: message exceeds the fixed maximum message size"]);
  });

  test("too many recipients: 452 4.5.3", () => {
    const c = converse(
      [
        EHLO,
        "MAIL FROM:<a@example.com>\r\n",
        "RCPT TO:<b@x.test>\r\n",
        "RCPT TO:<c@x.test>\r\n",
        "RCPT TO:<d@x.test>\r\n",
      ],
      {
        maxRecipients: 2,
      },
    );
    expect(c.replies.slice(-3)).toEqual([
      "250 2.1.5 Recipient ok",
      "250 2.1.5 Recipient ok",
      "452 4.5.3 Error: too many recipients",
    ]);
  });

  test("too many errors: 421 and close after the tenth", () => {
    const c = converse([EHLO, ...Array.from({ length: 12 }, () => "BOGUS\r\n")]);
    const replies = c.replies.slice(9);
    expect(replies.length).toBe(11);
    expect(replies.slice(0, 10).every((r) => r === '500 5.5.2 unknown command "BOGUS"')).toBe(true);
    expect(replies[10]).toBe("421 4.7.0 mx.test Error: too many errors");
    expect(c.t.closed).toBe(true);
  });

  test("odd addresses", () => {
    const mail = (path: string) => converse([EHLO, `MAIL FROM:${path}\r\n`]).replies.at(-1);
    expect(mail("<>")).toBe("250 2.1.0 Sender ok");
    expect(mail("<@a.test,@b.test:u@d.test>")).toBe("250 2.1.0 Sender ok");
    expect(mail('<"john doe"@example.com>')).toBe("250 2.1.0 Sender ok");
    expect(mail("<u@[192.0.2.1]>")).toBe("250 2.1.0 Sender ok");
    expect(mail("<u@d@x.test>")).toMatch(/^501 5\.1\.7 /);
    expect(mail("<u\x00@d.test>")).toMatch(/^500 5\.5\.2 /);
    expect(mail("<u\x01@d.test>")).toMatch(/^501 5\.5\.4 /);
    expect(mail("u@d.test")).toMatch(/^501 5\.1\.7 /);
    expect(mail(Buffer.from("<ü@d.test>", "utf8").toString("latin1"))).toMatch(/^553 5\.6\.7 /);
    expect(converse([EHLO, "MAIL FROM:<a@b.test>\r\n", "RCPT TO:<>\r\n"]).replies.at(-1)).toMatch(
      /^501 5\.1\.3 /,
    );
    expect(converse([EHLO, "MAIL FROM:<a@b.test>\r\n", "RCPT TO:<Postmaster>\r\n"]).replies.at(-1)).toBe(
      "250 2.1.5 Recipient ok",
    );
    const utf8Rcpt = converse([
      EHLO,
      "MAIL FROM:<a@b.test>\r\n",
      Buffer.from("RCPT TO:<ü@d.test>\r\n", "utf8").toString("latin1"),
    ]);
    expect(utf8Rcpt.replies.at(-1)).toMatch(/^553 5\.6\.7 /);
  });

  test("invalid UTF-8 in a command line", () => {
    expect(converse([EHLO, "NOOP \xff\xfe\r\n"]).replies.at(-1)).toBe(
      "500 5.5.2 Error: command is not valid UTF-8",
    );
  });

  test("bad parameters", () => {
    const mail = (params: string, options: Partial<ServerSessionOptions> = {}) =>
      converse([EHLO, `MAIL FROM:<a@example.com> ${params}\r\n`], options).replies.at(-1);
    expect(mail("SIZE=-1")).toMatch(/^501 5\.5\.4 SIZE must be a number/);
    expect(mail("BODY=bogus")).toMatch(/^501 5\.5\.4 BODY must be/);
    expect(mail("SIZE=1 SIZE=2")).toBe("501 5.5.4 duplicate SIZE parameter");
    expect(mail("FOO=bar")).toBe("555 5.5.4 Unsupported parameter FOO");
    expect(mail("BODY=BINARYMIME")).toBe("555 5.5.4 Unsupported parameter BODY=BINARYMIME");
    expect(mail("RET=FULL", { dsn: false })).toBe("555 5.5.4 Unsupported parameter RET");
    expect(mail("SMTPUTF8", { smtpUtf8: false })).toBe("555 5.5.4 Unsupported parameter SMTPUTF8");
    expect(mail("=x")).toMatch(/^555 5\.5\.4 malformed parameter/);
    const rcpt = converse([
      EHLO,
      "MAIL FROM:<a@b.test>\r\n",
      "RCPT TO:<c@d.test> NOTIFY=NEVER,SUCCESS\r\n",
      "RCPT TO:<c@d.test> XFOO\r\n",
    ]);
    expect(rcpt.replies.slice(-2)).toEqual([
      "501 5.5.4 NOTIFY=NEVER cannot be combined with other types",
      "555 5.5.4 Unsupported parameter XFOO",
    ]);
  });
});

describe("BDAT (RFC 3030)", () => {
  test("chunks add up; octets are taken verbatim, dots and CRLF.CRLF included", () => {
    const payload = "a\r\n.\r\nMAIL FROM:<evil@x.test>\r\n";
    const t = converseEverySplit([
      EHLO,
      ENVELOPE,
      `BDAT ${payload.length}\r\n${payload}`,
      "BDAT 3 LAST\r\nend",
    ]);
    expect(t.replies.slice(-2)).toEqual([
      `250 2.0.0 ${payload.length} octets received`,
      "250 2.0.0 Ok: queued",
    ]);
    expect(t.stored.map((m) => m.body)).toEqual([`${payload}end`]);
    expect(t.hooks.filter((h) => h === "mail").length).toBe(1);
  });

  test("BDAT 0 LAST ends the message; DATA after BDAT is refused", () => {
    const c = converse([EHLO, ENVELOPE, "BDAT 2\r\nhi", "DATA\r\n", "BDAT 0 LAST\r\n"]);
    expect(c.replies.slice(-3)).toEqual([
      "250 2.0.0 2 octets received",
      "503 5.5.1 Error: DATA and BDAT cannot be mixed in one transaction",
      "250 2.0.0 Ok: queued",
    ]);
    expect(c.t.stored.map((m) => m.body)).toEqual(["hi"]);
  });

  test("a refused BDAT still has its octets read, so they never run as commands", () => {
    const inner = "MAIL FROM:<evil@x.test>\r\n";
    const c = converse([EHLO, `BDAT ${inner.length} LAST\r\n${inner}`, "NOOP\r\n"]);
    expect(c.replies.slice(-2)).toEqual(["503 5.5.1 Error: need MAIL command", "250 2.0.0 Ok"]);
    expect(c.t.hooks).not.toContain("mail");
    const helo = converse(["HELO c.test\r\n", `BDAT ${inner.length} LAST\r\n${inner}`, "NOOP\r\n"]);
    expect(helo.replies.slice(-2)).toEqual([
      "503 5.5.1 Error: send EHLO first (this is an ESMTP command)",
      "250 2.0.0 Ok",
    ]);
  });

  test("a chunk over the size limit ends the transaction with 552", () => {
    const c = converse(
      [
        EHLO,
        ENVELOPE,
        "BDAT 600\r\n",
        "x".repeat(600),
        "BDAT 600 LAST\r\n",
        "y".repeat(600),
        "BDAT 1 LAST\r\nz",
        "NOOP\r\n",
      ],
      {
        maxSize: 1000,
      },
    );
    expect(c.replies.slice(-4)).toEqual([
      "250 2.0.0 600 octets received",
      "552 5.3.4 Error: message exceeds the fixed maximum message size",
      "503 5.5.1 Error: need MAIL command",
      "250 2.0.0 Ok",
    ]);
    expect(c.t.stored).toEqual([]);
    expect(c.t.aborted.length).toBe(1);
  });

  test("RSET in the middle of a BDAT message aborts it", () => {
    const c = converse([EHLO, ENVELOPE, "BDAT 2\r\nhi", "RSET\r\n"]);
    expect(c.replies.at(-1)).toBe("250 2.0.0 Ok");
    expect(c.t.aborted).toEqual(["451 transaction reset"]);
    expect(c.t.resets).toBe(1);
  });

  test("BODY=BINARYMIME needs BDAT", () => {
    const c = converse(
      [
        EHLO,
        "MAIL FROM:<a@b.test> BODY=BINARYMIME\r\n",
        "RCPT TO:<c@d.test>\r\n",
        "DATA\r\n",
        "BDAT 1 LAST\r\n\x00",
      ],
      {
        binaryMime: true,
      },
    );
    expect(c.replies.slice(-2)).toEqual([
      "503 5.5.1 Error: BODY=BINARYMIME requires BDAT",
      "250 2.0.0 Ok: queued",
    ]);
    expect(c.t.stored[0]?.body).toBe("\x00");
  });
});

describe("AUTH (RFC 4954)", () => {
  const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
  const credentialsOf = (c: Conversation) => c.t.hooks.includes("auth");

  function authConversation(segments: string[], options: Partial<ServerSessionOptions> = {}, accept = true) {
    const seen: HookRequest[] = [];
    const c = converse([EHLO, ...segments], options, (r) => {
      if (r.kind !== "auth") return undefined;
      seen.push(r);
      return accept ? undefined : new SmtpError(535, "5.7.8", "Authentication credentials invalid");
    });
    return { c, seen };
  }

  test("PLAIN with an initial response", () => {
    const { c, seen } = authConversation([`AUTH PLAIN ${b64("\0alice\0secret")}\r\n`]);
    expect(c.replies.at(-1)).toBe("235 2.7.0 Authentication successful");
    expect(seen).toEqual([
      { kind: "auth", credentials: { mechanism: "PLAIN", username: "alice", password: "secret" } },
    ]);
    expect(c.session.authUser).toBe("alice");
  });

  test("PLAIN after an empty challenge, with an authorization id", () => {
    const { c, seen } = authConversation(["AUTH PLAIN\r\n", `${b64("boss\0alice\0pw")}\r\n`]);
    expect(c.replies.slice(-2)).toEqual(["334 ", "235 2.7.0 Authentication successful"]);
    expect(seen[0]).toEqual({
      kind: "auth",
      credentials: { mechanism: "PLAIN", username: "alice", password: "pw", authorizationId: "boss" },
    });
  });

  test("LOGIN asks for the user name, then the password", () => {
    const { c, seen } = authConversation(["AUTH LOGIN\r\n", `${b64("bob")}\r\n`, `${b64("pässword")}\r\n`]);
    expect(c.replies.slice(-3)).toEqual([
      "334 VXNlcm5hbWU6",
      "334 UGFzc3dvcmQ6",
      "235 2.7.0 Authentication successful",
    ]);
    expect(seen[0]).toEqual({
      kind: "auth",
      credentials: { mechanism: "LOGIN", username: "bob", password: "pässword" },
    });
  });

  test("CRAM-MD5: the challenge comes from outside, the response is checkable", () => {
    const challenge = cramMd5Challenge("8f3a", 1_700_000_000_000, "mx.test");
    const { c, seen } = authConversation(
      ["AUTH CRAM-MD5\r\n", `${b64(cramMd5Response("carol", "tanstaaftanstaaf", challenge))}\r\n`],
      { cramChallenge: () => challenge, loopback: false },
    );
    expect(c.replies.slice(-2)).toEqual([`334 ${b64(challenge)}`, "235 2.7.0 Authentication successful"]);
    const credentials = seen[0]?.kind === "auth" ? seen[0].credentials : undefined;
    expect(credentials?.mechanism).toBe("CRAM-MD5");
    if (credentials?.mechanism !== "CRAM-MD5") throw new Error("expected CRAM-MD5 credentials");
    expect(credentials.username).toBe("carol");
    expect(verifyCramMd5("tanstaaftanstaaf", credentials.challenge, credentials.response)).toBe(true);
    expect(verifyCramMd5("wrong", credentials.challenge, credentials.response)).toBe(false);
  });

  test("the client may cancel with *; bad base64 is refused", () => {
    const cancel = authConversation(["AUTH LOGIN\r\n", "*\r\n"]).c;
    expect(cancel.replies.at(-1)).toBe("501 5.7.0 Authentication cancelled");
    expect(credentialsOf(cancel)).toBe(false);
    const bad = authConversation(["AUTH PLAIN\r\n", "!!!\r\n", "NOOP\r\n"]).c;
    expect(bad.replies.slice(-2)).toEqual(["501 5.5.2 cannot decode the response as base64", "250 2.0.0 Ok"]);
    const malformed = authConversation([`AUTH PLAIN ${b64("no-nuls")}\r\n`]).c;
    expect(malformed.replies.at(-1)).toMatch(/^501 5\.5\.2 malformed PLAIN response/);
  });

  test("the auth hook's refusal goes to the wire; a second AUTH after success is refused", () => {
    const refused = authConversation([`AUTH PLAIN ${b64("\0a\0b")}\r\n`], {}, false).c;
    expect(refused.replies.at(-1)).toBe("535 5.7.8 Authentication credentials invalid");
    expect(refused.session.authUser).toBeUndefined();
    const twice = authConversation([`AUTH PLAIN ${b64("\0a\0b")}\r\n`, `AUTH PLAIN ${b64("\0a\0b")}\r\n`]).c;
    expect(twice.replies.at(-1)).toBe("503 5.5.1 Error: already authenticated");
  });

  test("plain-text mechanisms need TLS off loopback, unless insecure AUTH is allowed", () => {
    const line = `AUTH PLAIN ${b64("\0a\0b")}\r\n`;
    expect(authConversation([line], { loopback: false }).c.replies.at(-1)).toBe(
      "538 5.7.11 Encryption required for requested authentication mechanism",
    );
    expect(authConversation([line], { loopback: false, allowInsecureAuth: true }).c.replies.at(-1)).toBe(
      "235 2.7.0 Authentication successful",
    );
    expect(authConversation([line], { loopback: false, secure: true }).c.replies.at(-1)).toBe(
      "235 2.7.0 Authentication successful",
    );
    expect(authConversation(["AUTH GSSAPI\r\n"]).c.replies.at(-1)).toBe(
      "504 5.5.4 Unrecognized authentication type",
    );
    expect(authConversation([line], { authMechanisms: [] }).c.replies.at(-1)).toBe(
      "502 5.5.1 Error: authentication not available",
    );
  });

  test("requireAuth: MAIL before AUTH gets 530", () => {
    const { c } = authConversation(
      ["MAIL FROM:<a@b.test>\r\n", `AUTH PLAIN ${b64("\0a\0b")}\r\n`, "MAIL FROM:<a@b.test>\r\n"],
      {
        requireAuth: true,
      },
    );
    expect(c.replies.slice(-3)).toEqual([
      "530 5.7.0 Authentication required",
      "235 2.7.0 Authentication successful",
      "250 2.1.0 Sender ok",
    ]);
  });
});

describe("requireTls", () => {
  test("only EHLO, STARTTLS, NOOP, RSET, QUIT and HELP before TLS", () => {
    const c = converse([EHLO, "MAIL FROM:<a@b.test>\r\n", "NOOP\r\n", "STARTTLS\r\n"], {
      requireTls: true,
      startTls: true,
    });
    expect(c.replies).not.toContain("250-AUTH PLAIN LOGIN");
    expect(c.replies.slice(-3)).toEqual([
      "530 5.7.0 Must issue a STARTTLS command first",
      "250 2.0.0 Ok",
      "220 2.0.0 Ready to start TLS",
    ]);
    c.session.tlsStarted();
    c.send(EHLO).send("MAIL FROM:<a@b.test>\r\n");
    expect(c.replies).toContain("250-AUTH PLAIN LOGIN");
    expect(c.replies.at(-1)).toBe("250 2.1.0 Sender ok");
  });
});

describe("the driver's interventions", () => {
  test("shutdown between transactions: 421 and close at once", () => {
    const c = converse([EHLO]);
    c.session.shutdown();
    c.drain();
    expect(c.replies.at(-1)).toBe("421 4.3.2 mx.test Service shutting down");
    expect(c.t.closed).toBe(true);
  });

  test("shutdown during a transaction lets it finish first", () => {
    const c = converse([EHLO, ENVELOPE]);
    c.session.shutdown();
    c.drain();
    expect(c.t.closed).toBe(false);
    c.send("DATA\r\n").send("x\r\n.\r\n");
    expect(c.replies.slice(-3)).toEqual([
      "354 End data with <CR><LF>.<CR><LF>",
      "250 2.0.0 Ok: queued",
      "421 4.3.2 mx.test Service shutting down",
    ]);
    expect(c.t.stored.length).toBe(1);
    expect(c.t.closed).toBe(true);
  });

  test("timeout: 421 4.4.2 and close; a late resolve is ignored", () => {
    const session = new ServerSession(defaultOptions);
    session.nextAction();
    session.timeout();
    session.resolve();
    const write = session.nextAction();
    expect(write?.type === "write" && latin1(write.bytes)).toBe(
      "421 4.4.2 mx.test Error: timeout exceeded\r\n",
    );
    expect(session.nextAction()).toEqual({ type: "close" });
    expect(session.nextAction()).toBeNull();
  });

  test("reply text stays ASCII whatever a hook puts in it (RFC 5321 §4.2)", () => {
    const c = converse([EHLO, "MAIL FROM:<a@b.test>\r\n"], {}, (r) =>
      r.kind === "mail" ? new SmtpError(550, "5.7.1", "Grüße, see §3") : undefined,
    );
    expect(c.replies.at(-1)).toBe("550 5.7.1 Gr??e, see section 3");
  });

  test("a 421 from a hook closes the session", () => {
    const c = converse([EHLO, "MAIL FROM:<a@b.test>\r\n", "NOOP\r\n"], {}, (r) =>
      r.kind === "mail" ? new SmtpError(421, "4.3.2", "going down") : undefined,
    );
    expect(c.replies.slice(-1)).toEqual(["421 4.3.2 going down"]);
    expect(c.t.closed).toBe(true);
  });

  test("the message is streamed in chunks while it arrives, not at the end", () => {
    const c = converse([EHLO, ENVELOPE, "DATA\r\n"]);
    const session = c.session;
    session.receive(bytes("first part\r\n"));
    const chunk = session.nextAction();
    expect(chunk?.type === "message-chunk" && latin1(chunk.bytes)).toBe("first part\r\n");
    expect(session.receivingMessage).toBe(true);
  });
});
