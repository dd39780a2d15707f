// `smtpkit probe -i` driven through a pseudo-terminal (Bun.spawn's `terminal`), against aiosmtpd
// with STARTTLS and AUTH: a person's session typed key by key, and the message that arrives.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { createTestPki, type PemFiles, type TestPki, writePemFiles } from "../helpers/certs.ts";
import { type Aiosmtpd, startAiosmtpd } from "./peers/aiosmtpd.ts";
import { LOOPBACK } from "./peers/ports.ts";

const cliPath = new URL("../../src/cli.ts", import.meta.url).pathname;
const PASSWORD = "pty-s3cret";
/** How long to wait for the program's answer to a key before the test gives up (not a timing assertion). */
const WAIT_MS = 15_000;
const decoder = new TextDecoder();

let pki: TestPki;
let caFiles: PemFiles;
let server: Aiosmtpd;

beforeAll(async () => {
  pki = await createTestPki();
  caFiles = await writePemFiles({ "ca.pem": pki.ca.cert });
  server = await startAiosmtpd({ starttls: pki.server, auth: { users: { alice: PASSWORD } } });
});

afterAll(async () => {
  await server.close();
  await caFiles.remove();
});

/** The screen as one string, and a way to type into it and wait for what comes back. */
class PtySession {
  screen = "";
  readonly proc: Bun.Subprocess;

  constructor(args: string[]) {
    this.proc = Bun.spawn([process.execPath, cliPath, ...args], {
      env: { ...process.env, NO_COLOR: "1" },
      terminal: {
        cols: 160,
        rows: 50,
        data: (_terminal, data) => {
          this.screen += decoder.decode(data, { stream: true });
        },
      },
    });
  }

  /** Waits until `text` appears on the screen after offset `from`. */
  async waitFor(text: string, from = 0): Promise<void> {
    const deadline = performance.now() + WAIT_MS;
    while (!this.screen.slice(from).includes(text)) {
      if (performance.now() > deadline) {
        throw new Error(`waited for ${JSON.stringify(text)}; the screen shows:\n${this.screen.slice(from)}`);
      }
      await Bun.sleep(10);
    }
  }

  /** Types `keys` as one burst and waits for `answer` to appear. */
  async type(keys: string, answer: string): Promise<void> {
    const from = this.screen.length;
    this.proc.terminal?.write(keys);
    await this.waitFor(answer, from);
  }
}

test("EHLO, STARTTLS, EHLO, AUTH, MAIL, RCPT, DATA with a dot-led line, '.', QUIT: the message arrives intact", async () => {
  const pty = new PtySession([
    "probe",
    `${LOOPBACK}:${server.port}`,
    "-i",
    "--ca",
    caFiles.paths["ca.pem"] as string,
  ]);
  try {
    await pty.waitFor("smtp> ");
    expect(pty.screen).toContain("<- 220 aiosmtpd.test");
    expect(pty.screen).toContain("= 220: Service ready");

    await pty.type("EHLO pty.test\r", "smtp> ");
    expect(pty.screen).toContain("<- 250 HELP");

    // TAB completes the verb (typed apart from the TAB: readline treats a burst as a paste).
    await pty.type("STAR", "STAR");
    // readline writes only the completed rest of the word.
    await pty.type("\t", "TTLS");
    await pty.type("\r", "smtp~> ");
    expect(pty.screen).toContain("<- 220 Ready to start TLS");
    expect(pty.screen).toContain("=== TLS started with TLSv1.");
    expect(pty.screen).toContain("chain verified: yes");

    // The history: two lines up is the first EHLO.
    await pty.type("\x1b[A", "STARTTLS");
    await pty.type("\x1b[A", "EHLO pty.test");
    await pty.type("\r", "smtp~> ");
    expect(pty.screen).toContain("<~ 250-AUTH");

    await pty.type("AUTH PLAIN\r", "username: ");
    await pty.type("alice\r", "password: ");
    await pty.type(`${PASSWORD}\r`, "smtp~> ");
    expect(pty.screen).toContain("<~ 235 2.7.0 Authentication successful");
    expect(pty.screen).not.toContain(PASSWORD);

    await pty.type("MAIL FROM:<alice@a.test>\r", "smtp~> ");
    await pty.type("RCPT TO:<bob@b.test>\r", "smtp~> ");
    await pty.type("DATA\r", "= 354");
    for (const line of [
      "Subject: typed by hand",
      "",
      ".a line that starts with a dot",
      "..and one with two",
      "end",
    ]) {
      await pty.type(`${line}\r`, "\n");
    }
    await pty.type(".\r", "smtp~> ");
    expect(pty.screen).toContain("<~ 250 2.0.0 OK: message 1 stored");

    await pty.type("QUIT\r", "<~ 221");
    expect(await pty.proc.exited).toBe(0);
  } finally {
    pty.proc.kill();
    pty.proc.terminal?.close();
  }

  const [message] = await server.waitForMessages(1);
  expect(message?.tls).toBe(true);
  expect(message?.authLogin).toBe("alice");
  expect(message?.heloName).toBe("pty.test");
  expect(message?.mailFrom).toBe("alice@a.test");
  expect(message?.rcptTos).toEqual(["bob@b.test"]);
  expect(decoder.decode(message?.raw)).toBe(
    "Subject: typed by hand\r\n\r\n.a line that starts with a dot\r\n..and one with two\r\nend\r\n",
  );
}, 60_000);

test("a command the server did not advertise asks first; 'n' does not send it", async () => {
  const pty = new PtySession(["probe", `${LOOPBACK}:${server.port}`, "-i", "--starttls", "never"]);
  try {
    await pty.waitFor("smtp> ");
    await pty.type("EHLO pty.test\r", "smtp> ");
    await pty.type("MAIL FROM:<a@a.test> SMTPUTF8\r", "Send it anyway? [y/N]");
    expect(pty.screen).toContain("the server did not advertise SMTPUTF8");
    await pty.type("n\r", "smtp> ");
    await pty.type("AUTH LOGIN\r", "Send it anyway? [y/N]");
    expect(pty.screen).toContain("the server did not advertise AUTH");
    await pty.type("n\r", "smtp> ");
    // Ctrl-D: QUIT, then exit 0.
    await pty.type("\x04", "<- 221");
    expect(await pty.proc.exited).toBe(0);
  } finally {
    pty.proc.kill();
    pty.proc.terminal?.close();
  }
  expect(pty.screen).not.toContain("-> MAIL");
}, 60_000);
