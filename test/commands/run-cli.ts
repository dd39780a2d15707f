import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cliPath = join(import.meta.dir, "..", "..", "src", "cli.ts");
/** No config file unless a test writes one: the user's own accounts must never take part. */
const emptyConfigHome = mkdtempSync(join(tmpdir(), "smtpkit-cli-config-"));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliRun {
  stdin?: string | Uint8Array;
  env?: Record<string, string>;
  /** The name the child sees as its own (process.argv0), e.g. "/usr/sbin/sendmail" for a link. */
  argv0?: string;
}

/**
 * `bun src/cli.ts ARGS` as a child process, asynchronously, so that servers running in the test
 * process keep answering while it talks to them.
 */
export async function runCli(args: string[], run: CliRun = {}): Promise<CliResult> {
  const stdin = run.stdin === undefined ? "ignore" : new Blob([run.stdin]);
  const child = Bun.spawn([process.execPath, cliPath, ...args], {
    stdin,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, XDG_CONFIG_HOME: emptyConfigHome, ...run.env },
    ...(run.argv0 === undefined ? {} : { argv0: run.argv0 }),
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { code, stdout, stderr };
}
