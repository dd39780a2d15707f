import type { CAC } from "cac";
import { CliError, ExitCode } from "./exit-codes.ts";

export function registerServe(cli: CAC): void {
  cli.command("serve", "Run a local SMTP server that catches mail").action(() => {
    throw new CliError("serve is not built yet (issue 5)", ExitCode.usage);
  });
}
