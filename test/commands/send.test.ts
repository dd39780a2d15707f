// `smtpkit send` end to end: the CLI as a child process against nodemailer's smtp-server (an
// independent peer) or a scripted loopback server, checking exit codes and output.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import PostalMime from "postal-mime";
import { closedPort, scriptedServer } from "../client/scripted-server.ts";
import { createTestPki, type TestPki } from "../helpers/certs.ts";
import { startDnsResponder } from "../helpers/dns-responder.ts";
import { runCli } from "./run-cli.ts";
import { type Peer, startPeer } from "./smtp-server-peer.ts";

const FROM = "Ana Nguyễn <ana@example.com>";
let dir: string;
let pki: TestPki;
let caFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpkit-send-test-"));
  pki = await createTestPki();
  caFile = join(dir, "ca.pem");
  await writeFile(caFile, pki.ca.cert);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Starts a peer for one test and always closes it. */
async function withPeer<T>(options: Parameters<typeof startPeer>[0], run: (peer: Peer) => Promise<T>) {
  const peer = await startPeer(options);
  try {
    return await run(peer);
  } finally {
    await peer.close();
  }
}

function server(peer: { port: number }): string[] {
  return ["--server", `127.0.0.1:${peer.port}`, "--starttls", "never"];
}

describe("send: exit codes against smtp-server", () => {
  test("every recipient accepted: exit 0, quiet, and the message arrives as composed", async () => {
    await withPeer({}, async (peer) => {
      const result = await runCli([
        "send",
        ...server(peer),
        "-f",
        FROM,
        "-t",
        "bob@example.net,carol@example.org",
        "--bcc",
        "hidden@example.org",
        "--subject",
        "Xin chào 😀",
        "--body",
        "Chào bạn",
      ]);
      expect(result).toMatchObject({ code: 0, stdout: "", stderr: "" });
      expect(peer.messages).toHaveLength(1);
      const [message] = peer.messages;
      expect(message?.mailFrom).toBe("ana@example.com");
      expect(message?.rcptTo).toEqual(["bob@example.net", "carol@example.org", "hidden@example.org"]);
      const email = await PostalMime.parse(message?.raw as Uint8Array);
      expect(email.subject).toBe("Xin chào 😀");
      expect(email.text?.trim()).toBe("Chào bạn");
      expect(Buffer.from(message?.raw as Uint8Array).toString("latin1")).not.toMatch(/^bcc:/im);
    });
  });

  test("every recipient refused: 67", async () => {
    await withPeer({ refuseRecipients: { "bob@example.net": [550, "No such user"] } }, async (peer) => {
      const result = await runCli([
        "send",
        ...server(peer),
        "-f",
        FROM,
        "-t",
        "bob@example.net",
        "--body",
        "x",
      ]);
      expect(result.code).toBe(67);
      expect(result.stderr).toMatch(/550 5\.\d\.\d+ No such user/);
      expect(peer.messages).toHaveLength(0);
    });
  });

  test("some recipients refused: 67 without --allow-partial, 0 with it; the message goes to the rest", async () => {
    await withPeer({ refuseRecipients: { "nobody@example.net": [550, "No such user"] } }, async (peer) => {
      const args = [
        "send",
        ...server(peer),
        "-f",
        FROM,
        "-t",
        "bob@example.net,nobody@example.net",
        "--body",
        "x",
      ];
      const strict = await runCli(args);
      expect(strict.code).toBe(67);
      expect(strict.stderr).toContain("1 of 2 recipients refused: <nobody@example.net>");
      const partial = await runCli([...args, "--allow-partial", "--json"]);
      expect(partial.code).toBe(0);
      const document = JSON.parse(partial.stdout);
      expect(document.exitCode).toBe(0);
      expect(
        document.deliveries[0].recipients.map((r: { address: string; accepted: boolean }) => [
          r.address,
          r.accepted,
        ]),
      ).toEqual([
        ["bob@example.net", true],
        ["nobody@example.net", false],
      ]);
      expect(peer.messages.map((m) => m.rcptTo)).toEqual([["bob@example.net"], ["bob@example.net"]]);
    });
  });

  test("a recipient deferred with 4xx: 75", async () => {
    await withPeer({ refuseRecipients: { "bob@example.net": [451, "Try later"] } }, async (peer) => {
      const result = await runCli([
        "send",
        ...server(peer),
        "-f",
        FROM,
        "-t",
        "bob@example.net",
        "--body",
        "x",
      ]);
      expect(result.code).toBe(75);
    });
  });

  test("refused after the final dot with 5xx: 69; with 4xx: 75", async () => {
    await withPeer({ refuseMessage: [554, "Content rejected"] }, async (peer) => {
      const result = await runCli([
        "send",
        ...server(peer),
        "-f",
        FROM,
        "-t",
        "bob@example.net",
        "--body",
        "x",
      ]);
      expect(result.code).toBe(69);
      expect(result.stderr).toMatch(/554 5\.\d\.\d+ Content rejected/);
    });
    await withPeer({ refuseMessage: [452, "Disk full"] }, async (peer) => {
      const result = await runCli([
        "send",
        ...server(peer),
        "-f",
        FROM,
        "-t",
        "bob@example.net",
        "--body",
        "x",
      ]);
      expect(result.code).toBe(75);
    });
  });

  test("a message larger than the server's SIZE: 69, refused before DATA", async () => {
    await withPeer({ size: 500 }, async (peer) => {
      const result = await runCli([
        "send",
        ...server(peer),
        "-f",
        FROM,
        "-t",
        "bob@example.net",
        "--body",
        "x".repeat(2000),
      ]);
      expect(result.code).toBe(69);
      expect(result.stderr).toMatch(/SIZE|size/);
      expect(peer.messages).toHaveLength(0);
    });
  });

  test("a non-ASCII address without SMTPUTF8: 65 with a clear message; with SMTPUTF8: sent", async () => {
    await withPeer({ hideSMTPUTF8: true }, async (peer) => {
      const result = await runCli(["send", ...server(peer), "-f", FROM, "-t", "bé@ví-dụ.vn", "--body", "x"]);
      expect(result.code).toBe(65);
      expect(result.stderr).toContain("SMTPUTF8");
      expect(peer.messages).toHaveLength(0);
    });
    await withPeer({}, async (peer) => {
      const result = await runCli(["send", ...server(peer), "-f", FROM, "-t", "bé@ví-dụ.vn", "--body", "x"]);
      expect(result.code).toBe(0);
      expect(peer.messages[0]?.rcptTo).toEqual(["bé@ví-dụ.vn"]);
      expect(peer.messages[0]?.mailParams.SMTPUTF8).toBe(true);
    });
  });

  test("connection refused: 75", async () => {
    const port = await closedPort();
    const result = await runCli([
      "send",
      "--server",
      `127.0.0.1:${port}`,
      "-f",
      FROM,
      "-t",
      "b@b.test",
      "--body",
      "x",
    ]);
    expect(result.code).toBe(75);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
  });

  test("a missing attachment: 66, before connecting", async () => {
    const port = await closedPort();
    const result = await runCli([
      "send",
      "--server",
      `127.0.0.1:${port}`,
      "-f",
      FROM,
      "-t",
      "b@b.test",
      "--body",
      "x",
      "-a",
      join(dir, "missing.pdf"),
    ]);
    expect(result.code).toBe(66);
    expect(result.stderr).toContain("missing.pdf");
  });

  test("a missing --raw file: 66, one line naming it, before connecting", async () => {
    const port = await closedPort();
    const missing = join(dir, "missing.eml");
    const result = await runCli(["send", "--server", `127.0.0.1:${port}`, "--raw", missing]);
    expect(result.code).toBe(66);
    expect(result.stderr).toBe(`smtpkit: --raw: ${missing} does not exist\n`);
  });
});

describe("send: 5xx at DATA (scripted server)", () => {
  test("554 to DATA: 69, and the message is never written", async () => {
    const peerServer = await scriptedServer(async (peer) => {
      peer.send("220 scripted ESMTP\r\n");
      expect(await peer.line()).toStartWith("EHLO ");
      peer.send("250-scripted\r\n250 ENHANCEDSTATUSCODES\r\n");
      expect(await peer.line()).toBe("MAIL FROM:<ana@example.com>");
      peer.send("250 2.1.0 Ok\r\n");
      expect(await peer.line()).toBe("RCPT TO:<bob@example.net>");
      peer.send("250 2.1.5 Ok\r\n");
      expect(await peer.line()).toBe("DATA");
      peer.send("554 5.3.0 No DATA today\r\n");
      const rest = await peer.line();
      expect(["QUIT", "RSET"]).toContain(rest);
      if (rest === "RSET") {
        peer.send("250 Ok\r\n");
        expect(await peer.line()).toBe("QUIT");
      }
      peer.send("221 Bye\r\n");
      peer.end();
    });
    try {
      const result = await runCli([
        "send",
        "--server",
        `127.0.0.1:${peerServer.port}`,
        "-f",
        FROM,
        "-t",
        "bob@example.net",
        "--body",
        "x",
      ]);
      expect(result.code).toBe(69);
      expect(result.stderr).toContain("554 5.3.0 No DATA today");
      await peerServer.done();
    } finally {
      await peerServer.close();
    }
  });
});

describe("send: accounts", () => {
  /** A config home whose default account names `port` and carries a user whose password cannot be read. */
  async function configHome(name: string, port: number): Promise<string> {
    const home = join(dir, name);
    await Bun.write(
      join(home, "smtpkit", "config.toml"),
      `[accounts.work]\nserver = "127.0.0.1:${port}"\ntls = "none"\nfrom = "Work <work@example.com>"\n` +
        `user = "ana"\npassword_env = "SMTPKIT_TEST_NO_SUCH_VAR"\ndefault = true\n\n` +
        `[accounts.plain]\nserver = "127.0.0.1:${port}"\ntls = "none"\nfrom = "Plain <plain@example.com>"\n`,
    );
    return home;
  }

  test("without --server, the default account gives server, sender and credentials", async () => {
    await withPeer({}, async (peer) => {
      const env = { XDG_CONFIG_HOME: await configHome("xdg-default", peer.port) };
      const result = await runCli(["send", "-t", "bob@example.net", "--body", "x"], { env });
      // The account's user needs the password its unset variable cannot give: it was used.
      expect(result.code).toBe(64);
      expect(result.stderr).toContain("SMTPKIT_TEST_NO_SUCH_VAR is not set");
      expect(peer.messages).toHaveLength(0);
    });
  });

  test("--server alone uses no account, as msmtp's --host: its password goes nowhere else", async () => {
    await withPeer({}, async (peer) => {
      const env = { XDG_CONFIG_HOME: await configHome("xdg-server", peer.port) };
      const result = await runCli(
        ["send", ...server(peer), "-f", FROM, "-t", "bob@example.net", "--body", "x"],
        {
          env,
        },
      );
      expect(result).toMatchObject({ code: 0, stderr: "" });
      expect(peer.messages.map((m) => m.mailFrom)).toEqual(["ana@example.com"]);
      const noSender = await runCli(["send", ...server(peer), "-t", "bob@example.net", "--body", "x"], {
        env,
      });
      expect(noSender.code).toBe(64);
      expect(noSender.stderr).toContain("no sender");
    });
  });

  test("--account with --server: the account's settings, the flag's server", async () => {
    await withPeer({}, async (peer) => {
      const env = { XDG_CONFIG_HOME: await configHome("xdg-named", 1) };
      const result = await runCli(
        ["send", ...server(peer), "--account", "plain", "-t", "bob@example.net", "--body", "x"],
        {
          env,
        },
      );
      expect(result).toMatchObject({ code: 0, stderr: "" });
      expect(peer.messages.map((m) => m.mailFrom)).toEqual(["plain@example.com"]);
    });
  });
});

describe("send: output", () => {
  test("--json: one document with server, stages, per-recipient replies, Message-ID, size, timings", async () => {
    await withPeer({}, async (peer) => {
      const result = await runCli([
        "send",
        ...server(peer),
        "-f",
        FROM,
        "-t",
        "bob@example.net",
        "--body",
        "x",
        "--json",
      ]);
      expect(result.code).toBe(0);
      const document = JSON.parse(result.stdout);
      expect(Object.keys(document).sort()).toEqual([
        "deliveries",
        "exitCode",
        "from",
        "messageId",
        "size",
        "totalMs",
      ]);
      expect(document.messageId).toMatch(/^<[^@>]+@example\.com>$/);
      expect(document.from).toBe("ana@example.com");
      expect(document.size).toBe(peer.messages[0]?.raw.length);
      expect(typeof document.totalMs).toBe("number");
      const [delivery] = document.deliveries;
      expect(delivery.server).toMatchObject({ address: "127.0.0.1", port: peer.port, family: 4 });
      expect(delivery.tls).toBeNull();
      expect(delivery.stages.map((s: { stage: string }) => s.stage)).toEqual(["connect", "greeting", "ehlo"]);
      expect(delivery.stages[1].reply.code).toBe(220);
      expect(delivery.recipients).toEqual([
        { address: "bob@example.net", accepted: true, reply: expect.objectContaining({ code: 250 }) },
      ]);
      expect(delivery.mail.code).toBe(250);
      expect(delivery.final.code).toBe(250);
      expect(delivery.method).toBe("data");
      expect(delivery.error).toBeNull();
      expect(typeof delivery.ms).toBe("number");
    });
  });

  test("--json on failure still prints the document, and nothing goes to stderr", async () => {
    const port = await closedPort();
    const result = await runCli([
      "send",
      "--server",
      `127.0.0.1:${port}`,
      "-f",
      FROM,
      "-t",
      "b@b.test",
      "--body",
      "x",
      "--json",
    ]);
    expect(result.code).toBe(75);
    expect(result.stderr).toBe("");
    const document = JSON.parse(result.stdout);
    expect(document.exitCode).toBe(75);
    expect(document.deliveries[0].error.kind).toBe("network");
  });

  test("--print-id prints the Message-ID that arrived, and only that", async () => {
    await withPeer({}, async (peer) => {
      const result = await runCli([
        "send",
        ...server(peer),
        "-f",
        FROM,
        "-t",
        "bob@example.net",
        "--body",
        "x",
        "--print-id",
      ]);
      expect(result.code).toBe(0);
      const id = result.stdout.trim();
      expect(id).toMatch(/^<[^>]+>$/);
      const email = await PostalMime.parse(peer.messages[0]?.raw as Uint8Array);
      expect(email.messageId).toBe(id);
    });
  });

  test("-v: the transcript in swaks notation on stderr, TLS lines marked, the password masked", async () => {
    await withPeer(
      { key: pki.server.key, cert: pki.server.cert, users: { ana: "s3cret-pw" }, authMethods: ["PLAIN"] },
      async (peer) => {
        const result = await runCli(
          [
            "send",
            "--server",
            `localhost:${peer.port}`,
            "--ca",
            caFile,
            "--user",
            "ana",
            "--password-env",
            "SMTPKIT_TEST_PW",
            "-f",
            FROM,
            "-t",
            "bob@example.net",
            "--body",
            "transcript body",
            "-v",
          ],
          { env: { SMTPKIT_TEST_PW: "s3cret-pw" } },
        );
        expect(result.code).toBe(0);
        expect(result.stdout).toBe("");
        const lines = result.stderr.trimEnd().split("\n");
        for (const line of lines) expect(line).toMatch(/^(=== |<- |<~ | -> | ~> )/);
        expect(lines).toContain(" -> STARTTLS");
        expect(lines.some((l) => l.startsWith("<- 220 "))).toBe(true);
        expect(lines.some((l) => l.startsWith("=== TLS started: TLS"))).toBe(true);
        expect(lines.some((l) => l.startsWith(" ~> EHLO "))).toBe(true);
        expect(lines.some((l) => l.startsWith(" ~> AUTH PLAIN"))).toBe(true);
        expect(lines).toContain(" ~> transcript body");
        expect(lines.some((l) => /^<~ 250 .*\[\d+\.\d ms\]$/.test(l))).toBe(true);
        const secret = Buffer.from("\0ana\0s3cret-pw").toString("base64");
        expect(result.stderr).not.toContain(secret);
        expect(result.stderr).not.toContain("s3cret-pw");
        expect(peer.messages[0]?.secure).toBe(true);
        expect(peer.messages[0]?.user).toBe("ana");
      },
    );
  });

  test("--dry-run prints MAIL/RCPT lines then the exact message, and connects nowhere", async () => {
    const port = await closedPort();
    const result = await runCli([
      "send",
      "--server",
      `127.0.0.1:${port}`,
      "-f",
      FROM,
      "-t",
      "bob@example.net",
      "--bcc",
      "hidden@example.org",
      "--subject",
      "dry",
      "--body",
      "x",
      "--dry-run",
    ]);
    expect(result.code).toBe(0);
    const [envelope, message] = [
      result.stdout.slice(0, result.stdout.indexOf("Date:")),
      result.stdout.slice(result.stdout.indexOf("Date:")),
    ];
    expect(envelope).toBe(
      "MAIL FROM:<ana@example.com>\nRCPT TO:<bob@example.net>\nRCPT TO:<hidden@example.org>\n",
    );
    expect(message).toContain("\r\nSubject: dry\r\n");
    expect(message).not.toMatch(/^Bcc:/im);
  });
});

describe("send: certificates", () => {
  test("a certificate that does not verify: 77 with a hint; --insecure and --ca pass", async () => {
    await withPeer({ key: pki.unknownCa.key, cert: pki.unknownCa.cert }, async (peer) => {
      const base = [
        "send",
        "--server",
        `localhost:${peer.port}`,
        "-f",
        FROM,
        "-t",
        "bob@example.net",
        "--body",
        "x",
      ];
      const failed = await runCli(base);
      expect(failed.code).toBe(77);
      expect(failed.stderr).toContain("--insecure");
      expect((await runCli([...base, "--insecure"])).code).toBe(0);
    });
    await withPeer({ key: pki.server.key, cert: pki.server.cert }, async (peer) => {
      const base = [
        "send",
        "--server",
        `localhost:${peer.port}`,
        "-f",
        FROM,
        "-t",
        "bob@example.net",
        "--body",
        "x",
      ];
      expect((await runCli(base)).code).toBe(77);
      expect((await runCli([...base, "--ca", caFile])).code).toBe(0);
      expect(peer.messages[0]?.secure).toBe(true);
    });
  });
});

describe("send: direct MX delivery (SMTPKIT_MX_PORT test hook)", () => {
  test("recipients grouped by domain; each domain's MX found through --dns", async () => {
    // STARTTLS hidden: smtp-server's own certificate would not verify (opportunistic TLS is not ours to test here).
    await withPeer({ hideSTARTTLS: true }, async (peer) => {
      const dns = await startDnsResponder({
        "a.test": { mx: [{ priority: 10, exchange: "mx.a.test" }] },
        "mx.a.test": { a: ["127.0.0.1"] },
        "b.test": { mx: [{ priority: 10, exchange: "mx.b.test" }] },
        "mx.b.test": { a: ["127.0.0.1"] },
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
            "x@a.test,y@b.test,z@a.test",
            "--body",
            "x",
            "--json",
          ],
          { env: { SMTPKIT_MX_PORT: String(peer.port) } },
        );
        expect(result.code).toBe(0);
        const document = JSON.parse(result.stdout);
        expect(document.deliveries.map((d: { domain: string }) => d.domain)).toEqual(["a.test", "b.test"]);
        expect(document.deliveries[0].server.host).toBe("mx.a.test");
        expect(peer.messages.map((m) => m.rcptTo).sort()).toEqual([["x@a.test", "z@a.test"], ["y@b.test"]]);
      } finally {
        await dns.close();
      }
    });
  });

  test("a domain with no mail host: 68", async () => {
    const dns = await startDnsResponder({});
    try {
      const result = await runCli(
        ["send", "--dns", dns.server, "-f", FROM, "-t", "x@nowhere.test", "--body", "x"],
        {
          env: { SMTPKIT_MX_PORT: "2" },
        },
      );
      expect(result.code).toBe(68);
    } finally {
      await dns.close();
    }
  });

  test("a bad SMTPKIT_MX_PORT is a usage error", async () => {
    const result = await runCli(["send", "-f", FROM, "-t", "x@a.test", "--body", "x"], {
      env: { SMTPKIT_MX_PORT: "seventy" },
    });
    expect(result.code).toBe(64);
    expect(result.stderr).toContain("SMTPKIT_MX_PORT");
  });
});

describe("send: load mode", () => {
  test("--repeat N --parallel C sends N messages over C connections and prints a summary", async () => {
    await withPeer({}, async (peer) => {
      const result = await runCli([
        ...["send", ...server(peer), "-f", FROM, "-t", "bob@example.net", "--body", "x"],
        ...["--repeat", "7", "--parallel", "2", "--json"],
      ]);
      expect(result.code).toBe(0);
      const summary = JSON.parse(result.stdout);
      expect(summary).toMatchObject({ messages: 7, delivered: 7, failed: 0, notAttempted: 0, failures: {} });
      expect(peer.messages).toHaveLength(7);
    });
  });

  test("load mode needs --server", async () => {
    const result = await runCli(["send", "-f", FROM, "-t", "b@b.test", "--body", "x", "--repeat", "2"]);
    expect(result.code).toBe(64);
  });
});
