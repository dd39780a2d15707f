import { describe, expect, test } from "bun:test";
import { parsePath } from "../../src/core/address.ts";
import { bdatFrameMessage } from "../../src/core/bdat-chunker.ts";
import {
  type ClientEvent,
  ClientSession,
  type ClientSessionOptions,
  type TransactionResult,
  type TranscriptLine,
} from "../../src/core/client-session.ts";
import { dotStuffMessage } from "../../src/core/dot-stuffer.ts";
import type { Envelope } from "../../src/core/envelope.ts";
import { ProtocolError } from "../../src/core/errors.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Deterministic PRNG (mulberry32) so a failing random split can be reproduced. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Split = (bytes: Uint8Array) => Uint8Array[];
const splits: [string, Split][] = [
  ["whole", (b) => [b]],
  ["byte by byte", (b) => Array.from(b, (_, i) => b.subarray(i, i + 1))],
  [
    "random splits",
    (b) => {
      const rand = prng(b.length * 7919 + 17);
      const pieces: Uint8Array[] = [];
      let at = 0;
      while (at < b.length) {
        const n = 1 + Math.floor(rand() * 9);
        pieces.push(b.subarray(at, at + n));
        at += n;
      }
      return pieces;
    },
  ],
];

/** A session plus helpers that feed server text through one splitting mode. */
function harness(split: Split, options: ClientSessionOptions = {}) {
  const s = new ClientSession(options);
  return {
    s,
    server(text: string): ClientEvent[] {
      const events: ClientEvent[] = [];
      for (const piece of split(enc.encode(text))) events.push(...s.receive(piece));
      return events;
    },
    sent(): string {
      const bytes = s.dataToSend();
      return bytes === undefined ? "" : dec.decode(bytes);
    },
  };
}

function envelope(from: string, ...to: string[]): Envelope {
  return {
    from: parsePath(from),
    mailParams: { other: [] },
    recipients: to.map((t) => ({ path: parsePath(t), params: { other: [] } })),
  };
}

const EHLO_PIPELINING =
  "250-mx.example Hello\r\n250-SIZE 1000000\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-CHUNKING\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN CRAM-MD5\r\n";
const EHLO_PLAIN = "250-mx.example\r\n250 8BITMIME\r\n";

function only<T extends ClientEvent["type"]>(
  events: ClientEvent[],
  type: T,
): Extract<ClientEvent, { type: T }> {
  expect(events.map((e) => e.type)).toEqual([type]);
  return events[0] as Extract<ClientEvent, { type: T }>;
}

function transactionResult(events: ClientEvent[]): TransactionResult {
  return only(events, "transaction").result;
}

/** Greeting and EHLO done. */
function ready(h: ReturnType<typeof harness>, ehloReply = EHLO_PIPELINING): void {
  only(h.server("220 mx.example ESMTP\r\n"), "greeting");
  h.s.ehlo("client.example");
  expect(h.sent()).toBe("EHLO client.example\r\n");
  expect(only(h.server(ehloReply), "hello").ok).toBe(true);
}

for (const [mode, split] of splits) {
  describe(`ClientSession (server bytes ${mode})`, () => {
    test("greeting and multi-line EHLO give typed capabilities", () => {
      const h = harness(split);
      expect(h.s.awaiting).toBe("greeting");
      const g = only(h.server("220-mx.example ESMTP\r\n220 second line\r\n"), "greeting");
      expect(g).toMatchObject({ ok: true, reply: { code: 220, lines: ["mx.example ESMTP", "second line"] } });
      expect(h.s.state).toBe("needs-hello");
      h.s.ehlo("client.example");
      expect(h.s.awaiting).toBe("ehlo");
      expect(h.sent()).toBe("EHLO client.example\r\n");
      const hello = only(h.server(EHLO_PIPELINING), "hello");
      expect(hello.extended).toBe(true);
      expect(hello.capabilities).toMatchObject({
        size: 1000000,
        pipelining: true,
        eightBitMime: true,
        chunking: true,
        startTls: true,
        auth: ["PLAIN", "LOGIN", "CRAM-MD5"],
      });
      expect(h.s.state).toBe("ready");
      expect(h.s.pipelining).toBe(true);
    });

    test.each([500, 502])("EHLO refused with %d falls back to HELO", (code) => {
      const h = harness(split);
      h.server("220 old.example\r\n");
      h.s.ehlo("client.example");
      h.sent();
      expect(h.server(`${code} what?\r\n`)).toEqual([]);
      expect(h.sent()).toBe("HELO client.example\r\n");
      expect(h.s.awaiting).toBe("helo");
      const hello = only(h.server("250 old.example\r\n"), "hello");
      expect(hello).toMatchObject({ ok: true, extended: false, ehloReply: { code } });
      expect(hello.capabilities.pipelining).toBe(false);
      expect(h.s.state).toBe("ready");
    });

    test("a 554 greeting is reported as not ok", () => {
      const h = harness(split);
      expect(only(h.server("554 go away\r\n"), "greeting").ok).toBe(false);
      expect(h.s.quit()).toBe(true);
      expect(h.sent()).toBe("QUIT\r\n");
      only(h.server("221 bye\r\n"), "quit");
      expect(h.s.state).toBe("closed");
    });

    test("pipelined MAIL, RCPTs and DATA go out in one write; replies match in order", () => {
      const h = harness(split);
      ready(h);
      const message = dotStuffMessage(enc.encode("Subject: x\r\n\r\n.hi\r\n"));
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>", "<c@y.example>"), {
        kind: "data",
        bytes: message.bytes,
      });
      expect(h.sent()).toBe(
        "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\nDATA\r\n",
      );
      expect(h.s.awaiting).toBe("mail");
      expect(h.server("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n")).toEqual([]);
      expect(h.s.awaiting).toBe("data");
      expect(h.server("354 go on\r\n")).toEqual([]);
      expect(h.sent()).toBe("Subject: x\r\n\r\n..hi\r\n.\r\n");
      expect(h.s.awaiting).toBe("message");
      const r = transactionResult(h.server("250 2.0.0 queued as X\r\n"));
      expect(r.ok).toBe(true);
      expect(r.failedStage).toBeUndefined();
      expect(r.mail).toMatchObject({ code: 250, enhanced: "2.1.0" });
      expect(r.recipients.map((x) => x.accepted)).toEqual([true, true]);
      expect(r.final).toMatchObject({ code: 250, lines: ["queued as X"] });
      expect(h.s.state).toBe("ready");
    });

    test("partial RCPT failure: the message goes to the accepted ones", () => {
      const h = harness(split);
      ready(h);
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>", "<nobody@y.example>"), {
        kind: "data",
        bytes: dotStuffMessage(enc.encode("hi")).bytes,
      });
      h.sent();
      h.server("250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n");
      expect(h.sent()).toBe("hi\r\n.\r\n");
      const r = transactionResult(h.server("250 ok\r\n"));
      expect(r.ok).toBe(true);
      expect(r.recipients[1]).toMatchObject({ accepted: false, reply: { code: 550, enhanced: "5.1.1" } });
      // Nothing left open on the server: no RSET before the next transaction.
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), {
        kind: "data",
        bytes: dotStuffMessage(enc.encode("2")).bytes,
      });
      expect(h.sent()).toStartWith("MAIL FROM:");
    });

    test("every RCPT failed but DATA got 354: a lone dot, never the message (RFC 2920 §3.1)", () => {
      const h = harness(split);
      ready(h);
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), {
        kind: "data",
        bytes: dotStuffMessage(enc.encode("secret body")).bytes,
      });
      h.sent();
      h.server("250 ok\r\n550 no\r\n354 go\r\n");
      expect(h.sent()).toBe(".\r\n");
      const r = transactionResult(h.server("554 no valid recipients\r\n"));
      expect(r).toMatchObject({ ok: false, failedStage: "rcpt", failedReply: { code: 550 } });
      expect(r.final?.code).toBe(554);
    });

    test("every RCPT failed and DATA refused: no data; RSET heads the next group", () => {
      const h = harness(split);
      ready(h);
      const body = { kind: "data", bytes: dotStuffMessage(enc.encode("x")).bytes } as const;
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), body);
      h.sent();
      const r = transactionResult(h.server("250 ok\r\n550 no\r\n503 5.5.1 no recipients\r\n"));
      expect(r).toMatchObject({ ok: false, failedStage: "rcpt", data: { code: 503 } });
      expect(h.sent()).toBe("");
      h.s.transaction(envelope("<a@x.example>", "<c@y.example>"), body);
      expect(h.sent()).toBe("RSET\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<c@y.example>\r\nDATA\r\n");
      expect(h.s.awaiting).toBe("rset");
      h.server("250 reset\r\n250 ok\r\n250 ok\r\n354 go\r\n");
      expect(h.sent()).toBe("x\r\n.\r\n");
      const r2 = transactionResult(h.server("250 ok\r\n"));
      expect(r2).toMatchObject({ ok: true, reset: { code: 250 } });
    });

    test("MAIL refused in a pipelined group: the stage is mail, nothing left to reset", () => {
      const h = harness(split);
      ready(h);
      const body = { kind: "data", bytes: dotStuffMessage(enc.encode("x")).bytes } as const;
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), body);
      h.sent();
      const r = transactionResult(h.server("451 4.3.0 try later\r\n503 no MAIL\r\n503 no MAIL\r\n"));
      expect(r).toMatchObject({ ok: false, failedStage: "mail", failedReply: { code: 451 } });
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), body);
      expect(h.sent()).toStartWith("MAIL FROM:");
    });

    test("without PIPELINING each command waits for its reply", () => {
      const h = harness(split);
      ready(h, EHLO_PLAIN);
      expect(h.s.pipelining).toBe(false);
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>", "<c@y.example>"), {
        kind: "data",
        bytes: dotStuffMessage(enc.encode("m")).bytes,
      });
      expect(h.sent()).toBe("MAIL FROM:<a@x.example>\r\n");
      h.server("250 ok\r\n");
      expect(h.sent()).toBe("RCPT TO:<b@y.example>\r\n");
      expect(h.s.awaiting).toBe("rcpt");
      h.server("550 no\r\n");
      expect(h.sent()).toBe("RCPT TO:<c@y.example>\r\n");
      h.server("250 ok\r\n");
      expect(h.sent()).toBe("DATA\r\n");
      h.server("354 go\r\n");
      expect(h.sent()).toBe("m\r\n.\r\n");
      const r = transactionResult(h.server("250 ok\r\n"));
      expect(r.ok).toBe(true);
      expect(r.recipients.map((x) => x.reply?.code)).toEqual([550, 250]);
    });

    test("without PIPELINING a refused MAIL sends no RCPT; no accepted RCPT sends no DATA", () => {
      const h = harness(split);
      ready(h, EHLO_PLAIN);
      const body = { kind: "data", bytes: dotStuffMessage(enc.encode("m")).bytes } as const;
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), body);
      h.sent();
      const r = transactionResult(h.server("550 5.7.1 sender refused\r\n"));
      expect(r).toMatchObject({ failedStage: "mail", recipients: [{ accepted: false }] });
      expect(r.recipients[0]?.reply).toBeUndefined();
      expect(h.sent()).toBe("");
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), body);
      expect(h.sent()).toBe("MAIL FROM:<a@x.example>\r\n");
      h.server("250 ok\r\n");
      h.sent();
      expect(transactionResult(h.server("450 4.2.1 busy\r\n"))).toMatchObject({ failedStage: "rcpt" });
      expect(h.sent()).toBe("");
      // The open transaction is reset before the next one, waiting for RSET's reply.
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), body);
      expect(h.sent()).toBe("RSET\r\n");
      h.server("250 ok\r\n");
      expect(h.sent()).toBe("MAIL FROM:<a@x.example>\r\n");
    });

    test("CHUNKING with PIPELINING: a small message is one write and one round trip", () => {
      const h = harness(split);
      ready(h);
      const { frames } = bdatFrameMessage(enc.encode("Subject: b\r\n\r\n.body"));
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), { kind: "bdat", frames });
      expect(h.sent()).toBe(
        "MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nBDAT 21 LAST\r\nSubject: b\r\n\r\n.body\r\n",
      );
      const r = transactionResult(h.server("250 ok\r\n250 ok\r\n250 2.0.0 message accepted\r\n"));
      expect(r).toMatchObject({ ok: true, final: { code: 250, enhanced: "2.0.0" }, bdat: [{ code: 250 }] });
    });

    test("CHUNKING: several chunks wait for the RCPT replies, then go out pipelined", () => {
      const h = harness(split);
      ready(h);
      const { frames } = bdatFrameMessage(enc.encode("abcdefgh\r\n"), { chunkSize: 4 });
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), { kind: "bdat", frames });
      expect(h.sent()).toBe("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n");
      h.server("250 ok\r\n250 ok\r\n");
      expect(h.sent()).toBe("BDAT 4\r\nabcdBDAT 4\r\nefghBDAT 2 LAST\r\n\r\n");
      h.server("250 4 octets\r\n250 4 octets\r\n");
      expect(transactionResult(h.server("250 done\r\n")).ok).toBe(true);
    });

    test("CHUNKING without PIPELINING: one chunk per reply; a failure stops the rest", () => {
      const h = harness(split);
      ready(h, "250-mx\r\n250 CHUNKING\r\n");
      const { frames } = bdatFrameMessage(enc.encode("abcdefgh\r\n"), { chunkSize: 4 });
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), { kind: "bdat", frames });
      h.sent();
      h.server("250 ok\r\n");
      h.sent();
      h.server("250 ok\r\n");
      expect(h.sent()).toBe("BDAT 4\r\nabcd");
      h.server("250 ok\r\n");
      expect(h.sent()).toBe("BDAT 4\r\nefgh");
      const r = transactionResult(h.server("552 5.3.4 too big\r\n"));
      expect(r).toMatchObject({ ok: false, failedStage: "bdat", final: { code: 552 } });
      expect(h.sent()).toBe("");
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), { kind: "bdat", frames });
      expect(h.sent()).toBe("RSET\r\n");
    });

    test("CHUNKING pipelined with every RCPT refused: the BDAT failure is reported as rcpt", () => {
      const h = harness(split);
      ready(h);
      const { frames } = bdatFrameMessage(enc.encode("x"));
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), { kind: "bdat", frames });
      h.sent();
      const r = transactionResult(h.server("250 ok\r\n550 no\r\n554 5.5.1 no valid recipients\r\n"));
      expect(r).toMatchObject({ ok: false, failedStage: "rcpt", bdat: [{ code: 554 }] });
    });

    test("streamed DATA body is dot-stuffed across writes", () => {
      const h = harness(split);
      ready(h);
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), { kind: "data-stream" });
      h.sent();
      expect(h.server("250 ok\r\n250 ok\r\n")).toEqual([]);
      only(h.server("354 go\r\n"), "body-ready");
      expect(h.s.state).toBe("body");
      expect(h.s.awaiting).toBeUndefined();
      expect(h.s.writeBody(enc.encode("a\n"))).toBe(true);
      expect(h.s.writeBody(enc.encode(".b"))).toBe(true);
      h.s.endBody();
      expect(h.sent()).toBe("a\r\n..b\r\n.\r\n");
      expect(h.s.awaiting).toBe("message");
      expect(transactionResult(h.server("250 ok\r\n")).ok).toBe(true);
      expect(h.s.writeBody(enc.encode("late"))).toBe(false);
    });

    test("a reply while the DATA body is still streaming ends the transaction", () => {
      const h = harness(split);
      ready(h);
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), { kind: "data-stream" });
      h.sent();
      h.server("250 ok\r\n250 ok\r\n354 go\r\n");
      h.s.writeBody(enc.encode("part"));
      const r = transactionResult(h.server("552 5.3.4 message too big\r\n"));
      expect(r).toMatchObject({
        ok: false,
        failedStage: "message",
        final: { code: 552 },
        failedReply: { code: 552 },
      });
      expect(h.s.writeBody(enc.encode("more"))).toBe(false);
    });

    test("streamed BDAT body: chunks as they fill, LAST at the end", () => {
      const h = harness(split);
      ready(h);
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), { kind: "bdat-stream", chunkSize: 4 });
      h.sent();
      only(h.server("250 ok\r\n250 ok\r\n"), "body-ready");
      h.s.writeBody(enc.encode("abc"));
      expect(h.sent()).toBe("");
      h.s.writeBody(enc.encode("def"));
      expect(h.sent()).toBe("BDAT 4\r\nabcd");
      h.s.writeBody(enc.encode("gh\r\nij"));
      expect(h.sent()).toBe("BDAT 4\r\nefgh");
      h.s.endBody();
      expect(h.sent()).toBe("BDAT 4\r\n\r\nijBDAT 2 LAST\r\n\r\n");
      expect(h.server("250 ok\r\n250 ok\r\n250 ok\r\n")).toEqual([]);
      expect(transactionResult(h.server("250 done\r\n")).ok).toBe(true);
    });

    test("streamed BDAT: a failed chunk stops the caller's stream", () => {
      const h = harness(split);
      ready(h);
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), { kind: "bdat-stream", chunkSize: 2 });
      h.sent();
      h.server("250 ok\r\n250 ok\r\n");
      h.s.writeBody(enc.encode("abcde"));
      h.sent();
      const r = transactionResult(h.server("552 5.3.4 too much\r\n503 after failure\r\n"));
      expect(r).toMatchObject({ failedStage: "bdat", final: { code: 552 } });
      expect(h.s.writeBody(enc.encode("f"))).toBe(false);
      h.s.endBody();
      expect(h.sent()).toBe("");
    });

    test("STARTTLS discards bytes after the 220; EHLO is needed again inside TLS", () => {
      const lines: TranscriptLine[] = [];
      const h = harness(split, { transcript: (l) => lines.push(l) });
      ready(h);
      h.s.startTls();
      expect(h.sent()).toBe("STARTTLS\r\n");
      const ev = only(h.server("220 2.0.0 ready\r\n250-injected\r\n250 AUTH PLAIN\r\n"), "starttls");
      expect(ev.ok).toBe(true);
      expect(h.s.state).toBe("tls-pending");
      expect(h.server("250 more injected\r\n")).toEqual([]);
      h.s.tlsEstablished();
      expect(h.s.tls).toBe(true);
      expect(h.s.state).toBe("needs-hello");
      expect(h.s.capabilities.startTls).toBe(false);
      h.s.ehlo("client.example");
      expect(h.sent()).toBe("EHLO client.example\r\n");
      const hello = only(h.server("250-mx.example\r\n250 AUTH LOGIN\r\n"), "hello");
      expect(hello.capabilities.auth).toEqual(["LOGIN"]);
      expect(lines.some((l) => l.direction === "info" && l.text.includes("discarded"))).toBe(true);
      expect(lines.filter((l) => l.tls).map((l) => `${l.direction} ${l.text}`)).toEqual([
        "sent EHLO client.example",
        "received 250-mx.example",
        "received 250 AUTH LOGIN",
      ]);
    });

    test("STARTTLS refused leaves the session ready in clear text", () => {
      const h = harness(split);
      ready(h);
      h.s.startTls();
      h.sent();
      expect(only(h.server("454 4.7.0 TLS not available\r\n"), "starttls").ok).toBe(false);
      expect(h.s.state).toBe("ready");
      expect(h.s.tls).toBe(false);
    });

    test("AUTH PLAIN: initial response on the wire, masked in the transcript", () => {
      const lines: TranscriptLine[] = [];
      const h = harness(split, { transcript: (l) => lines.push(l) });
      ready(h);
      h.s.auth("PLAIN", { username: "tim", password: "tanstaaftanstaaf" });
      expect(h.sent()).toBe("AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbnN0YWFm\r\n");
      expect(only(h.server("235 2.7.0 ok\r\n"), "auth").ok).toBe(true);
      expect(h.s.authenticated).toBe(true);
      const sent = lines.filter((l) => l.direction === "sent").map((l) => l.text);
      expect(sent).toContain("AUTH PLAIN ********");
      expect(JSON.stringify(lines)).not.toContain("AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
    });

    test("AUTH LOGIN: user name shown, password masked; 535 is a failure", () => {
      const lines: TranscriptLine[] = [];
      const h = harness(split, { transcript: (l) => lines.push(l) });
      ready(h);
      h.s.auth("LOGIN", { username: "tim", password: "secret" });
      expect(h.sent()).toBe("AUTH LOGIN\r\n");
      expect(h.server("334 VXNlcm5hbWU6\r\n")).toEqual([]);
      expect(h.sent()).toBe("dGlt\r\n");
      expect(h.s.awaiting).toBe("auth");
      h.server("334 UGFzc3dvcmQ6\r\n");
      expect(h.sent()).toBe("c2VjcmV0\r\n");
      const ev = only(h.server("535 5.7.8 bad credentials\r\n"), "auth");
      expect(ev).toMatchObject({ ok: false, reply: { code: 535, enhanced: "5.7.8" } });
      expect(h.s.authenticated).toBe(false);
      const sent = lines.filter((l) => l.direction === "sent").map((l) => l.text);
      expect(sent.slice(-3)).toEqual(["AUTH LOGIN", "dGlt", "********"]);
    });

    test("AUTH CRAM-MD5 answers the challenge; a broken challenge cancels with *", () => {
      const h = harness(split);
      ready(h);
      h.s.auth("CRAM-MD5", { username: "tim", password: "tanstaaftanstaaf" });
      expect(h.sent()).toBe("AUTH CRAM-MD5\r\n");
      h.server("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n");
      expect(h.sent()).toBe("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n");
      expect(only(h.server("235 ok\r\n"), "auth").ok).toBe(true);

      const h2 = harness(split);
      ready(h2);
      h2.s.auth("CRAM-MD5", { username: "tim", password: "x" });
      h2.sent();
      h2.server("334 !!not base64!!\r\n");
      expect(h2.sent()).toBe("*\r\n");
      const ev = only(h2.server("501 5.7.0 cancelled\r\n"), "auth");
      expect(ev.ok).toBe(false);
      expect(ev.error).toContain("not base64");
    });

    test("421 in the middle of a pipelined group fails there and closes", () => {
      const h = harness(split);
      ready(h);
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>", "<c@y.example>"), {
        kind: "data",
        bytes: dotStuffMessage(enc.encode("x")).bytes,
      });
      h.sent();
      const r = transactionResult(h.server("250 ok\r\n421 4.3.2 shutting down\r\n"));
      expect(r).toMatchObject({ ok: false, failedStage: "rcpt", failedReply: { code: 421 } });
      expect(r.recipients[0]?.reply?.code).toBe(421);
      expect(h.s.state).toBe("closed");
      expect(h.s.quit()).toBe(false);
    });

    test("an unsolicited 421 while idle is a closing event", () => {
      const h = harness(split);
      ready(h);
      expect(only(h.server("421 4.4.2 idle too long\r\n"), "closing").reply.code).toBe(421);
      expect(h.s.state).toBe("closed");
    });

    test("an unexpected reply or a malformed one is a protocol error", () => {
      const h = harness(split);
      ready(h);
      expect(() => h.server("250 who asked?\r\n")).toThrow(ProtocolError);
      expect(h.s.state).toBe("failed");
      const h2 = harness(split);
      expect(() => h2.server("hello there\r\n")).toThrow(ProtocolError);
      expect(h2.s.state).toBe("failed");
    });

    test("RSET and QUIT", () => {
      const h = harness(split);
      ready(h);
      h.s.reset();
      expect(h.sent()).toBe("RSET\r\n");
      expect(h.s.awaiting).toBe("rset");
      expect(only(h.server("250 ok\r\n"), "reset").ok).toBe(true);
      expect(h.s.quit()).toBe(true);
      expect(h.sent()).toBe("QUIT\r\n");
      expect(only(h.server("221 bye\r\n"), "quit").reply.code).toBe(221);
      expect(h.s.state).toBe("closed");
      expect(h.s.receive(enc.encode("250 late\r\n"))).toEqual([]);
    });

    test("typed commands: EHLO updates capabilities; DATA lines are dot-stuffed; STARTTLS switches", () => {
      const h = harness(split);
      h.server("220 mx\r\n");
      h.s.rawCommand("ehlo me");
      expect(h.sent()).toBe("ehlo me\r\n");
      expect(only(h.server("250-mx\r\n250 PIPELINING\r\n"), "reply").command).toBe("EHLO");
      expect(h.s.capabilities.pipelining).toBe(true);
      h.s.rawCommand("MAIL FROM:<a@x.example>");
      h.sent();
      h.server("250 ok\r\n");
      h.s.rawCommand("DATA");
      h.sent();
      only(h.server("354 go\r\n"), "reply");
      expect(h.s.state).toBe("body");
      h.s.writeBody(enc.encode(".hidden line\n"));
      h.s.endBody();
      expect(h.sent()).toBe("..hidden line\r\n.\r\n");
      const done = only(h.server("250 queued\r\n"), "reply");
      expect(done).toMatchObject({ command: ".", reply: { code: 250 } });
      h.s.rawCommand("STARTTLS");
      h.sent();
      h.server("220 go\r\n");
      expect(h.s.state).toBe("tls-pending");
      expect(() => h.s.rawCommand("NOOP\r\nRSET")).toThrow();
    });

    test("operations out of order are refused", () => {
      const h = harness(split);
      expect(() => h.s.ehlo("x")).toThrow(/state greeting/);
      h.server("220 mx\r\n");
      expect(() =>
        h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), { kind: "data-stream" }),
      ).toThrow();
      h.s.ehlo("x");
      expect(() => h.s.ehlo("x")).toThrow(/state busy/);
      expect(() => h.s.quit()).toThrow(/operation is running/);
      expect(h.sent()).toBe("EHLO x\r\n");
    });

    test("the next transaction rides behind the previous message (RFC 2920 §3.1)", () => {
      const h = harness(split);
      ready(h);
      const body = { kind: "data", bytes: dotStuffMessage(enc.encode("m")).bytes } as const;
      const env = envelope("<a@x.example>", "<b@y.example>");
      expect(h.s.canStartTransaction(body)).toBe(true);
      h.s.transaction(env, body);
      expect(h.s.canStartTransaction(body)).toBe(false);
      h.sent();
      h.server("250 ok\r\n250 ok\r\n354 go\r\n");
      expect(h.s.canStartTransaction({ kind: "data-stream" })).toBe(false);
      expect(h.s.canStartTransaction(body)).toBe(true);
      h.s.transaction(env, body);
      expect(h.s.canStartTransaction(body)).toBe(false);
      expect(h.sent()).toBe("m\r\n.\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n");
      const events = h.server("250 first queued\r\n250 ok\r\n250 ok\r\n354 go\r\n");
      expect(transactionResult(events).final?.lines).toEqual(["first queued"]);
      expect(h.sent()).toBe("m\r\n.\r\n");
      expect(h.s.canStartTransaction(body)).toBe(true);
      const second = transactionResult(h.server("250 second queued\r\n"));
      expect(second).toMatchObject({ ok: true, final: { lines: ["second queued"] } });
      expect(h.s.state).toBe("ready");
    });

    test("a failed message does not need RSET before the transaction behind it", () => {
      const h = harness(split);
      ready(h);
      const body = { kind: "data", bytes: dotStuffMessage(enc.encode("m")).bytes } as const;
      const env = envelope("<a@x.example>", "<b@y.example>");
      h.s.transaction(env, body);
      h.sent();
      h.server("250 ok\r\n250 ok\r\n354 go\r\n");
      h.s.transaction(env, body);
      expect(h.sent()).toEndWith(".\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n");
      const events = h.server("554 5.7.1 spam\r\n250 ok\r\n550 no\r\n503 no recipients\r\n");
      expect(events.map((e) => (e.type === "transaction" ? e.result.failedStage : e.type))).toEqual([
        "message",
        "rcpt",
      ]);
      h.s.transaction(env, body);
      expect(h.sent()).toStartWith("RSET\r\nMAIL");
    });

    test("a 421 ends both the current and the queued transaction", () => {
      const h = harness(split);
      ready(h);
      const body = { kind: "data", bytes: dotStuffMessage(enc.encode("m")).bytes } as const;
      const env = envelope("<a@x.example>", "<b@y.example>");
      h.s.transaction(env, body);
      h.server("250 ok\r\n250 ok\r\n354 go\r\n");
      h.s.transaction(env, body);
      h.sent();
      const events = h.server("421 4.3.2 going down\r\n");
      expect(events.map((e) => (e.type === "transaction" ? e.result.failedStage : e.type))).toEqual([
        "message",
        "mail",
      ]);
      expect(h.s.state).toBe("closed");
    });

    test("no overlap without PIPELINING", () => {
      const h = harness(split);
      ready(h, EHLO_PLAIN);
      const body = { kind: "data", bytes: dotStuffMessage(enc.encode("m")).bytes } as const;
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), body);
      h.server("250 ok\r\n250 ok\r\n354 go\r\n");
      expect(h.s.canStartTransaction(body)).toBe(false);
      expect(() => h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), body)).toThrow(/state busy/);
    });

    test("transcript shows every line sent and received, message lines included", () => {
      const lines: TranscriptLine[] = [];
      const h = harness(split, { transcript: (l) => lines.push(l) });
      ready(h);
      h.s.transaction(envelope("<a@x.example>", "<b@y.example>"), {
        kind: "data",
        bytes: dotStuffMessage(enc.encode("line 1\r\n.line 2")).bytes,
      });
      h.sent();
      h.server("250 ok\r\n250 ok\r\n354 go\r\n");
      h.server("250 ok\r\n");
      const text = lines.map((l) => `${l.direction === "sent" ? ">" : "<"} ${l.text}`);
      expect(text.slice(0, 2)).toEqual(["< 220 mx.example ESMTP", "> EHLO client.example"]);
      expect(text.slice(-10)).toEqual([
        "> MAIL FROM:<a@x.example>",
        "> RCPT TO:<b@y.example>",
        "> DATA",
        "< 250 ok",
        "< 250 ok",
        "< 354 go",
        "> line 1",
        "> ..line 2",
        "> .",
        "< 250 ok",
      ]);
    });
  });
}

describe("ClientSession without pipelining by choice", () => {
  test("pipelining: false waits for every reply even when offered", () => {
    const s = new ClientSession({ pipelining: false });
    s.receive(enc.encode("220 mx\r\n"));
    s.ehlo("c");
    s.dataToSend();
    s.receive(enc.encode(EHLO_PIPELINING));
    expect(s.pipelining).toBe(false);
    s.transaction(envelope("<a@x.example>", "<b@y.example>"), { kind: "data-stream" });
    expect(dec.decode(s.dataToSend())).toBe("MAIL FROM:<a@x.example>\r\n");
  });

  test("implicit TLS marks transcript lines as TLS from the start", () => {
    const lines: TranscriptLine[] = [];
    const s = new ClientSession({ tls: true, transcript: (l) => lines.push(l) });
    s.receive(enc.encode("220 mx\r\n"));
    expect(lines).toEqual([{ direction: "received", text: "220 mx", tls: true }]);
  });
});
