/** `--auth-users FILE`: one `user:password` per line; blank lines and `#` comments skipped. */
import { CliError, ExitCode } from "../commands/exit-codes.ts";

export async function loadAuthUsers(path: string): Promise<Map<string, string>> {
  const file = Bun.file(path);
  if (!(await file.exists())) throw new CliError(`--auth-users: ${path} does not exist`, ExitCode.noInput);
  const users = new Map<string, string>();
  const lines = (await file.text()).split(/\r?\n/);
  for (const [index, line] of lines.entries()) {
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon <= 0) {
      throw new CliError(`${path}:${index + 1}: expected user:password`, ExitCode.config);
    }
    users.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return users;
}
