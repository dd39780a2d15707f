// `smtpkit probe` as a user runs it: stdout discipline, exit codes, --help.

import { afterEach, describe, expect, test } from "bun:test";
import { type ScriptedServer, startScriptedServer } from "./probe-server.ts";

const cliPath = new URL("../../src/cli.ts", import.meta.url).pathname;
let server: ScriptedServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function run(...args: string[]) {
  const proc = Bun.spawn([process.execPath, cliPath, ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "" },
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

describe("smtpkit probe", () => {
  test("--json: one JSON document on stdout and nothing else; -v sends the transcript to stderr", async () => {
    server = await startScriptedServer();
    const { code, stdout, stderr } = await run(
      "probe",
      `127.0.0.1:${server.port}`,
      "--json",
      "-v",
      "--starttls",
      "never",
      "--rcpt",
      "bob@b.test",
    );
    expect(code).toBe(0);
    const doc = JSON.parse(stdout);
    expect(Object.keys(doc)).toEqual(["target", "mx", "hosts", "error", "exitCode"]);
    expect(doc.hosts[0].envelope.recipients[0].reply.code).toBe(250);
    expect(doc.hosts[0].transcript).toContain(" -> RCPT TO:<bob@b.test>");
    expect(stderr).toContain(" -> RCPT TO:<bob@b.test>");
    expect(stderr).toContain("<- 250 2.1.5 Ok");
  });

  test("a failed --expect: exit 1, and the report says which", async () => {
    server = await startScriptedServer({ replies: { RCPT: "550 5.1.1 No such user" } });
    const { code, stdout } = await run(
      "probe",
      `127.0.0.1:${server.port}`,
      "--rcpt",
      "nobody@b.test",
      "--expect",
      "rcpt=250",
      "--expect",
      "banner=220",
    );
    expect(code).toBe(1);
    expect(stdout).toContain("rcpt      <nobody@b.test>  550 5.1.1 No such user");
    expect(stdout).toContain(
      "= 550: Requested action not taken: mailbox unavailable; 5.1.1: Bad destination mailbox address",
    );
    expect(stdout).toContain("expect    rcpt=250 FAILED: rcpt replied 550, expected 250");
    expect(stdout).toContain("          banner=220 held");
    expect(stdout).not.toContain("\x1b[");
  });

  test("connection refused in --json mode: exit 75, the error also as one line on stderr", async () => {
    server = await startScriptedServer();
    const port = server.port;
    await server.close();
    server = undefined;
    const { code, stdout, stderr } = await run("probe", `127.0.0.1:${port}`, "--json");
    expect(code).toBe(75);
    expect(JSON.parse(stdout).hosts[0].error.kind).toBe("refused");
    expect(stderr.trim().split("\n")).toEqual([
      `smtpkit: probe: connect: connection to 127.0.0.1:${port} refused`,
    ]);
  });

  test("a bad flag value is one line, exit 64", async () => {
    const { code, stderr } = await run("probe", "mx.test", "--expect", "rcpt=9xx");
    expect(code).toBe(64);
    expect(stderr.trim().split("\n")).toHaveLength(1);
  });

  test("--help lists every flag", async () => {
    const { code, stdout } = await run("probe", "--help");
    expect(code).toBe(0);
    for (const flag of [
      "--mx",
      "--dns",
      "-4",
      "-6",
      "--timeout",
      "--helo",
      "--tls ",
      "--starttls",
      "--insecure",
      "--ca",
      "--tls-servername",
      "--user",
      "--auth",
      "--password-env",
      "--password-file",
      "--password-cmd",
      "--allow-plaintext-auth",
      "--from",
      "--rcpt",
      "--relay-check",
      "--quit-after",
      "--expect",
      "-i, --interactive",
      "-v, --verbose",
      "--json",
    ]) {
      expect(stdout).toContain(flag);
    }
    expect(stdout).toContain("Exit codes");
  });
});
