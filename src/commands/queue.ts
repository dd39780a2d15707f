import type { CAC } from "cac";
import { CliError, ExitCode } from "./exit-codes.ts";

export function registerQueue(cli: CAC): void {
  cli.command("queue [action]", "Manage the durable outbound queue").action(() => {
    throw new CliError("queue is not built yet (issue 6)", ExitCode.usage);
  });
}
