import type { CAC } from "cac";
import { CliError, ExitCode } from "./exit-codes.ts";

export function registerProbe(cli: CAC): void {
  cli
    .command("probe <target>", "Ask a server what it says: banner, extensions, TLS, recipients")
    .action(() => {
      throw new CliError("probe is not built yet (issue 4)", ExitCode.usage);
    });
}
