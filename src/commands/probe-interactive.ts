import { CliError, ExitCode } from "./exit-codes.ts";
import type { ProbeSettings } from "./probe-runner.ts";

export async function runInteractive(_settings: ProbeSettings): Promise<number> {
  throw new CliError("probe --interactive is not built yet", ExitCode.usage);
}
