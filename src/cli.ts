#!/usr/bin/env bun
import { type CAC, cac } from "cac";
import pkg from "../package.json" with { type: "json" };
import { CliError, ExitCode } from "./commands/exit-codes.ts";
import { registerProbe } from "./commands/probe.ts";
import { registerQueue } from "./commands/queue.ts";
import { registerSend } from "./commands/send.ts";
import { registerSendmail, sendmailInvocation } from "./commands/sendmail-args.ts";
import { registerServe } from "./commands/serve.ts";

/** Prints one line naming the problem and exits with its code; the only place that exits on error. */
function fail(message: string, code: number): never {
  process.stderr.write(`smtpkit: ${message}\n`);
  process.exit(code);
}

/**
 * cac (through mri) keeps only the short form's values when a repeatable flag is given both as
 * `-t a` and `--to b`, so short flags are rewritten to their long names before parsing.
 */
function expandShortFlags(cli: CAC, argv: string[]): string[] {
  const [runtime = "", script = "", ...rest] = argv;
  const commandName = rest.find((arg) => !arg.startsWith("-"));
  const command = cli.commands.find((c) => c.name === commandName);
  if (!command) return argv;
  const longOf = new Map<string, string>();
  for (const option of command.options) {
    const short = option.names.find((n) => n.length === 1);
    const long = option.names.find((n) => n.length > 1);
    if (short && long) longOf.set(`-${short}`, `--${long}`);
  }
  const end = rest.indexOf("--");
  const expanded = rest.map((arg, i) => (end !== -1 && i > end ? arg : (longOf.get(arg) ?? arg)));
  return [runtime, script, ...expanded];
}

/** sendmail's flags (-oi, -t -i, -f addr) are not cac's, so that command is parsed on its own. */
async function runSendmailCommand(args: string[]): Promise<void> {
  try {
    const { runSendmail } = await import("./commands/sendmail.ts");
    await runSendmail(args);
  } catch (error) {
    if (error instanceof CliError) fail(error.message, error.exitCode);
    fail(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`, 70);
  }
}

export async function main(argv: string[]): Promise<void> {
  const sendmailArgs = sendmailInvocation(argv, process.argv0);
  if (sendmailArgs !== undefined) return runSendmailCommand(sendmailArgs);
  const cli = cac("smtpkit");
  registerSend(cli);
  registerSendmail(cli);
  registerProbe(cli);
  registerServe(cli);
  registerQueue(cli);
  cli.help();
  // Only the long form: -v is "verbose" in every subcommand, as in swaks.
  cli.option("--version", "Print the version");

  try {
    cli.parse(expandShortFlags(cli, argv), { run: false });
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

// A reader that goes away (`smtpkit probe ... | head`) is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0);
    throw error;
  });
}

// No top-level await: `bun build --compile --bytecode` precompiles only modules without it,
// which halves the binary's start-up time (it matters for `send` from cron and scripts).
if (import.meta.main) void main(process.argv);
