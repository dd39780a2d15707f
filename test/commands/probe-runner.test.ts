// The probe against a scripted server on loopback: each stage, each way it can end.

import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { OptionValue } from "../../src/commands/option-values.ts";
import { parseProbeCommand } from "../../src/commands/probe-options.ts";
import { defaultHelo, extensionChanges, type ProbeHooks, runProbe } from "../../src/commands/probe-runner.ts";
import type { HostReport, ProbeReport } from "../../src/commands/probe-types.ts";
import { createTestPki, type PemFiles, type TestPki, writePemFiles } from "../helpers/certs.ts";
import { type DnsResponder, startDnsResponder } from "../helpers/dns-responder.ts";
import { type ScriptedServer, type ScriptedServerOptions, startScriptedServer } from "./probe-server.ts";

let pki: TestPki;
let caFiles: PemFiles;
let server: ScriptedServer | undefined;

beforeAll(async () => {
  pki = await createTestPki();
  caFiles = await writePemFiles({ "ca.pem": pki.ca.cert });
});

afterAll(async () => {
  await caFiles.remove();
});

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function probe(
  serverOptions: ScriptedServerOptions,
  flags: Record<string, OptionValue> = {},
  hooks: ProbeHooks = {},
): Promise<{ report: ProbeReport; host: HostReport; commands: string[] }> {
  server = await startScriptedServer(serverOptions);
  const command = await parseProbeCommand(`127.0.0.1:${server.port}`, {
    helo: "client.test",
    ...flags,
  });
  const report = await runProbe(command.settings, hooks);
  const host = report.hosts[0];
  if (host === undefined) throw new Error("no host in the report");
  return { report, host, commands: server.commands };
}

describe("a full probe", () => {
  test("every stage is reported: banner, EHLO, STARTTLS with the chain, EHLO again, AUTH, envelope, QUIT", async () => {
    process.env.PROBE_TEST_PASSWORD = "s3cret";
    const { host, commands, report } = await probe(
      {
        tls: pki.server,
        ehloAfterTls: [
          "250-scripted.test",
          "250-PIPELINING",
          "250-SIZE 1000000",
          "250-AUTH PLAIN LOGIN",
          "250 8BITMIME",
        ],
        onLine: (line) =>
          line.startsWith("AUTH PLAIN ") ? "235 2.7.0 Authentication successful" : undefined,
      },
      {
        ca: caFiles.paths["ca.pem"],
        user: "alice",
        passwordEnv: "PROBE_TEST_PASSWORD",
        from: "alice@a.test",
        rcpt: ["bob@b.test", "carol@c.test"],
        expect: ["rcpt=250", "banner=2xx", "auth=235"],
      },
    );
    expect(report.exitCode).toBe(0);
    expect(host.error).toBeNull();
    expect(host.banner?.reply.code).toBe(220);
    expect(host.ehlo?.command).toBe("EHLO");
    expect(host.ehlo?.capabilities.startTls).toBe(true);
    expect(host.ehlo?.capabilities.size).toBe(1000000);
    expect(host.tls?.mode).toBe("starttls");
    expect(host.tls?.starttls?.code).toBe(220);
    expect(host.tls?.chainVerified).toBe(true);
    expect(host.tls?.nameMatches).toBe(true);
    expect(host.tls?.certificates[0]?.subject).toBe("CN=localhost");
    expect(host.tls?.certificates[1]?.subject).toBe("CN=smtpkit test CA, O=smtpkit tests");
    expect(host.ehloAfterTls?.changes).toEqual({ added: ["AUTH PLAIN LOGIN"], removed: ["STARTTLS"] });
    expect(host.auth).toMatchObject({ mechanism: "PLAIN", ok: true, error: null });
    expect(host.envelope?.recipients.map((r) => r.reply?.code)).toEqual([250, 250]);
    expect(host.envelope?.rset?.reply.code).toBe(250);
    expect(host.quit?.reply.code).toBe(221);
    expect(host.expectations.every((e) => e.ok)).toBe(true);
    expect(commands.filter((c) => !c.startsWith("AUTH"))).toEqual([
      "EHLO client.test",
      "STARTTLS",
      "EHLO client.test",
      "MAIL FROM:<alice@a.test>",
      "RCPT TO:<bob@b.test>",
      "RCPT TO:<carol@c.test>",
      "RSET",
      "QUIT",
    ]);
    // The password never reaches the transcript.
    expect(host.transcript.join("\n")).not.toContain(Buffer.from("\0alice\0s3cret").toString("base64"));
    expect(host.transcript).toContain(" ~> AUTH PLAIN ********");
  });

  test("hooks see each stage as it ends, in order", async () => {
    const stages: string[] = [];
    await probe({}, { starttls: "never" }, { stageDone: (_host, stage) => stages.push(stage) });
    expect(stages).toEqual(["connect", "banner", "ehlo", "tls", "quit"]);
  });
});

describe("stages that end the probe early", () => {
  test("EHLO refused: HELO is used and reported, ehlo=250 fails, helo=250 holds (exit 1)", async () => {
    const { host, report } = await probe(
      { replies: { EHLO: "502 5.5.2 Error: command not recognized" } },
      { expect: ["ehlo=250", "helo=250"] },
    );
    expect(host.ehlo?.command).toBe("HELO");
    expect(host.ehlo?.ehloReply?.code).toBe(502);
    expect(host.ehlo?.reply.code).toBe(250);
    expect(host.tls).toMatchObject({ mode: "none", offered: false });
    expect(host.expectations.map((e) => e.ok)).toEqual([false, true]);
    expect(host.expectations[0]?.reason).toBe("ehlo replied 502, expected 250");
    expect(report.exitCode).toBe(1);
  });

  test("a 554 banner is reported and answered with QUIT; the probe itself succeeded", async () => {
    const { host, report, commands } = await probe({ banner: "554 5.7.1 go away" });
    expect(host.banner?.reply).toMatchObject({ code: 554, enhanced: "5.7.1", lines: ["go away"] });
    expect(host.banner?.reply.enhancedMeaning).toBe("Delivery not authorized, message refused");
    expect(commands).toEqual(["QUIT"]);
    expect(report.exitCode).toBe(0);
  });

  test("a refused MAIL: the RCPTs are not sent, RSET is", async () => {
    const { host, commands } = await probe(
      { replies: { MAIL: "451 4.3.0 try later" } },
      { from: "a@a.test", rcpt: ["b@b.test"], starttls: "never" },
    );
    expect(host.envelope?.mailAccepted).toBe(false);
    expect(host.envelope?.recipients).toEqual([
      { address: "b@b.test", command: null, reply: null, ms: null, accepted: false },
    ]);
    expect(commands).toEqual(["EHLO client.test", "MAIL FROM:<a@a.test>", "RSET", "QUIT"]);
  });

  test("--rcpt without --from uses the null sender", async () => {
    const { commands } = await probe({}, { rcpt: ["b@b.test"], starttls: "never" });
    expect(commands).toContain("MAIL FROM:<>");
  });

  test("the server hanging up mid-probe is exit 75 at that stage", async () => {
    const { host, report } = await probe(
      { onLine: (line) => (line.startsWith("RCPT") ? "CLOSE" : undefined) },
      { from: "a@a.test", rcpt: ["b@b.test"], starttls: "never" },
    );
    expect(host.error).toMatchObject({ stage: "rcpt", kind: "closed" });
    expect(report.exitCode).toBe(75);
  });

  test("a malformed reply is a protocol error, exit 76", async () => {
    const { host, report } = await probe({ replies: { EHLO: "hello there" } });
    expect(host.error).toMatchObject({ stage: "ehlo", kind: "protocol" });
    expect(report.exitCode).toBe(76);
  });

  test("a silent server times out at the banner, exit 75", async () => {
    const { host, report } = await probe({ banner: null }, { timeout: "0.2" });
    expect(host.error).toMatchObject({ stage: "banner", kind: "timeout" });
    expect(report.exitCode).toBe(75);
  });

  test("a 421 to one RCPT ends the probe there (exit 75), with the 421 reported", async () => {
    const { host, report, commands } = await probe(
      { onLine: (line) => (line === "RCPT TO:<b@b.test>" ? "421 4.3.2 going down" : undefined) },
      { rcpt: ["b@b.test", "c@c.test"], starttls: "never" },
    );
    expect(host.error).toMatchObject({ stage: "rcpt", kind: "closed" });
    expect(commands).not.toContain("RCPT TO:<c@c.test>");
    expect(report.exitCode).toBe(75);
  });

  test("a server that says 220 to STARTTLS but never shakes hands times out (exit 75)", async () => {
    const { host, report } = await probe(
      {
        // Plain 220, then silence: whatever the ClientHello holds is never answered.
        onLine: (line, { commands }) =>
          line === "STARTTLS" ? "220 2.0.0 go ahead" : commands.includes("STARTTLS") ? "SILENT" : undefined,
      },
      { timeout: "0.2", ca: caFiles.paths["ca.pem"] },
    );
    expect(host.error).toMatchObject({ stage: "tls", kind: "timeout" });
    expect(host.tls?.error).toContain("TLS handshake not done");
    expect(report.exitCode).toBe(75);
  });

  test("nothing listening: exit 75 at connect", async () => {
    server = await startScriptedServer();
    const port = server.port;
    await server.close();
    server = undefined;
    const command = await parseProbeCommand(`127.0.0.1:${port}`, {});
    const report = await runProbe(command.settings);
    expect(report.hosts[0]?.error).toMatchObject({ stage: "connect", kind: "refused" });
    expect(report.exitCode).toBe(75);
  });

  test("--starttls always without STARTTLS offered: exit 76", async () => {
    const { host, report, commands } = await probe(
      { ehlo: ["250-scripted.test", "250 PIPELINING"] },
      { starttls: "always" },
    );
    expect(host.error).toMatchObject({ stage: "tls", kind: "tls-unavailable" });
    expect(commands).toEqual(["EHLO client.test", "QUIT"]);
    expect(report.exitCode).toBe(76);
  });

  test("STARTTLS refused in auto mode: reported, and the probe goes on in plain text", async () => {
    const { host, report } = await probe(
      { replies: { STARTTLS: "454 4.7.0 TLS not available due to local problem" } },
      { from: "a@a.test", rcpt: ["b@b.test"] },
    );
    expect(host.tls).toMatchObject({ mode: "none", offered: true, established: false });
    expect(host.tls?.starttls?.code).toBe(454);
    expect(host.envelope?.recipients[0]?.accepted).toBe(true);
    expect(report.exitCode).toBe(0);
  });

  test("a certificate for another name stops the probe (77) unless --insecure", async () => {
    const strict = await probe({ tls: pki.wrongName }, { ca: caFiles.paths["ca.pem"] });
    expect(strict.host.tls).toMatchObject({ chainVerified: true, nameMatches: false, verified: false });
    expect(strict.host.error).toMatchObject({ stage: "tls", kind: "tls-verify" });
    expect(strict.report.exitCode).toBe(77);
    expect(strict.commands).toEqual(["EHLO client.test", "STARTTLS", "QUIT"]);
    await server?.close();

    const lax = await probe({ tls: pki.wrongName }, { ca: caFiles.paths["ca.pem"], insecure: true });
    expect(lax.host.tls?.verified).toBe(false);
    expect(lax.host.ehloAfterTls?.reply.code).toBe(250);
    expect(lax.report.exitCode).toBe(0);
  });

  test("--tls-servername checks another name", async () => {
    const { host } = await probe(
      { tls: pki.wrongName },
      { ca: caFiles.paths["ca.pem"], tlsServername: "mx.other.test" },
    );
    expect(host.tls).toMatchObject({ servername: "mx.other.test", nameMatches: true, verified: true });
  });

  test("AUTH is not attempted over plain text unless allowed", async () => {
    process.env.PROBE_TEST_PASSWORD = "pw";
    const { host, commands } = await probe(
      { ehlo: ["250-scripted.test", "250 AUTH PLAIN"] },
      { user: "u", passwordEnv: "PROBE_TEST_PASSWORD" },
    );
    expect(host.auth).toMatchObject({ ok: false, reply: null, offered: ["PLAIN"] });
    expect(host.auth?.error).toContain("not encrypted");
    expect(commands.some((c) => c.startsWith("AUTH"))).toBe(false);
  });

  test("AUTH refused by the server is reported, not fatal", async () => {
    process.env.PROBE_TEST_PASSWORD = "pw";
    const { host, report } = await probe(
      { ehlo: ["250-scripted.test", "250 AUTH LOGIN PLAIN"] },
      { user: "u", passwordEnv: "PROBE_TEST_PASSWORD", allowPlaintextAuth: true, auth: "PLAIN" },
    );
    expect(host.auth).toMatchObject({ mechanism: "PLAIN", ok: false });
    expect(host.auth?.reply?.code).toBe(535);
    expect(host.quit?.reply.code).toBe(221);
    expect(report.exitCode).toBe(0);
  });
});

describe("--quit-after", () => {
  test("connect: no banner read, no QUIT", async () => {
    const { host, commands } = await probe({}, { quitAfter: "connect" });
    expect(host.connect?.address).toBe("127.0.0.1");
    expect(host.banner).toBeNull();
    expect(commands).toEqual([]);
  });

  test("banner: QUIT right after the greeting", async () => {
    const { commands } = await probe({}, { quitAfter: "banner" });
    expect(commands).toEqual(["QUIT"]);
  });

  test("mail: no RCPT, no RSET", async () => {
    const { commands } = await probe(
      {},
      { quitAfter: "mail", from: "a@a.test", rcpt: ["b@b.test"], starttls: "never" },
    );
    expect(commands).toEqual(["EHLO client.test", "MAIL FROM:<a@a.test>", "QUIT"]);
  });
});

describe("--relay-check", () => {
  test("a server that refuses foreign recipients is not an open relay", async () => {
    const { host } = await probe(
      { onLine: (line) => (line.startsWith("RCPT") ? "554 5.7.1 Relay access denied" : undefined) },
      { relayCheck: true, starttls: "never" },
    );
    expect(host.relayCheck?.open).toBe(false);
    expect(host.relayCheck?.localDomain).toBe("scripted.test");
    expect(host.relayCheck?.tests.length).toBeGreaterThanOrEqual(8);
    expect(host.relayCheck?.tests.every((t) => t.rcpt?.code === 554)).toBe(true);
  });

  test("one accepted pattern makes it open, and names the pattern", async () => {
    const { host } = await probe(
      {
        onLine: (line) =>
          line.startsWith("RCPT")
            ? line.includes("%")
              ? "250 2.1.5 Ok"
              : "554 5.7.1 Relay access denied"
            : undefined,
      },
      { relayCheck: true, starttls: "never" },
    );
    expect(host.relayCheck?.open).toBe(true);
    expect(host.relayCheck?.tests.filter((t) => t.accepted).map((t) => t.name)).toEqual([
      "percent-hack",
      "percent-hack-literal",
    ]);
  });
});

describe("--mx", () => {
  let dns: DnsResponder;
  beforeAll(async () => {
    dns = await startDnsResponder({
      "two.test": {
        mx: [
          { priority: 20, exchange: "down.two.test" },
          { priority: 10, exchange: "up.two.test" },
        ],
      },
      "up.two.test": { a: ["127.0.0.1"] },
      // Loopback, but nothing listens on 127.0.0.2: connection refused.
      "down.two.test": { a: ["127.0.0.2"] },
    });
  });
  afterAll(() => dns.close());

  test("each MX host in preference order; the down one is exit 75", async () => {
    server = await startScriptedServer();
    const command = await parseProbeCommand(`two.test:${server.port}`, { mx: true, dns: dns.server });
    const report = await runProbe(command.settings);
    expect(report.hosts.map((h) => [h.host, h.preference])).toEqual([
      ["up.two.test", 10],
      ["down.two.test", 20],
    ]);
    expect(report.hosts[0]?.banner?.reply.code).toBe(220);
    expect(report.hosts[0]?.exitCode).toBe(0);
    expect(report.hosts[1]?.error).toMatchObject({ stage: "connect", kind: "refused" });
    expect(report.exitCode).toBe(75);
  });

  test("a domain that does not exist: exit 68, no hosts", async () => {
    const command = await parseProbeCommand("nowhere.test", { mx: true, dns: dns.server });
    const report = await runProbe(command.settings);
    expect(report.hosts).toEqual([]);
    expect(report.error?.kind).toBe("dns");
    expect(report.exitCode).toBe(68);
  });
});

describe("helpers", () => {
  test("extensionChanges compares keywords case-insensitively and parameters as sent", () => {
    expect(
      extensionChanges(["size 100", "STARTTLS", "AUTH LOGIN"], ["SIZE 100", "AUTH LOGIN PLAIN"]),
    ).toEqual({
      added: ["AUTH LOGIN PLAIN"],
      removed: ["STARTTLS", "AUTH LOGIN"],
    });
  });

  test("defaultHelo is an FQDN or an address literal, never a bare name", () => {
    const helo = defaultHelo("192.0.2.7");
    expect(helo === "[192.0.2.7]" || (helo.includes(".") && !helo.startsWith("["))).toBe(true);
    expect(
      ["[IPv6:2001:db8::7]"].includes(defaultHelo("2001:db8::7")) || defaultHelo("2001:db8::7").includes("."),
    ).toBe(true);
  });
});
