// `smtpkit sendmail`: composing from standard input, and the command end to end (as a
// subcommand and through a link named sendmail) against nodemailer's smtp-server. Its STARTTLS is
// hidden: sendmail has no --insecure, and smtp-server's built-in certificate does not verify.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CliError, ExitCode } from "../../src/commands/exit-codes.ts";
import { composeSendmail } from "../../src/commands/sendmail.ts";
import { parseSendmailArgs } from "../../src/commands/sendmail-args.ts";
import { formatPath } from "../../src/core/address.ts";
import { headerValue, headerValues, splitMessage } from "../../src/mime/headers.ts";
import { closedPort } from "../client/scripted-server.ts";
import { runCli } from "./run-cli.ts";
import { startPeer } from "./smtp-server-peer.ts";

const bytes = (text: string) => new Uint8Array(Buffer.from(text, "utf8"));
const latin1 = (b: Uint8Array) => Buffer.from(b).toString("latin1");
const NOW = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
const MESSAGE =
  "From: Ana <ana@a.test>\nTo: bob@b.test\nCc: carol@c.test\nBcc: dan@d.test\nSubject: hi\n\nbody\n";

function compose(message: string, argv: string[], accountFrom?: string) {
  return composeSendmail(bytes(message), parseSendmailArgs(argv), accountFrom, NOW);
}

describe("composeSendmail", () => {
  test("-t: recipients from To, Cc and Bcc; Bcc removed; sender from From", () => {
    const c = compose(MESSAGE, ["-t"]);
    expect(formatPath(c.from)).toBe("<ana@a.test>");
    expect(c.recipients.map(formatPath)).toEqual(["<bob@b.test>", "<carol@c.test>", "<dan@d.test>"]);
    expect(latin1(c.message)).not.toContain("dan@d.test");
    expect(headerValues(splitMessage(c.message), "Bcc")).toEqual([]);
  });

  test("-t with arguments: both, each address once", () => {
    const c = compose(MESSAGE, ["-t", "eve@e.test", "BOB@b.test"]);
    expect(c.recipients.map(formatPath)).toEqual([
      "<eve@e.test>",
      "<BOB@b.test>",
      "<carol@c.test>",
      "<dan@d.test>",
    ]);
  });

  test("without -t: only the arguments, and still no Bcc header", () => {
    const c = compose(MESSAGE, ["eve@e.test, Frank <frank@f.test>"]);
    expect(c.recipients.map(formatPath)).toEqual(["<eve@e.test>", "<frank@f.test>"]);
    expect(headerValues(splitMessage(c.message), "Bcc")).toEqual([]);
  });

  test("no recipients at all: usage error", () => {
    expect(() => compose(MESSAGE, [])).toThrow(CliError);
    try {
      compose(MESSAGE, []);
    } catch (error) {
      expect((error as CliError).exitCode).toBe(ExitCode.usage);
    }
  });

  test("the sender: -f, else the account's from=, else the message's From", () => {
    expect(formatPath(compose(MESSAGE, ["-t", "-f", "bounce@x.test"]).from)).toBe("<bounce@x.test>");
    expect(formatPath(compose(MESSAGE, ["-t"], "Work <work@w.test>").from)).toBe("<work@w.test>");
    expect(formatPath(compose(MESSAGE, ["-t", "-f", ""]).from)).toBe("<>");
    expect(formatPath(compose(MESSAGE, ["-t", "-f", "<>"]).from)).toBe("<>");
  });

  test("a message without From: one is written from -f and -F; Date and Message-ID added", () => {
    const c = compose("Subject: cron\n\nreport\n", ["-f", "cron@h.test", "-F", "Cron Dæmon", "bob@b.test"]);
    const parsed = splitMessage(c.message);
    expect(headerValue(parsed, "From")).toBe("Cron =?UTF-8?B?RMOmbW9u?= <cron@h.test>");
    expect(headerValue(parsed, "Date")).toBe("Fri, 02 Jan 2026 03:04:05 +0000");
    expect(c.messageId).toMatch(/^<[0-9a-f]{32}@h\.test>$/);
    expect(formatPath(c.from)).toBe("<cron@h.test>");
  });

  test("the account's from= (with its name) makes the From header when the message has none", () => {
    const c = compose("Subject: s\n\nx\n", ["bob@b.test"], "Work Robot <robot@w.test>");
    expect(headerValue(splitMessage(c.message), "From")).toBe("Work Robot <robot@w.test>");
  });

  test("no sender anywhere: USER@host, as Postfix does", () => {
    const saved = process.env.USER;
    process.env.USER = "cronuser";
    try {
      const c = compose("Subject: s\n\nx\n", ["bob@b.test"]);
      expect(formatPath(c.from)).toMatch(/^<cronuser@[^>]+>$/);
      expect(headerValue(splitMessage(c.message), "From")).toMatch(/^cronuser@/);
    } finally {
      if (saved === undefined) delete process.env.USER;
      else process.env.USER = saved;
    }
  });

  test("without -i a lone dot ends the message; with -i or -oi it is content", () => {
    const input = "From: a@a.test\nTo: b@b.test\n\nline\n.\nmore\n";
    expect(latin1(compose(input, ["-t"]).message)).not.toContain("more");
    expect(latin1(compose(input, ["-t", "-i"]).message)).toContain("\n.\nmore\n");
    expect(latin1(compose(input, ["-t", "-oi"]).message)).toContain("\n.\nmore\n");
  });

  test("a bad address in the arguments is bad data (65)", () => {
    try {
      compose(MESSAGE, ["bob@@b"]);
      throw new Error("expected a CliError");
    } catch (error) {
      expect((error as CliError).exitCode).toBe(ExitCode.dataError);
    }
  });
});

describe("smtpkit sendmail, end to end", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "smtpkit-sendmail-test-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("-t with Bcc: every recipient gets it, no Bcc header arrives; DSN flags reach MAIL/RCPT", async () => {
    const peer = await startPeer({ hideSTARTTLS: true });
    try {
      const result = await runCli(
        [
          "sendmail",
          "-t",
          "-i",
          "-oem",
          "-N",
          "failure,delay",
          "-R",
          "hdrs",
          "-V",
          "env42",
          "--server",
          `127.0.0.1:${peer.port}`,
        ],
        { stdin: MESSAGE },
      );
      expect(result).toMatchObject({ code: 0, stdout: "", stderr: "" });
      const [message] = peer.messages;
      expect(message?.mailFrom).toBe("ana@a.test");
      expect(message?.rcptTo).toEqual(["bob@b.test", "carol@c.test", "dan@d.test"]);
      expect(message?.mailParams).toMatchObject({ RET: "HDRS", ENVID: "env42" });
      expect(message?.rcptParams.map((p) => p.NOTIFY)).toEqual([
        "FAILURE,DELAY",
        "FAILURE,DELAY",
        "FAILURE,DELAY",
      ]);
      const text = latin1(message?.raw as Uint8Array);
      expect(text).not.toMatch(/^Bcc:/im);
      expect(text).not.toContain("dan@d.test");
      expect(text).toMatch(/^Message-ID: <[^>]+@a\.test>\r$/m);
    } finally {
      await peer.close();
    }
  });

  test("through a link named sendmail, with the default account's server from the config file", async () => {
    const peer = await startPeer({ hideSTARTTLS: true });
    try {
      const configHome = join(dir, "xdg");
      await Bun.write(
        join(configHome, "smtpkit", "config.toml"),
        `[accounts.local]\nserver = "127.0.0.1"\nport = ${peer.port}\ntls = "none"\nfrom = "Robot <robot@r.test>"\ndefault = true\n`,
      );
      const result = await runCli(["-oi", "bob@b.test"], {
        stdin: "Subject: from cron\n\nreport\n",
        argv0: "/usr/sbin/sendmail",
        env: { XDG_CONFIG_HOME: configHome },
      });
      expect(result).toMatchObject({ code: 0, stderr: "" });
      const [message] = peer.messages;
      expect(message?.mailFrom).toBe("robot@r.test");
      expect(message?.rcptTo).toEqual(["bob@b.test"]);
      expect(latin1(message?.raw as Uint8Array)).toMatch(/^From: Robot <robot@r\.test>\r$/m);
    } finally {
      await peer.close();
    }
  });

  test("--account picks a named account from --config", async () => {
    const peer = await startPeer({ hideSTARTTLS: true });
    try {
      const config = join(dir, "accounts.toml");
      await writeFile(config, `[accounts.other]\nserver = "127.0.0.1:${peer.port}"\ntls = "none"\n`);
      const result = await runCli(["sendmail", "--config", config, "--account", "other", "-t"], {
        stdin: MESSAGE,
      });
      expect(result.code).toBe(0);
      expect(peer.messages).toHaveLength(1);
    } finally {
      await peer.close();
    }
  });

  test("a refused recipient exits 67; a refused connection 75", async () => {
    const peer = await startPeer({
      hideSTARTTLS: true,
      refuseRecipients: { "bob@b.test": [550, "No such user"] },
    });
    try {
      const refused = await runCli(["sendmail", "--server", `127.0.0.1:${peer.port}`, "bob@b.test"], {
        stdin: MESSAGE,
      });
      expect(refused.code).toBe(67);
      expect(refused.stderr).toMatch(/550 5\.\d\.\d+ No such user/);
    } finally {
      await peer.close();
    }
    const port = await closedPort();
    const down = await runCli(["sendmail", "--server", `127.0.0.1:${port}`, "-t"], { stdin: MESSAGE });
    expect(down.code).toBe(75);
  });

  test("a broken config file: 78 naming the file and line", async () => {
    const config = join(dir, "broken.toml");
    await writeFile(config, `[accounts.x]\nserver = "a"\npassword = "plain"\n`);
    const result = await runCli(["sendmail", "--config", config, "bob@b.test"], { stdin: MESSAGE });
    expect(result.code).toBe(78);
    expect(result.stderr).toContain(`${config}:3`);
  });

  test("-bs, -bp and unknown flags: exit 64 with one line", async () => {
    for (const flag of ["-bs", "-bp", "-bt", "-Z"]) {
      const result = await runCli(["sendmail", flag], { stdin: "" });
      expect(result.code).toBe(64);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
    }
  });

  test("--help prints the sendmail usage; smtpkit --help lists sendmail", async () => {
    const help = await runCli(["sendmail", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Usage: smtpkit sendmail");
    const top = await runCli(["--help"]);
    expect(top.stdout).toMatch(/^\s+sendmail /m);
  });

  test("--dry-run prints the envelope and the completed message", async () => {
    const result = await runCli(["sendmail", "-t", "--dry-run"], { stdin: MESSAGE });
    expect(result.code).toBe(0);
    expect(result.stdout).toStartWith(
      "MAIL FROM:<ana@a.test>\nRCPT TO:<bob@b.test>\nRCPT TO:<carol@c.test>\nRCPT TO:<dan@d.test>\n",
    );
    expect(result.stdout).toContain("\nDate: ");
    expect(result.stdout).not.toContain("Bcc:");
  });
});
