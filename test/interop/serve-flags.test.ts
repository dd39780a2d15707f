// `smtpkit serve` flags as a user meets them: start-up errors (one line, sysexits code), where the
// mailbox and the self-signed certificate live, what is printed per message, and the limits and
// policies each flag turns on, checked over SMTP against the running process.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { createTestPki, type TestPki } from "../helpers/certs.ts";
import { RawSmtpClient } from "../server/raw-smtp-client.ts";
import { freePort, LOOPBACK } from "./peers/ports.ts";
import { makeTempDir, removeTempDir } from "./peers/temp-dir.ts";
import { runServeCommand, SERVE_HOSTNAME, type ServeProcess, startServe } from "./serve-process.ts";

const GREETING = `220 ${SERVE_HOSTNAME} ESMTP smtpkit`;

let dir: string;
let pki: TestPki;
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await makeTempDir("serve-flags");
  pki = await createTestPki();
  await writeFile(file("server.pem"), pki.server.cert);
  await writeFile(file("server-key.pem"), pki.server.key);
  await writeFile(file("other-key.pem"), pki.wrongName.key);
  await writeFile(file("not-pem.txt"), "this is not a certificate\n");
  await writeFile(file("users-bad"), "alice:s3cret\nno colon here\n");
  await writeFile(file("users"), "alice:s3cret\n");
  await writeFile(file("htpasswd"), "ann:{SHA}zS0S9kqB4FMhpTawEdnivgS+plA=\n");
  await writeFile(file("htpasswd-plain"), "ann:secret\n");
  await writeFile(file("a-file"), "x");
  await mkdir(file("not-a-db"));
  await writeFile(join(file("not-a-db"), "mailbox.sqlite"), "garbage, not SQLite\n");
});

afterAll(async () => {
  if (dir) await removeTempDir(dir);
});

/** Greeting and EHLO; returns the client and the EHLO reply. */
async function hello(
  serve: ServeProcess,
  port = serve.port,
): Promise<{ client: RawSmtpClient; ehlo: string }> {
  const client = await RawSmtpClient.connect(port);
  expect(await client.reply()).toBe(GREETING);
  return { client, ehlo: await client.command("EHLO client.test\r\n") };
}

/** A whole transaction in lock step; returns the final reply. */
async function deliver(client: RawSmtpClient, subject: string): Promise<string> {
  expect(await client.command("MAIL FROM:<a@a.test>\r\n")).toBe("250 2.1.0 Sender ok");
  expect(await client.command("RCPT TO:<b@b.test>\r\n")).toBe("250 2.1.5 Recipient ok");
  expect(await client.command("DATA\r\n")).toStartWith("354 ");
  return client.command(`Subject: ${subject}\r\n\r\nbody\r\n.\r\n`);
}

describe("start-up errors: one line naming the problem, and the exit code", () => {
  const base = async () => ["--memory", "--http", "off", "--listen", `${LOOPBACK}:${await freePort()}`];

  test.each([
    ["an unknown flag", ["--bogus"], 64, /^smtpkit: Unknown option `--bogus`/],
    ["a port out of range", ["--listen", "127.0.0.1:99999"], 64, /--listen: port must be 1-65535/],
    [
      "an --http address without a port number",
      ["--http", "localhost:http"],
      64,
      /--http wants HOST\[:PORT\]/,
    ],
    ["--tls-cert without --tls-key", ["--tls-cert", "x.pem"], 64, /give --tls-cert and --tls-key together/],
    [
      "a missing certificate file",
      ["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.pem"],
      66,
      /\/nonexistent\.pem does not exist/,
    ],
    [
      "a certificate that is not PEM",
      ["--tls-cert", "NOT_PEM", "--tls-key", "NOT_PEM"],
      78,
      /--tls-cert .*NO_START_LINE/,
    ],
    [
      "a key that does not match the certificate",
      ["--tls-cert", "CERT", "--tls-key", "OTHER_KEY"],
      78,
      /--tls-cert .*mismatch/i,
    ],
    [
      "a missing users file",
      ["--auth-users", "/nonexistent-users"],
      66,
      /--auth-users: \/nonexistent-users does not exist/,
    ],
    ["a malformed users file", ["--auth-users", "USERS_BAD"], 78, /users-bad:2: expected user:password/],
    [
      "a fault with a reply code that is not 4xx/5xx",
      ["--fail", "rcpt:200"],
      64,
      /must be a 4xx or 5xx reply code/,
    ],
    ["a fault at an unknown stage", ["--fail", "nowhere:451"], 64, /unknown stage "nowhere"/],
    [
      "a delay that is not a number",
      ["--delay", "data:soon"],
      64,
      /the delay for data must be whole milliseconds/,
    ],
    ["a size with an unknown unit", ["--max-size", "12q"], 64, /--max-size wants a size like 25M/],
    [
      "an age with an unknown unit",
      ["--max-age", "3x"],
      64,
      /--max-age wants a duration such as 300s, 5m, 4h or 5d/,
    ],
    ["zero recipients", ["--max-recipients", "0"], 64, /--max-recipients wants a number >= 1/],
    [
      "a webhook URL that is not http(s)",
      ["--webhook-url", "ftp://hooks.example.com/"],
      64,
      /--webhook-url wants an http:\/\/ or https:\/\/ URL, not 'ftp:\/\/hooks.example.com\/'/,
    ],
    [
      "API passwords in clear text off loopback",
      ["--http", "0.0.0.0:8025", "--http-auth-file", "HTPASSWD"],
      64,
      /--http-auth-file on 0\.0\.0\.0 would take passwords in clear text: add --http-tls, or --allow-insecure-auth/,
    ],
    ["--http-tls without the API", ["--http", "off", "--http-tls"], 64, /--http-tls needs the HTTP API/],
    [
      "an API users file with a plain password",
      ["--http-auth-file", "HTPASSWD_PLAIN"],
      78,
      /htpasswd-plain:1: the password must be hashed with bcrypt/,
    ],
    [
      "a webhook limit that is not a number",
      ["--webhook-limit", "lots"],
      64,
      /--webhook-limit wants a number >= 0, not .lots./,
    ],
    [
      "a webhook limit that is not whole",
      ["--webhook-limit", "2.5"],
      64,
      /--webhook-limit wants a whole number of requests per second, not '2.5'/,
    ],
    [
      "a connection limit that is not a number",
      ["--max-connections", "many"],
      64,
      /--max-connections wants a number/,
    ],
  ])("%s", async (_name, flags, code, message) => {
    const substitute: Record<string, string> = {
      NOT_PEM: file("not-pem.txt"),
      CERT: file("server.pem"),
      OTHER_KEY: file("other-key.pem"),
      USERS_BAD: file("users-bad"),
      HTPASSWD: file("htpasswd"),
      HTPASSWD_PLAIN: file("htpasswd-plain"),
    };
    const run = await runServeCommand([...(await base()), ...flags.map((flag) => substitute[flag] ?? flag)]);
    expect(run.stderr).toMatch(message);
    expect(run.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(run.stdout).toBe("");
    expect(run.exitCode).toBe(code);
  });

  test.each([
    ["a data directory that is a file", () => file("a-file"), /cannot use .*a-file as the data directory/],
    [
      "a mailbox that is not a database",
      () => file("not-a-db"),
      /cannot open the mailbox .*mailbox\.sqlite: file is not a database/,
    ],
  ])("%s is exit code 66", async (_name, dataDir, message) => {
    const run = await runServeCommand([
      "--data-dir",
      dataDir(),
      "--http",
      "off",
      "--listen",
      `${LOOPBACK}:${await freePort()}`,
    ]);
    expect(run.stderr).toMatch(message);
    expect(run.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(run.exitCode).toBe(66);
  });

  describe("a port someone else holds", () => {
    let holder: Server;
    let held: number;
    beforeAll(async () => {
      holder = createServer();
      await new Promise<void>((resolve) => holder.listen({ host: LOOPBACK, port: 0 }, resolve));
      const address = holder.address();
      held = typeof address === "object" && address !== null ? address.port : 0;
    });
    afterAll(() => {
      holder?.close();
    });

    test("for SMTP: exit code 69 (EX_UNAVAILABLE)", async () => {
      const run = await runServeCommand(["--memory", "--http", "off", "--listen", `${LOOPBACK}:${held}`]);
      expect(run.stderr.trim()).toBe(
        `smtpkit: cannot listen: cannot listen on ${LOOPBACK}:${held}: address already in use`,
      );
      expect(run.exitCode).toBe(69);
    });

    test("for the API: exit code 69, and the SMTP port is let go", async () => {
      const smtp = await freePort();
      const run = await runServeCommand([
        "--memory",
        "--listen",
        `${LOOPBACK}:${smtp}`,
        "--http",
        `${LOOPBACK}:${held}`,
      ]);
      expect(run.stderr).toStartWith(`smtpkit: cannot start the HTTP API on ${LOOPBACK}:${held}: `);
      expect(run.exitCode).toBe(69);
      await using again = await startServe({ memory: true, http: false, port: smtp });
      expect(again.port).toBe(smtp);
    });
  });
});

describe("where things are kept", () => {
  test("by default under $XDG_DATA_HOME/smtpkit: the mailbox, and a self-signed certificate reused on restart", async () => {
    const xdg = join(dir, "xdg");
    const env = { XDG_DATA_HOME: xdg };
    const home = join(xdg, "smtpkit");
    const first = await startServe({ defaultDataDir: true, env });
    const { client } = await hello(first);
    expect(await deliver(client, "kept")).toMatch(/^250 /);
    await client.command("QUIT\r\n");
    await first.stop();

    expect((await readdir(home)).sort()).toEqual([
      "mailbox.sqlite",
      `tls-${SERVE_HOSTNAME}.crt`,
      `tls-${SERVE_HOSTNAME}.key`,
    ]);
    expect((await stat(home)).mode & 0o777).toBe(0o700);
    expect((await stat(join(home, `tls-${SERVE_HOSTNAME}.key`))).mode & 0o777).toBe(0o600);
    const kept = new X509Certificate(await Bun.file(join(home, `tls-${SERVE_HOSTNAME}.crt`)).text());
    expect(kept.subject).toContain(`CN=${SERVE_HOSTNAME}`);

    await using second = await startServe({ defaultDataDir: true, env });
    expect((await second.search("subject:kept")).length).toBe(1);
    const again = await hello(second);
    expect(await again.client.command("STARTTLS\r\n")).toBe("220 2.0.0 Ready to start TLS");
    const tls = await again.client.startTls();
    expect(tls.getPeerCertificate().fingerprint256).toBe(kept.fingerprint256);
    again.client.destroy();
  });

  test("--memory writes nothing anywhere", async () => {
    const xdg = join(dir, "xdg-memory");
    await mkdir(xdg);
    await using serve = await startServe({ memory: true, env: { XDG_DATA_HOME: xdg } });
    const { client } = await hello(serve);
    expect(await deliver(client, "volatile")).toMatch(/^250 /);
    const info = (await (await serve.api("/api/v1/info")).json()) as { Database: string; Messages: number };
    expect(info).toMatchObject({ Database: ":memory:", Messages: 1 });
    expect(await readdir(xdg)).toEqual([]);
  });

  test("--tls-cert/--tls-key: that certificate is presented, and no self-signed one is made", async () => {
    await using serve = await startServe({
      args: ["--tls-cert", file("server.pem"), "--tls-key", file("server-key.pem")],
    });
    const { client } = await hello(serve);
    expect(await client.command("STARTTLS\r\n")).toBe("220 2.0.0 Ready to start TLS");
    const tls = await client.startTls();
    expect(tls.getPeerCertificate().fingerprint256).toBe(new X509Certificate(pki.server.cert).fingerprint256);
    client.destroy();
    expect(await readdir(serve.dataDir ?? "")).not.toContain(`tls-${SERVE_HOSTNAME}.crt`);
  });
});

describe("what is printed", () => {
  test("by default: where it serves, then one line per message with time, from, to, subject, size and id", async () => {
    const serve = await startServe({ memory: true });
    const { client } = await hello(serve);
    const reply = await deliver(client, "=?UTF-8?Q?caf=C3=A9?=");
    const id = reply.split(" ").at(-1) ?? "";
    await client.command("QUIT\r\n");
    await serve.close();
    expect(serve.output()).toContain(`serving smtp://${LOOPBACK}:${serve.port}, API ${serve.apiUrl}`);
    expect(serve.output()).toMatch(
      new RegExp(
        `^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d  a@a\\.test -> b@b\\.test  "café"  \\d+ B  ${id}$`,
        "m",
      ),
    );
  });

  test("--log-json: one JSON object per message", async () => {
    const serve = await startServe({ memory: true, args: ["--log-json"] });
    const { client } = await hello(serve);
    const id = (await deliver(client, "json")).split(" ").at(-1);
    await client.command("QUIT\r\n");
    await serve.close();
    const line = serve
      .output()
      .split("\n")
      .find((text) => text.startsWith("{"));
    expect(JSON.parse(line ?? "{}")).toMatchObject({
      id,
      from: "a@a.test",
      to: ["b@b.test"],
      subject: "json",
      client: LOOPBACK,
    });
  });

  test("--quiet: nothing at all", async () => {
    const serve = await startServe({ memory: true, args: ["--quiet"] });
    const { client } = await hello(serve);
    expect(await deliver(client, "quiet")).toMatch(/^250 /);
    await client.command("QUIT\r\n");
    await serve.close();
    expect(serve.output()).toBe("");
  });
});

describe("limits and policies", () => {
  test("--max-messages: the oldest are pruned beyond it", async () => {
    await using serve = await startServe({ memory: true, args: ["--max-messages", "3"] });
    const { client } = await hello(serve);
    for (let i = 1; i <= 5; i++) expect(await deliver(client, `number ${i}`)).toMatch(/^250 /);
    const subjects = (await serve.messages()).map((m) => m.Subject);
    expect(subjects).toEqual(["number 5", "number 4", "number 3"]);
  });

  test("--max-size: announced with SIZE and enforced at MAIL", async () => {
    await using serve = await startServe({ memory: true, http: false, args: ["--max-size", "1k"] });
    const { client, ehlo } = await hello(serve);
    expect(ehlo).toContain("\n250-SIZE 1024\n");
    expect(await client.command("MAIL FROM:<a@a.test> SIZE=1025\r\n")).toBe(
      "552 5.3.4 Error: message exceeds the fixed maximum message size",
    );
  });

  test("--no-starttls: STARTTLS is neither offered nor accepted", async () => {
    await using serve = await startServe({ memory: true, http: false, args: ["--no-starttls"] });
    const { client, ehlo } = await hello(serve);
    expect(ehlo).not.toContain("STARTTLS");
    expect(await client.command("STARTTLS\r\n")).toBe("502 5.5.1 Error: STARTTLS not available");
  });

  test("--require-tls: no AUTH offered and no MAIL taken before STARTTLS; after it, both", async () => {
    await using serve = await startServe({ memory: true, http: false, args: ["--require-tls"] });
    const { client, ehlo } = await hello(serve);
    expect(ehlo).not.toContain("AUTH");
    expect(await client.command("MAIL FROM:<a@a.test>\r\n")).toBe(
      "530 5.7.0 Must issue a STARTTLS command first",
    );
    expect(await client.command("STARTTLS\r\n")).toBe("220 2.0.0 Ready to start TLS");
    await client.startTls();
    expect(await client.command("EHLO client.test\r\n")).toContain("250-AUTH PLAIN LOGIN CRAM-MD5");
    expect(await deliver(client, "over tls")).toMatch(/^250 /);
  });

  test("--require-auth with --auth-users: MAIL is refused until AUTH succeeds", async () => {
    await using serve = await startServe({
      memory: true,
      http: false,
      args: ["--require-auth", "--auth-users", file("users")],
    });
    const { client } = await hello(serve);
    expect(await client.command("MAIL FROM:<a@a.test>\r\n")).toBe("530 5.7.0 Authentication required");
    const wrong = Buffer.from("\0alice\0wrong").toString("base64");
    expect(await client.command(`AUTH PLAIN ${wrong}\r\n`)).toBe(
      "535 5.7.8 Authentication credentials invalid",
    );
    const right = Buffer.from("\0alice\0s3cret").toString("base64");
    expect(await client.command(`AUTH PLAIN ${right}\r\n`)).toBe("235 2.7.0 Authentication successful");
    expect(await deliver(client, "authenticated")).toMatch(/^250 /);
  });

  test("--max-connections-per-ip: one over the limit from the same address gets 421", async () => {
    await using serve = await startServe({
      memory: true,
      http: false,
      args: ["--max-connections-per-ip", "1"],
    });
    const { client } = await hello(serve);
    const second = await RawSmtpClient.connect(serve.port);
    expect(await second.reply()).toBe(
      `421 4.7.0 ${SERVE_HOSTNAME} Error: too many connections, try again later`,
    );
    await second.closed;
    client.destroy();
  });

  test("--fail and --delay: faults from the command line, visible and changeable through the API", async () => {
    await using serve = await startServe({
      memory: true,
      args: ["--fail", "rcpt:451", "--delay", "mail:10"],
    });
    const chaos = await (await serve.api("/api/v1/chaos")).json();
    expect(chaos).toMatchObject({
      fail: [{ stage: "rcpt", code: 451, probability: 100 }],
      delay: [{ stage: "mail", ms: 10 }],
    });
    const { client } = await hello(serve);
    expect(await client.command("MAIL FROM:<a@a.test>\r\n")).toBe("250 2.1.0 Sender ok");
    expect(await client.command("RCPT TO:<b@b.test>\r\n")).toBe("451 4.3.0 Injected failure (smtpkit chaos)");
    await serve.setChaos({});
    expect(await client.command("RCPT TO:<b@b.test>\r\n")).toBe("250 2.1.5 Recipient ok");
    // A transaction left open would hold the shutdown for its grace period.
    expect(await client.command("RSET\r\n")).toBe("250 2.0.0 Ok");
  });

  test("--fail connect: the greeting itself is the failure, then the connection closes", async () => {
    await using serve = await startServe({ memory: true, args: ["--fail", "connect:554"] });
    const client = await RawSmtpClient.connect(serve.port);
    expect(await client.reply()).toBe("554 5.3.0 Injected failure (smtpkit chaos)");
    expect(await client.rest()).toBe("");
  });

  test("--listen twice: both addresses serve", async () => {
    const other = await freePort();
    await using serve = await startServe({
      memory: true,
      http: false,
      args: ["--listen", `${LOOPBACK}:${other}`],
    });
    for (const port of [serve.port, other]) {
      const { client } = await hello(serve, port);
      expect(await client.command("QUIT\r\n")).toBe("221 2.0.0 Bye");
    }
  });
});
