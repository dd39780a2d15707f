// `smtpkit probe` against real peers: aiosmtpd (STARTTLS, AUTH), Postfix's smtp-sink (hidden
// extensions, forced replies), a real Postfix smtpd (relay decisions), the loopback DNS responder
// (--mx), and bad certificates. A missing peer fails these tests (requirePeer), never skips them.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import type { HostReport, ProbeReport } from "../../src/commands/probe-types.ts";
import { createTestPki, type PemFiles, type PemPair, type TestPki, writePemFiles } from "../helpers/certs.ts";
import { type DnsResponder, startDnsResponder } from "../helpers/dns-responder.ts";
import { type Aiosmtpd, startAiosmtpd } from "./peers/aiosmtpd.ts";
import { LOOPBACK } from "./peers/ports.ts";
import { startPostfix } from "./peers/postfix.ts";
import { startSmtpSink } from "./peers/smtp-sink.ts";

const cliPath = new URL("../../src/cli.ts", import.meta.url).pathname;
const PASSWORD = "correct horse";

interface ProbeRun {
  code: number;
  report: ProbeReport;
  host: HostReport;
  stderr: string;
}

async function probe(...args: string[]): Promise<ProbeRun> {
  const proc = Bun.spawn([process.execPath, cliPath, "probe", "--json", "--helo", "probe.test", ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, PROBE_INTEROP_PASSWORD: PASSWORD, NO_COLOR: "1" },
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  let report: ProbeReport;
  try {
    report = JSON.parse(stdout) as ProbeReport;
  } catch {
    throw new Error(`probe printed no JSON (exit ${code}):\n${stdout}\n${stderr}`);
  }
  const host = report.hosts[0];
  if (host === undefined) throw new Error(`no host in the report: ${stdout}`);
  return { code, report, host, stderr };
}

let pki: TestPki;
let caFiles: PemFiles;
let ca: string;

beforeAll(async () => {
  pki = await createTestPki();
  caFiles = await writePemFiles({ "ca.pem": pki.ca.cert });
  ca = caFiles.paths["ca.pem"] as string;
});

afterAll(async () => {
  await caFiles.remove();
});

describe("aiosmtpd with STARTTLS and AUTH", () => {
  // Second precision: X.509 times carry no milliseconds.
  const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000 - 3 * 86_400_000);
  const notAfter = new Date(notBefore.getTime() + 90 * 86_400_000);
  let leaf: PemPair;
  let server: Aiosmtpd;

  beforeAll(async () => {
    leaf = await pki.ca.issue({
      commonName: "probe.aiosmtpd.test",
      altNames: ["probe.aiosmtpd.test", "mail.aiosmtpd.test", "127.0.0.1"],
      notBefore,
      notAfter,
    });
    server = await startAiosmtpd({ starttls: leaf, auth: { users: { alice: PASSWORD } } });
  });

  afterAll(() => server.close());

  test("every stage is reported, the certificate is the one we made, AUTH appears only after TLS", async () => {
    const { code, host } = await probe(
      `${LOOPBACK}:${server.port}`,
      "--ca",
      ca,
      "--user",
      "alice",
      "--password-env",
      "PROBE_INTEROP_PASSWORD",
      "--from",
      "alice@a.test",
      "--rcpt",
      "bob@b.test",
      "--expect",
      "banner=220",
      "--expect",
      "auth=235",
      "--expect",
      "rcpt=2xx",
    );
    expect(code).toBe(0);
    expect(host.error).toBeNull();
    expect(host.banner?.reply.code).toBe(220);
    expect(host.banner?.reply.lines[0]).toContain("aiosmtpd.test");

    expect(host.ehlo?.command).toBe("EHLO");
    expect(host.ehlo?.capabilities.startTls).toBe(true);
    expect(host.ehlo?.capabilities.auth).toEqual([]);

    const tls = host.tls;
    expect(tls).toMatchObject({
      mode: "starttls",
      established: true,
      chainVerified: true,
      nameMatches: true,
    });
    expect(tls?.starttls?.code).toBe(220);
    expect(tls?.protocol).toMatch(/^TLSv1\.[23]$/);
    const cert = tls?.certificates[0];
    const expected = new X509Certificate(leaf.cert);
    expect(cert?.subject).toBe("CN=probe.aiosmtpd.test");
    expect(cert?.issuer).toBe("CN=smtpkit test CA, O=smtpkit tests");
    expect(cert?.subjectAltNames).toEqual([
      "DNS:probe.aiosmtpd.test",
      "DNS:mail.aiosmtpd.test",
      "IP:127.0.0.1",
    ]);
    expect(cert?.notBefore).toBe(notBefore.toISOString());
    expect(cert?.notAfter).toBe(notAfter.toISOString());
    expect(cert?.daysLeft).toBe(86);
    expect(cert?.fingerprintSha256).toBe(expected.fingerprint256);
    expect(cert?.serialNumber).toBe(expected.serialNumber.toUpperCase());
    expect(tls?.certificates[1]?.subject).toBe("CN=smtpkit test CA, O=smtpkit tests");

    const after = host.ehloAfterTls;
    expect(after?.capabilities.auth.sort()).toEqual(["CRAM-MD5", "LOGIN", "PLAIN"]);
    expect(after?.capabilities.startTls).toBe(false);
    expect(after?.changes.added.some((line) => line.startsWith("AUTH "))).toBe(true);
    expect(after?.changes.removed).toEqual(["STARTTLS"]);

    expect(host.auth).toMatchObject({ mechanism: "PLAIN", ok: true });
    expect(host.auth?.reply?.code).toBe(235);
    expect(host.envelope?.recipients[0]?.reply?.code).toBe(250);
    expect(host.envelope?.rset?.reply.code).toBe(250);
    expect(host.quit?.reply.code).toBe(221);
    expect(host.expectations.map((e) => e.ok)).toEqual([true, true, true]);
    expect(host.transcript.join("\n")).not.toContain(Buffer.from(`\0alice\0${PASSWORD}`).toString("base64"));
    // Nothing was delivered: the envelope test ends with RSET, never DATA.
    expect(await server.messages()).toEqual([]);
  });

  test("a wrong password: AUTH reported as refused, --expect auth=235 fails", async () => {
    const { code, host } = await probe(
      `${LOOPBACK}:${server.port}`,
      "--ca",
      ca,
      "--user",
      "mallory",
      "--password-env",
      "PROBE_INTEROP_PASSWORD",
      "--auth",
      "LOGIN",
      "--expect",
      "auth=235",
    );
    expect(host.auth).toMatchObject({ mechanism: "LOGIN", ok: false });
    expect(host.auth?.reply?.code).toBe(535);
    expect(code).toBe(1);
  });

  test("--quit-after tls still reads the EHLO after TLS", async () => {
    const { code, host } = await probe(`${LOOPBACK}:${server.port}`, "--ca", ca, "--quit-after", "tls");
    expect(code).toBe(0);
    expect(host.ehloAfterTls?.capabilities.auth.length).toBeGreaterThan(0);
    expect(host.auth).toBeNull();
    expect(host.quit?.reply.code).toBe(221);
  });
});

describe("bad certificates (aiosmtpd)", () => {
  test("an expired certificate is reported as expired; exit 77, or 0 with --insecure", async () => {
    await using server = await startAiosmtpd({ starttls: pki.expired });
    const strict = await probe(`${LOOPBACK}:${server.port}`, "--ca", ca);
    expect(strict.code).toBe(77);
    expect(strict.host.tls).toMatchObject({ established: true, chainVerified: false, verified: false });
    expect(strict.host.tls?.verifyError).toContain("CERT_HAS_EXPIRED");
    expect(strict.host.tls?.certificates[0]?.daysLeft).toBeLessThan(0);
    expect(strict.host.error).toMatchObject({ stage: "tls", kind: "tls-verify" });
    expect(strict.host.ehloAfterTls).toBeNull();

    const lax = await probe(`${LOOPBACK}:${server.port}`, "--ca", ca, "--insecure");
    expect(lax.code).toBe(0);
    expect(lax.host.tls?.verifyError).toContain("CERT_HAS_EXPIRED");
    expect(lax.host.ehloAfterTls?.reply.code).toBe(250);
  });

  test("a certificate for another name: the chain verifies, the name does not match", async () => {
    await using server = await startAiosmtpd({ starttls: pki.wrongName });
    const { code, host } = await probe(`localhost:${server.port}`, "--ca", ca);
    expect(code).toBe(77);
    expect(host.tls).toMatchObject({
      servername: "localhost",
      chainVerified: true,
      nameMatches: false,
      verified: false,
    });
    expect(host.tls?.verifyError).toContain("mx.other.test");

    const other = await probe(`localhost:${server.port}`, "--ca", ca, "--tls-servername", "mx.other.test");
    expect(other.code).toBe(0);
    expect(other.host.tls).toMatchObject({ nameMatches: true, verified: true });
  });
});

describe("smtp-sink", () => {
  test("-e: EHLO refused, HELO used; --expect ehlo=250 fails while helo=250 holds", async () => {
    await using sink = await startSmtpSink({ noEsmtp: true, dump: false });
    const { code, host } = await probe(
      `${LOOPBACK}:${sink.port}`,
      "--expect",
      "ehlo=250",
      "--expect",
      "helo=250",
    );
    expect(host.ehlo?.command).toBe("HELO");
    expect(host.ehlo?.ehloReply?.code).toBeGreaterThanOrEqual(500);
    expect(host.ehlo?.reply.code).toBe(250);
    expect(host.ehlo?.extensions).toEqual([]);
    expect(host.expectations.map((e) => e.ok)).toEqual([false, true]);
    expect(code).toBe(1);
  });

  test("-p -8: PIPELINING and 8BITMIME are not offered, the rest is", async () => {
    await using sink = await startSmtpSink({ noPipelining: true, no8BitMime: true, dump: false });
    const { code, host } = await probe(`${LOOPBACK}:${sink.port}`, "--expect", "ehlo=250");
    expect(code).toBe(0);
    expect(host.ehlo?.capabilities).toMatchObject({ pipelining: false, eightBitMime: false, dsn: true });
    expect(host.ehlo?.extensions).not.toContain("PIPELINING");
    expect(host.ehlo?.extensions).toContain("ENHANCEDSTATUSCODES");
  });

  test("-f RCPT: the 5xx with its enhanced code; rcpt=5 holds, rcpt=250 fails", async () => {
    await using sink = await startSmtpSink({ hardReject: ["RCPT"], dump: false });
    const target = `${LOOPBACK}:${sink.port}`;
    const five = await probe(target, "--from", "a@a.test", "--rcpt", "b@b.test", "--expect", "rcpt=5");
    const rcpt = five.host.envelope?.recipients[0];
    expect(rcpt?.reply?.code).toBe(500);
    expect(rcpt?.reply?.enhanced).toBe("5.3.0");
    expect(rcpt?.reply?.enhancedMeaning).toBe("Other or undefined mail system status");
    expect(rcpt?.accepted).toBe(false);
    expect(five.code).toBe(0);

    const exact = await probe(target, "--rcpt", "b@b.test", "--expect", "rcpt=250", "--expect", "mail=250");
    expect(exact.host.expectations.map((e) => e.ok)).toEqual([false, true]);
    expect(exact.code).toBe(1);
  });

  test("-r MAIL: 4xx at MAIL, RCPT not sent, the session goes on to RSET and QUIT", async () => {
    await using sink = await startSmtpSink({ softReject: ["MAIL"], dump: false });
    const { code, host } = await probe(
      `${LOOPBACK}:${sink.port}`,
      "--from",
      "a@a.test",
      "--rcpt",
      "b@b.test",
      "--expect",
      "mail=4xx",
    );
    expect(host.envelope?.mail.reply).toMatchObject({ code: 450, enhanced: "4.3.0" });
    expect(host.envelope?.mailAccepted).toBe(false);
    expect(host.envelope?.recipients[0]?.reply).toBeNull();
    expect(host.envelope?.rset?.reply.code).toBe(250);
    expect(host.quit?.reply.code).toBe(221);
    expect(code).toBe(0);
  });
});

describe("Postfix smtpd", () => {
  test("banner, extensions and certificate; --relay-check says closed, and open once mynetworks lets us relay", async () => {
    const leaf = await pki.ca.issue({ commonName: "postfix.test", altNames: ["postfix.test", "127.0.0.1"] });
    {
      await using postfix = await startPostfix({ tls: leaf });
      const { code, host } = await probe(`${LOOPBACK}:${postfix.port}`, "--ca", ca, "--relay-check");
      expect(code).toBe(0);
      expect(host.banner?.reply.code).toBe(220);
      expect(host.banner?.reply.lines[0]).toContain("postfix.test");
      expect(host.ehlo?.domain).toBe("postfix.test");
      expect(host.ehlo?.capabilities).toMatchObject({
        pipelining: true,
        startTls: true,
        eightBitMime: true,
        enhancedStatusCodes: true,
        dsn: true,
        chunking: true,
      });
      expect(host.ehlo?.capabilities.size).toBeGreaterThan(0);
      expect(host.tls).toMatchObject({ established: true, verified: true });
      expect(host.tls?.certificates[0]?.subject).toBe("CN=postfix.test");
      expect(host.tls?.certificates[0]?.subjectAltNames).toEqual(["DNS:postfix.test", "IP:127.0.0.1"]);
      expect(host.ehloAfterTls?.changes.removed).toEqual(["STARTTLS"]);
      expect(host.relayCheck?.localDomain).toBe("postfix.test");
      expect(host.relayCheck?.tests.length).toBeGreaterThanOrEqual(8);
      const accepted = host.relayCheck?.tests.filter((t) => t.accepted).map((t) => `${t.name} ${t.rcptTo}`);
      expect(accepted).toEqual([]);
      expect(host.relayCheck?.open).toBe(false);
      expect(host.quit?.reply.code).toBe(221);
    }
    {
      await using postfix = await startPostfix({ tls: leaf, mynetworks: ["127.0.0.0/8"] });
      const { code, host } = await probe(`${LOOPBACK}:${postfix.port}`, "--ca", ca, "--relay-check");
      expect(code).toBe(0);
      expect(host.relayCheck?.open).toBe(true);
      const byName = new Map(host.relayCheck?.tests.map((t) => [t.name, t]));
      expect(byName.get("foreign-to-foreign")?.accepted).toBe(true);
      expect(byName.get("foreign-to-foreign")?.rcpt?.code).toBe(250);
    }
  }, 120_000);
});

describe("--mx through the loopback DNS responder", () => {
  let dns: DnsResponder;
  beforeAll(async () => {
    dns = await startDnsResponder({
      "mx-probe.test": {
        mx: [
          { priority: 10, exchange: "mx1.mx-probe.test" },
          { priority: 20, exchange: "mx2.mx-probe.test" },
        ],
      },
      "mx1.mx-probe.test": { a: [LOOPBACK] },
      // Loopback too, but nothing listens on 127.0.0.3: refused at once.
      "mx2.mx-probe.test": { a: ["127.0.0.3"] },
    });
  });
  afterAll(() => dns.close());

  test("both MX hosts in preference order; the one that is down is reported and sets the exit code", async () => {
    await using sink = await startSmtpSink({ dump: false });
    const { code, report, stderr } = await probe(
      `mx-probe.test:${sink.port}`,
      "--mx",
      "--dns",
      dns.server,
      "--rcpt",
      "postmaster@mx-probe.test",
    );
    expect(report.mx).toBe(true);
    expect(report.hosts.map((h) => [h.host, h.preference])).toEqual([
      ["mx1.mx-probe.test", 10],
      ["mx2.mx-probe.test", 20],
    ]);
    const [up, down] = report.hosts;
    expect(up?.banner?.reply.lines[0]).toContain("smtp-sink");
    expect(up?.envelope?.recipients[0]?.accepted).toBe(true);
    expect(up?.exitCode).toBe(0);
    expect(down?.connect).toBeNull();
    expect(down?.error).toMatchObject({ stage: "connect", kind: "refused" });
    expect(down?.exitCode).toBe(75);
    expect(code).toBe(75);
    expect(stderr).toContain("127.0.0.3");
    expect(dns.queries.some((q) => q.name === "mx-probe.test" && q.type === "MX")).toBe(true);
  });
});
