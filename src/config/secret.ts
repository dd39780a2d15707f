import { CliError, ExitCode } from "../commands/exit-codes.ts";
import type { SecretSource } from "./accounts.ts";

/**
 * Reads a secret from where the user said it lives. There is deliberately no way to pass the
 * secret itself as a flag: it would show in `ps` and in shell history.
 */
export async function readSecret(source: SecretSource, what: string): Promise<string | undefined> {
  if (source.env !== undefined) {
    const value = process.env[source.env];
    if (value === undefined) {
      throw new CliError(
        `${what}: environment variable ${source.env} is not set; export it or use another source`,
        ExitCode.usage,
      );
    }
    return value;
  }
  if (source.file !== undefined) {
    const file = Bun.file(source.file);
    if (!(await file.exists())) {
      throw new CliError(`${what}: file ${source.file} does not exist`, ExitCode.noInput);
    }
    return stripFinalNewline(await file.text());
  }
  if (source.command !== undefined) {
    const proc = Bun.spawn(["/bin/sh", "-c", source.command], {
      stdin: "inherit",
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    if (code !== 0) {
      const detail = err.trim().split("\n")[0] ?? "";
      throw new CliError(
        `${what}: command '${source.command}' exited ${code}${detail ? `: ${detail}` : ""}; fix the command or use another source`,
        ExitCode.noInput,
      );
    }
    // Like msmtp's passwordeval: the first line of the output is the secret.
    return out.split("\n")[0] ?? "";
  }
  return undefined;
}

function stripFinalNewline(text: string): string {
  return text.replace(/\r?\n$/, "");
}

/** Asks on the terminal, masked, when there is one; otherwise there is nobody to ask. */
export async function promptSecret(message: string): Promise<string | undefined> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return undefined;
  const { password, isCancel } = await import("@clack/prompts");
  const answer = await password({ message, output: process.stderr });
  if (isCancel(answer)) throw new CliError("cancelled at the password prompt", ExitCode.usage);
  return answer;
}
