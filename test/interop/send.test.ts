import { X509Certificate } from "node:crypto";
// `smtpkit send` and `smtpkit sendmail` against real peers (issue 3, "Tests (real peers)"):
// Python's aiosmtpd and Postfix's smtp-sink receive, Python's `email` package reads what arrived.
// A missing peer fails the test (requirePeer throws); nothing here is skipped.
//
// CRAM-MD5: aiosmtpd 1.4 has only PLAIN and LOGIN built in; peers/aiosmtpd_server.py adds
// CRAM-MD5 through aiosmtpd's @auth_mechanism hook. It is also tested against nodemailer's
// smtp-server, whose CRAM-MD5 is its own.
//
// MX delivery reaches the mail hosts on their test ports through the SMTPKIT_MX_PORT test hook.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../commands/run-cli.ts";
import { startPeer } from "../commands/smtp-server-peer.ts";
import { createTestPki, type TestPki } from "../helpers/certs.ts";
import { startDnsResponder } from "../helpers/dns-responder.ts";
import { type Aiosmtpd, type AiosmtpdOptions, startAiosmtpd } from "./peers/aiosmtpd.ts";
import { freePort, LOOPBACK } from "./peers/ports.ts";
import {
  headerValues,
  type PythonEmailResult,
  parseWithPythonEmail,
  partBytes,
} from "./peers/python-email.ts";
import { type SmtpSink, type SmtpSinkOptions, startSmtpSink } from "./peers/smtp-sink.ts";

const FROM = "Ana Nguyễn <ana@example.com>";
const TO = ["Nguyễn Văn Bình <binh@example.net>", '"山田, 太郎" <yamada@example.jp>'];
const SUBJECT = "Báo cáo tháng 11 — 😀🎉 — 日本語の件名 — 中文主题 — 한국어";
/** Several scripts, an emoji, a line of 1,500 characters with no space, and lines that start with dots. */
const TEXT = [
  "Xin chào Bình,",
  "Đây là báo cáo tháng này. Cảm ơn anh! 🙏",
  "日本語のテキスト。中文文本。한국어 텍스트.",
  ".a line that starts with a dot",
  "..and two",
  ".",
  "x".repeat(1500),
  "— Ana",
].join("\n");
const HTML = "<p>Xin chào <b>Bình</b> 😀 — 日本語</p>";
const PASSWORD = "correct horse 🐎 battery";

let dir: string;
let pki: TestPki;
let caFile: string;
const files: Record<string, { path: string; bytes: Uint8Array; name: string }> = {};

/** Deterministic bytes (a linear congruential sequence) so a failure can be reproduced. */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpkit-interop-send-"));
  pki = await createTestPki();
  caFile = join(dir, "ca.pem");
  await writeFile(caFile, pki.ca.cert);
  const every = new Uint8Array(512).map((_, i) => i % 256);
  const attachments: [string, string, Uint8Array][] = [
    ["binary", "Báo cáo 2026 — bảng số liệu.bin", every],
    ["empty", "empty.dat", new Uint8Array()],
    ["large", "大きなファイル.zip", pseudoRandomBytes(3 * 1024 * 1024 + 7, 42)],
  ];
  for (const [key, name, bytes] of attachments) {
    const path = join(dir, `${key}.bin`);
    await writeFile(path, bytes);
    files[key] = { path, bytes, name };
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function attachArgs(): string[] {
  return Object.values(files).flatMap((f) => ["--attach", `${f.path};name=${f.name}`]);
}

function sendArgs(port: number, ...more: string[]): string[] {
  return [
    "send",
    "--server",
    `${LOOPBACK}:${port}`,
    "-f",
    FROM,
    "-t",
    "bob@example.net",
    "--body",
    "x",
    ...more,
  ];
}

async function withAiosmtpd<T>(options: AiosmtpdOptions, run: (peer: Aiosmtpd) => Promise<T>): Promise<T> {
  const peer = await startAiosmtpd(options);
  try {
    return await run(peer);
  } finally {
    await peer.close();
  }
}

async function withSink<T>(options: SmtpSinkOptions, run: (sink: SmtpSink) => Promise<T>): Promise<T> {
  const sink = await startSmtpSink(options);
  try {
    return await run(sink);
  } finally {
    await sink.close();
  }
}

/** Text as Python hands it back, line ends made LF and one final line end dropped. */
function plain(text: string | null | undefined): string {
  return (text ?? "").replace(/\r\n/g, "\n").replace(/\n$/, "");
}

/** What every message we build must be on the wire, read back by Python's email package. */
function expectComposedMessage(parsed: PythonEmailResult): void {
  expect(parsed.sevenBit).toBe(true);
  expect(parsed.maxLineLength).toBeLessThanOrEqual(998);
  expect(parsed.bareLf).toBe(0);
  expect(parsed.bareCr).toBe(0);
  expect(parsed.defects).toEqual([]);
  expect(headerValues(parsed, "Subject")).toEqual([SUBJECT]);
  expect(headerValues(parsed, "From")).toEqual([FROM]);
  expect(headerValues(parsed, "To")).toEqual([TO.join(", ")]);
  expect(headerValues(parsed, "Bcc")).toEqual([]);
  expect(parsed.structure).toBe(
    "multipart/mixed(multipart/alternative(text/plain,text/html),application/octet-stream,application/octet-stream,application/zip)",
  );
  const [text, html, ...attachments] = parsed.parts;
  expect(plain(text?.text)).toBe(TEXT);
  expect(plain(html?.text)).toBe(HTML);
  // The one defect Python reports: the legacy `name="=?UTF-8?B?...?="` that the builder writes on
  // Content-Type beside RFC 2231's filename* for old clients ("encoded word inside quoted string").
  for (const part of parsed.parts) {
    const legacyName = part.filename !== null && /[^\x00-\x7f]/.test(part.filename);
    expect(part.defects).toEqual(legacyName ? ["InvalidHeaderDefect", "InvalidHeaderDefect"] : []);
  }
  const expected = Object.values(files);
  expect(attachments.map((a) => a.filename)).toEqual(expected.map((f) => f.name));
  attachments.forEach((part, i) => {
    const want = expected[i]?.bytes as Uint8Array;
    const got = partBytes(part);
    expect(got.length).toBe(want.length);
    expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
  });
}

function composeArgs(port: number): string[] {
  return [
    "send",
    "--server",
    `${LOOPBACK}:${port}`,
    "-f",
    FROM,
    ...TO.flatMap((t) => ["-t", t]),
    "--bcc",
    "hidden@example.org",
    "--subject",
    SUBJECT,
    "--body",
    TEXT,
    "--html",
    HTML,
    ...attachArgs(),
  ];
}

describe("messages as Python's email package reads them", () => {
  test("to aiosmtpd: subject, names, bodies and attachments (binary, empty, 3 MB) come back exactly", async () => {
    await withAiosmtpd({}, async (peer) => {
      const result = await runCli(composeArgs(peer.port));
      expect(result).toMatchObject({ code: 0, stdout: "", stderr: "" });
      const [message] = await peer.waitForMessages(1);
      expect(message?.mailFrom).toBe("ana@example.com");
      expect(message?.rcptTos).toEqual(["binh@example.net", "yamada@example.jp", "hidden@example.org"]);
      expectComposedMessage(await parseWithPythonEmail(message?.raw as Uint8Array));
    });
  });

  test("to smtp-sink -8 (no 8BITMIME) -d: the same, with no BODY=8BITMIME", async () => {
    await withSink({ no8BitMime: true }, async (sink) => {
      expect(sink.greeting).toContain("smtp-sink");
      const result = await runCli(composeArgs(sink.port));
      expect(result).toMatchObject({ code: 0, stdout: "", stderr: "" });
      const [message] = await sink.waitForMessages(1);
      expect(message?.mailFrom).toBe("ana@example.com");
      expect(message?.rcptTos).toEqual(["binh@example.net", "yamada@example.jp", "hidden@example.org"]);
      expect(message?.mailParams.some((p) => p.toUpperCase().startsWith("BODY="))).toBe(false);
      expectComposedMessage(await parseWithPythonEmail(message?.raw as Uint8Array));
    });
  });

  test("--raw to smtp-sink: the message arrives byte for byte (dots unstuffed by the peer)", async () => {
    await withSink({}, async (sink) => {
      const raw =
        "From: ana@example.com\r\nTo: bob@example.net\r\nSubject: raw\r\n\r\n.leading\r\n..two\r\n.\r\nend\r\n";
      const path = join(dir, "raw.eml");
      await writeFile(path, raw);
      const result = await runCli(["send", "--server", `${LOOPBACK}:${sink.port}`, "--raw", path]);
      expect(result.code).toBe(0);
      const [message] = await sink.waitForMessages(1);
      expect(Buffer.from(message?.raw as Uint8Array).toString("latin1")).toBe(raw);
    });
  });
});

describe("exit codes against smtp-sink and aiosmtpd", () => {
  const cases: [string, SmtpSinkOptions, number][] = [
    ["-f RCPT (every recipient refused)", { hardReject: ["RCPT"] }, 67],
    ["-f DATA (5xx at DATA)", { hardReject: ["DATA"] }, 69],
    ["-f . (5xx after the final dot)", { hardReject: ["."] }, 69],
    ["-r RCPT (4xx at RCPT)", { softReject: ["RCPT"] }, 75],
    ["-r MAIL (4xx at MAIL)", { softReject: ["MAIL"] }, 75],
    ["-f MAIL (5xx at MAIL)", { hardReject: ["MAIL"] }, 69],
    ["-f EHLO -f HELO (no greeting accepted)", { hardReject: ["EHLO", "HELO"] }, 69],
    ["-q DATA (hang-up at DATA)", { disconnectAfter: ["DATA"] }, 75],
  ];
  for (const [name, options, code] of cases) {
    test(`smtp-sink ${name}: exit ${code}`, async () => {
      await withSink({ ...options, dump: false }, async (sink) => {
        const result = await runCli(sendArgs(sink.port));
        expect(result.code).toBe(code);
        expect(result.stderr.trim().split("\n")).toHaveLength(1);
      });
    });
  }

  test("a refused connection: 75", async () => {
    const result = await runCli(sendArgs(await freePort()));
    expect(result.code).toBe(75);
  });

  test("a partial recipient failure (aiosmtpd): 67, 0 with --allow-partial, and the JSON says who", async () => {
    await withAiosmtpd({ rcptReplies: { "nobody@example.net": "550 5.1.1 No such user" } }, async (peer) => {
      const args = [...sendArgs(peer.port), "-t", "nobody@example.net"];
      const strict = await runCli(args);
      expect(strict.code).toBe(67);
      expect(strict.stderr).toContain("<nobody@example.net> (550 5.1.1 No such user)");
      const partial = await runCli([...args, "--allow-partial", "--json"]);
      expect(partial.code).toBe(0);
      const recipients = JSON.parse(partial.stdout).deliveries[0].recipients;
      expect(recipients).toEqual([
        { address: "bob@example.net", accepted: true, reply: { code: 250, enhanced: "2.1.5", text: "OK" } },
        {
          address: "nobody@example.net",
          accepted: false,
          reply: { code: 550, enhanced: "5.1.1", text: "No such user" },
        },
      ]);
      const messages = await peer.waitForMessages(2);
      expect(messages.map((m) => m.rcptTos)).toEqual([["bob@example.net"], ["bob@example.net"]]);
    });
  });

  test("a message over aiosmtpd's SIZE: 69, refused before DATA", async () => {
    await withAiosmtpd({ dataSizeLimit: 1000 }, async (peer) => {
      const result = await runCli([...sendArgs(peer.port), "--attach", files.binary?.path as string]);
      expect(result.code).toBe(69);
      expect(await peer.messages()).toHaveLength(0);
    });
  });
});

describe("TLS against aiosmtpd with a test certificate", () => {
  for (const mode of ["starttls", "implicit"] as const) {
    const options = (cert: { cert: string; key: string }): AiosmtpdOptions =>
      mode === "starttls" ? { starttls: cert } : { implicitTls: cert };
    const tlsFlag = mode === "implicit" ? ["--tls"] : ["--starttls", "always"];

    test(`${mode}: a certificate that does not verify exits 77; --insecure passes`, async () => {
      await withAiosmtpd(options(pki.unknownCa), async (peer) => {
        const failed = await runCli([...sendArgs(peer.port), ...tlsFlag]);
        expect(failed.code).toBe(77);
        expect(failed.stderr).toContain("certificate");
        const insecure = await runCli([...sendArgs(peer.port), ...tlsFlag, "--insecure", "--json"]);
        expect(insecure.code).toBe(0);
        expect(JSON.parse(insecure.stdout).deliveries[0].tls).toMatchObject({ verified: false });
        const [message] = await peer.waitForMessages(1);
        expect(message?.tls).toBe(true);
      });
    });

    test(`${mode}: the test CA's certificate exits 77 without --ca and passes with it`, async () => {
      await withAiosmtpd(options(pki.server), async (peer) => {
        expect((await runCli([...sendArgs(peer.port), ...tlsFlag])).code).toBe(77);
        const trusted = await runCli([...sendArgs(peer.port), ...tlsFlag, "--ca", caFile, "--json"]);
        expect(trusted.code).toBe(0);
        const tls = JSON.parse(trusted.stdout).deliveries[0].tls;
        expect(tls.verified).toBe(true);
        expect(tls.protocol).toMatch(/^TLSv1\.[23]$/);
        expect((await peer.waitForMessages(1))[0]?.tls).toBe(true);
      });
    });

    test(`${mode}: --tls-fingerprint trusts that certificate alone; another one exits 77 with a hint`, async () => {
      await withAiosmtpd(options(pki.unknownCa), async (peer) => {
        const pin = new X509Certificate(pki.unknownCa.cert).fingerprint256;
        const pinned = await runCli([...sendArgs(peer.port), ...tlsFlag, "--tls-fingerprint", pin, "--json"]);
        expect(pinned.code).toBe(0);
        expect(JSON.parse(pinned.stdout).deliveries[0].tls).toMatchObject({ verified: false, pinned: true });
        expect((await peer.waitForMessages(1))[0]?.tls).toBe(true);
        const other = new X509Certificate(pki.server.cert).fingerprint256.replaceAll(":", "").toLowerCase();
        const refused = await runCli([...sendArgs(peer.port), ...tlsFlag, "--tls-fingerprint", other]);
        expect(refused.code).toBe(77);
        expect(refused.stderr).toContain(
          `the certificate is not the pinned one: its SHA-256 fingerprint is ${pin}`,
        );
        expect(refused.stderr).toContain("compare --tls-fingerprint with the certificate's");
        expect(refused.stderr.trim().split("\n")).toHaveLength(1);
        expect(await peer.messages()).toHaveLength(1);
      });
    });

    test(`${mode}: an expired certificate exits 77`, async () => {
      await withAiosmtpd(options(pki.expired), async (peer) => {
        expect((await runCli([...sendArgs(peer.port), ...tlsFlag, "--ca", caFile])).code).toBe(77);
      });
    });
  }

  test("STARTTLS auto uses it when offered", async () => {
    await withAiosmtpd({ starttls: pki.server }, async (peer) => {
      expect((await runCli([...sendArgs(peer.port), "--ca", caFile])).code).toBe(0);
      expect((await peer.waitForMessages(1))[0]?.tls).toBe(true);
    });
  });
});

describe("AUTH against aiosmtpd's authenticator", () => {
  const users = { ana: PASSWORD };
  const authArgs = (port: number, mechanism: string, env = "SMTPKIT_TEST_PASSWORD") => [
    ...sendArgs(port),
    "--ca",
    caFile,
    "--user",
    "ana",
    "--password-env",
    env,
    "--auth",
    mechanism,
  ];

  for (const mechanism of ["PLAIN", "LOGIN", "CRAM-MD5"]) {
    test(`${mechanism}: accepted with the right password, 77 with a wrong one`, async () => {
      await withAiosmtpd({ starttls: pki.server, auth: { users } }, async (peer) => {
        const ok = await runCli([...authArgs(peer.port, mechanism), "-v"], {
          env: { SMTPKIT_TEST_PASSWORD: PASSWORD },
        });
        expect(ok.code).toBe(0);
        expect(ok.stderr).toContain(` ~> AUTH ${mechanism}`);
        expect(ok.stderr).not.toContain(PASSWORD);
        expect(ok.stderr).not.toContain(Buffer.from(`\0ana\0${PASSWORD}`).toString("base64"));
        expect(ok.stderr).not.toContain(Buffer.from(PASSWORD).toString("base64"));
        const [message] = await peer.waitForMessages(1);
        expect(message?.authLogin).toBe("ana");
        const wrong = await runCli(authArgs(peer.port, mechanism), {
          env: { SMTPKIT_TEST_PASSWORD: "nope" },
        });
        expect(wrong.code).toBe(77);
        expect(await peer.messages()).toHaveLength(1);
      });
    });
  }

  test("CRAM-MD5 against nodemailer's smtp-server (its own implementation)", async () => {
    const peer = await startPeer({
      key: pki.server.key,
      cert: pki.server.cert,
      users,
      authMethods: ["CRAM-MD5"],
    });
    try {
      const result = await runCli(authArgs(peer.port, "CRAM-MD5"), {
        env: { SMTPKIT_TEST_PASSWORD: PASSWORD },
      });
      expect(result.code).toBe(0);
      expect(peer.messages[0]?.user).toBe("ana");
    } finally {
      await peer.close();
    }
  });

  test("without TLS the password is not sent: 77 (aiosmtpd offers AUTH only after STARTTLS anyway)", async () => {
    await withAiosmtpd({ auth: { users, requireTls: false } }, async (peer) => {
      const result = await runCli(
        [
          ...sendArgs(peer.port),
          "--user",
          "ana",
          "--password-env",
          "SMTPKIT_TEST_PASSWORD",
          "--starttls",
          "never",
        ],
        { env: { SMTPKIT_TEST_PASSWORD: PASSWORD } },
      );
      expect(result.code).toBe(77);
      expect(result.stderr).toContain("unencrypted");
    });
  });
});

describe("direct MX delivery through a loopback DNS responder", () => {
  test("two MX hosts on loopback, the first down: delivered to the second; the JSON records the attempt", async () => {
    await withAiosmtpd({}, async (peer) => {
      // mx1 is 127.0.0.2, where nothing listens on the peer's port; mx2 is the peer on 127.0.0.1.
      const dns = await startDnsResponder({
        "dest.test": {
          mx: [
            { priority: 20, exchange: "mx2.dest.test" },
            { priority: 10, exchange: "mx1.dest.test" },
          ],
        },
        "mx1.dest.test": { a: ["127.0.0.2"] },
        "mx2.dest.test": { a: [LOOPBACK] },
      });
      try {
        const result = await runCli(
          [
            "send",
            "--dns",
            dns.server,
            "-f",
            FROM,
            "-t",
            "bob@dest.test,carol@dest.test",
            "--body",
            "mx",
            "--json",
          ],
          { env: { SMTPKIT_MX_PORT: String(peer.port) } },
        );
        expect(result.code).toBe(0);
        const [delivery] = JSON.parse(result.stdout).deliveries;
        expect(delivery.domain).toBe("dest.test");
        expect(delivery.server.host).toBe("mx2.dest.test");
        expect(delivery.attempts.map((a: { host: string }) => a.host)).toEqual(["mx1.dest.test"]);
        const [message] = await peer.waitForMessages(1);
        expect(message?.rcptTos).toEqual(["bob@dest.test", "carol@dest.test"]);
        expect(dns.queries.some((q) => q.name === "dest.test" && q.type === "MX")).toBe(true);
      } finally {
        await dns.close();
      }
    });
  });

  test("every MX host down: 75", async () => {
    const port = await freePort();
    const dns = await startDnsResponder({
      "dest.test": { mx: [{ priority: 10, exchange: "mx1.dest.test" }] },
      "mx1.dest.test": { a: ["127.0.0.2"] },
    });
    try {
      const result = await runCli(
        ["send", "--dns", dns.server, "-f", FROM, "-t", "bob@dest.test", "--body", "x"],
        {
          env: { SMTPKIT_MX_PORT: String(port) },
        },
      );
      expect(result.code).toBe(75);
    } finally {
      await dns.close();
    }
  });
});

describe("smtpkit sendmail -t", () => {
  const message =
    "From: Ana <ana@example.com>\nTo: bob@example.net\nBcc: Secret <secret@example.org>\nSubject: sendmail -t\n\nhello\n";

  test("with Bcc (aiosmtpd): the Bcc address gets the message, no Bcc header arrives", async () => {
    await withAiosmtpd({}, async (peer) => {
      const result = await runCli(["sendmail", "-t", "-i", "--server", `${LOOPBACK}:${peer.port}`], {
        stdin: message,
      });
      expect(result).toMatchObject({ code: 0, stdout: "", stderr: "" });
      const [received] = await peer.waitForMessages(1);
      expect(received?.mailFrom).toBe("ana@example.com");
      expect(received?.rcptTos).toEqual(["bob@example.net", "secret@example.org"]);
      const parsed = await parseWithPythonEmail(received?.raw as Uint8Array);
      expect(headerValues(parsed, "Bcc")).toEqual([]);
      expect(Buffer.from(received?.raw as Uint8Array).toString("latin1")).not.toContain("secret@example.org");
      expect(headerValues(parsed, "Subject")).toEqual(["sendmail -t"]);
      expect(headerValues(parsed, "Message-ID")).toHaveLength(1);
      expect(headerValues(parsed, "Date")).toHaveLength(1);
      expect(plain(parsed.parts[0]?.text)).toBe("hello");
    });
  });

  test("with Bcc (smtp-sink): the same", async () => {
    await withSink({}, async (sink) => {
      const result = await runCli(["sendmail", "-t", "--server", `${LOOPBACK}:${sink.port}`], {
        stdin: message,
      });
      expect(result.code).toBe(0);
      const [received] = await sink.waitForMessages(1);
      expect(received?.rcptTos).toEqual(["bob@example.net", "secret@example.org"]);
      expect(Buffer.from(received?.raw as Uint8Array).toString("latin1")).not.toMatch(/^Bcc:/im);
    });
  });
});
