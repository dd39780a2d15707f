import { describe, expect, test } from "bun:test";
import { CliError, ExitCode } from "../../src/commands/exit-codes.ts";
import { parseSendmailArgs } from "../../src/commands/sendmail-args.ts";
import { sendmailInvocation } from "../../src/commands/sendmail-invocation.ts";

function usageErrorOf(argv: string[]): string {
  try {
    parseSendmailArgs(argv);
  } catch (error) {
    if (error instanceof CliError && error.exitCode === ExitCode.usage) return error.message;
    throw error;
  }
  throw new Error(`expected a usage error for ${argv.join(" ")}`);
}

describe("parseSendmailArgs", () => {
  test("nothing given: deliver to no one yet, dots end the input", () => {
    expect(parseSendmailArgs([])).toEqual({
      extractRecipients: false,
      ignoreDots: false,
      recipients: [],
      verbose: false,
      help: false,
      dryRun: false,
    });
  });

  test("what PHP's mail() and cron pass: -t -i, -oi, -f with attached or separate value", () => {
    expect(parseSendmailArgs(["-t", "-i"])).toMatchObject({ extractRecipients: true, ignoreDots: true });
    expect(parseSendmailArgs(["-oi", "bob@b.test"])).toMatchObject({
      ignoreDots: true,
      recipients: ["bob@b.test"],
    });
    expect(parseSendmailArgs(["-fana@a.test"]).sender).toBe("ana@a.test");
    expect(parseSendmailArgs(["-f", "ana@a.test"]).sender).toBe("ana@a.test");
    expect(parseSendmailArgs(["-r", "ana@a.test"]).sender).toBe("ana@a.test");
    expect(parseSendmailArgs(["-f", ""]).sender).toBe("");
  });

  test("flags cluster like getopt: -ti, and -tf takes the rest or the next word", () => {
    expect(parseSendmailArgs(["-ti"])).toMatchObject({ extractRecipients: true, ignoreDots: true });
    expect(parseSendmailArgs(["-tif", "ana@a.test"])).toMatchObject({
      extractRecipients: true,
      ignoreDots: true,
      sender: "ana@a.test",
    });
    expect(parseSendmailArgs(["-tfana@a.test"]).sender).toBe("ana@a.test");
  });

  test("-F full name, DSN flags -N -R -V, -v", () => {
    expect(
      parseSendmailArgs(["-F", "Ana Nguyễn", "-N", "failure,delay", "-R", "hdrs", "-V", "env-1", "-v"]),
    ).toMatchObject({
      fullName: "Ana Nguyễn",
      notify: "failure,delay",
      ret: "hdrs",
      envid: "env-1",
      verbose: true,
    });
  });

  test("the usual no-op flags are accepted and ignored (values consumed, not taken as recipients)", () => {
    const args = parseSendmailArgs([
      "-odi",
      "-oem",
      "-om",
      "-bm",
      "-B",
      "8BITMIME",
      "-L",
      "label",
      "-G",
      "-U",
      "-h",
      "10",
      "-C",
      "/etc/mail/sendmail.cf",
      "-Am",
      "-O",
      "DeliveryMode=b",
      "-X",
      "/tmp/log",
      "-p",
      "smtp",
      "-m",
      "-n",
      "bob@b.test",
    ]);
    expect(args.recipients).toEqual(["bob@b.test"]);
    expect(args.ignoreDots).toBe(false);
  });

  test("recipients anywhere, and everything after -- is a recipient", () => {
    expect(parseSendmailArgs(["a@a.test", "-t", "b@b.test", "--", "-odd@c.test"]).recipients).toEqual([
      "a@a.test",
      "b@b.test",
      "-odd@c.test",
    ]);
  });

  test("long options: --account, --server, --config, --dns (with = or a separate value), --dry-run, --help", () => {
    expect(
      parseSendmailArgs([
        "--account",
        "work",
        "--server=127.0.0.1:2525",
        "--config",
        "/x.toml",
        "--dns=127.0.0.1:53",
        "--dry-run",
        "--help",
      ]),
    ).toMatchObject({
      account: "work",
      server: "127.0.0.1:2525",
      config: "/x.toml",
      dns: "127.0.0.1:53",
      dryRun: true,
      help: true,
    });
  });

  test("other modes are refused with a clear message (exit 64)", () => {
    expect(usageErrorOf(["-bs"])).toContain("SMTP on standard input");
    expect(usageErrorOf(["-bp"])).toContain("listing the queue");
    expect(usageErrorOf(["-bt"])).toContain("address test mode");
    expect(usageErrorOf(["-bi"])).toContain("alias database");
    expect(usageErrorOf(["-b", "v"])).toContain("verifying addresses");
    expect(usageErrorOf(["-I"])).toContain("alias database");
    expect(usageErrorOf(["-q15m"])).toContain("queue");
  });

  test("unknown options and missing values are usage errors naming them", () => {
    expect(usageErrorOf(["-Z"])).toContain("-Z");
    expect(usageErrorOf(["-tZ"])).toContain("-Z");
    expect(usageErrorOf(["--frobnicate"])).toContain("--frobnicate");
    expect(usageErrorOf(["-f"])).toContain("-f needs a value");
    expect(usageErrorOf(["--server"])).toContain("--server needs a value");
  });
});

describe("sendmailInvocation", () => {
  test("a link named sendmail: every argument is sendmail's", () => {
    expect(sendmailInvocation(["bun", "/$bunfs/root/smtpkit", "-t", "-i"], "/usr/sbin/sendmail")).toEqual([
      "-t",
      "-i",
    ]);
    expect(sendmailInvocation(["bun", "/$bunfs/root/smtpkit"], "sendmail")).toEqual([]);
  });

  test("smtpkit sendmail ...: the arguments after the command", () => {
    expect(sendmailInvocation(["bun", "src/cli.ts", "sendmail", "-oi", "b@b.test"], "bun")).toEqual([
      "-oi",
      "b@b.test",
    ]);
  });

  test("anything else is not sendmail", () => {
    expect(
      sendmailInvocation(["bun", "src/cli.ts", "send", "-t", "b@b.test"], "/usr/bin/smtpkit"),
    ).toBeUndefined();
    expect(sendmailInvocation(["bun", "src/cli.ts", "send", "sendmail"], "smtpkit")).toBeUndefined();
    expect(sendmailInvocation(["bun", "src/cli.ts"], "sendmail-wrapper")).toBeUndefined();
  });
});
