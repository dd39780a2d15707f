#!/usr/bin/env bun
import { cac } from "cac";
import pkg from "../package.json" with { type: "json" };
import { CliError, ExitCode } from "./commands/exit-codes.ts";
import { registerProbe } from "./commands/probe.ts";
import { registerQueue } from "./commands/queue.ts";
import { registerSend } from "./commands/send.ts";
import { registerServe } from "./commands/serve.ts";

/** Prints one line naming the problem and exits with its code; the only place that exits on error. */
function fail(message: string, code: number): never {
  process.stderr.write(`smtpkit: ${message}\n`);
  process.exit(code);
}

export async function main(argv: string[]): Promise<void> {
  const cli = cac("smtpkit");
  registerSend(cli);
  registerProbe(cli);
  registerServe(cli);
  registerQueue(cli);
  cli.help();
  // Only the long form: -v is "verbose" in every subcommand, as in swaks.
  cli.option("--version", "Print the version");

  try {
    cli.parse(argv, { run: false });
  } catch (error) {
    const hint = cli.matchedCommandName ? `smtpkit ${cli.matchedCommandName} --help` : "smtpkit --help";
    fail(`${error instanceof Error ? error.message : String(error)} (see ${hint})`, ExitCode.usage);
  }
  if (cli.options.help) return;
  if (cli.options.version) {
    process.stdout.write(`smtpkit ${pkg.version}\n`);
    return;
  }
  if (!cli.matchedCommand) {
    if (cli.args.length === 0) {
      cli.outputHelp();
      return;
    }
    fail(`unknown command '${cli.args[0]}' (see smtpkit --help)`, ExitCode.usage);
  }
  try {
    await cli.runMatchedCommand();
  } catch (error) {
    if (error instanceof CliError) fail(error.message, error.exitCode);
    if (error instanceof Error && error.name === "CACError") {
      fail(`${error.message} (see smtpkit ${cli.matchedCommandName} --help)`, ExitCode.usage);
    }
    fail(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`, 70);
  }
}

if (import.meta.main) await main(process.argv);
