#!/usr/bin/env bun
import type { CAC } from "cac";
import { version } from "../package.json" with { type: "json" };
import { CliError, ExitCode } from "./commands/exit-codes.ts";
import { parsePlainSendArgs } from "./commands/send-argv.ts";
// Imported statically, unlike every other command: a dynamic import() of send's code costs about
// 1.3 ms more than loading it with the binary (alternating runs), and a one-message `send` from
// cron is the start-up that counts. Other commands pay about 3 ms for carrying it.
import { runSend } from "./commands/send-run.ts";
import { registerSendmail, sendmailInvocation } from "./commands/sendmail-invocation.ts";

type Registration = (cli: CAC) => void;

/**
 * Each subcommand's registration under the names it answers to. They and cac are loaded only
 * when cac parses the command line, which a plain `send` skips (see send-argv.ts).
 */
const REGISTRATIONS: Record<string, () => Promise<Registration>> = {
  send: async () => (await import("./commands/send.ts")).registerSend,
  sendmail: async () => registerSendmail,
  probe: async () => (await import("./commands/probe.ts")).registerProbe,
  serve: async () => (await import("./commands/serve.ts")).registerServe,
  queue: async () => (await import("./commands/queue.ts")).registerQueue,
  mailq: async () => (await import("./commands/queue.ts")).registerQueue,
};

let outputGuarded = false;

/**
 * A reader that goes away (`smtpkit probe ... | head`) is not an error worth a stack trace.
 * Installed only when something is about to be written: reading process.stdout or process.stderr
 * builds the stream and loads node:stream (measured: 5-20 ms of start-up), and a `send` that
 * succeeds quietly writes nothing at all.
 */
function guardOutput(): void {
  if (outputGuarded) return;
  outputGuarded = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EPIPE") process.exit(0);
      throw error;
    });
  }
}

/**
 * `send` prints nothing on success unless asked to; any other command may print right away. A
 * failing `send` writes its one line to stderr unguarded, which keeps its exit code when nobody
 * reads stderr (measured: the write to a closed pipe is dropped, the process still exits 75).
 */
function printsOnSuccess(command: string, options: Record<string, unknown>): boolean {
  if (command !== "send") return true;
  return ["json", "printId", "dryRun", "verbose"].some((name) => options[name] === true);
}

/**
 * The binary starts with the JIT reluctant to compile (package.json "build":
 * --compile-jit-policy): start-up code runs once, and compiling it on a JIT thread costs more
 * than interpreting it (measured: 5-10 ms of CPU per `send`). A command that runs long or hot
 * (serve, the queue, load mode) gets the normal policy back before it starts.
 */
function runsOnlyOnce(command: string, options: Record<string, unknown>): boolean {
  return command === "send" && options.repeat === undefined && options.parallel === undefined;
}

/** Prints one line naming the problem and exits with its code; the only place that exits on error. */
function fail(message: string, code: number): never {
  guardOutput();
  process.stderr.write(`smtpkit: ${message}\n`);
  process.exit(code);
}

/**
 * cac (through mri) keeps only the short form's values when a repeatable flag is given both as
 * `-t a` and `--to b`, so short flags are rewritten to their long names before parsing.
 */
export function expandShortFlags(cli: CAC, argv: string[]): string[] {
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
  guardOutput();
  try {
    const { runSendmail } = await import("./commands/sendmail.ts");
    await runSendmail(args);
  } catch (error) {
    if (error instanceof CliError) fail(error.message, error.exitCode);
    fail(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`, 70);
  }
}

/** Sets the JIT policy and output guard the command needs, runs it, and turns its error into an exit. */
async function runCommand(
  command: string,
  options: Record<string, unknown>,
  run: () => unknown,
): Promise<void> {
  if (!runsOnlyOnce(command, options)) Bun.unsafe.setJITPolicy(1);
  if (printsOnSuccess(command, options)) guardOutput();
  try {
    await run();
  } catch (error) {
    if (error instanceof CliError) fail(error.message, error.exitCode);
    if (error instanceof Error && error.name === "CACError") {
      fail(`${error.message} (see smtpkit ${command} --help)`, ExitCode.usage);
    }
    fail(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`, 70);
  }
}

export async function main(argv: string[]): Promise<void> {
  // Alone, --version needs neither cac nor the subcommands (measured: 33 ms -> 15 ms a run).
  if (argv.length === 3 && argv[2] === "--version") {
    console.log(`smtpkit ${version}`);
    return;
  }
  const sendmailArgs = sendmailInvocation(argv, process.argv0);
  if (sendmailArgs !== undefined) return runSendmailCommand(sendmailArgs);
  const plainSend = argv[2] === "send" ? parsePlainSendArgs(argv.slice(3)) : undefined;
  if (plainSend !== undefined) {
    return runCommand("send", plainSend, () => runSend(plainSend));
  }

  const { cac } = await import("cac");
  const cli = cac("smtpkit");
  // cac parses every option it is given, so only the command asked for is registered: all of
  // them only for the overall help or an unknown command.
  const named = REGISTRATIONS[argv.slice(2).find((arg) => !arg.startsWith("-")) ?? ""];
  const registrations = named ? [named] : Object.values(REGISTRATIONS);
  for (const register of new Set(await Promise.all(registrations.map((load) => load())))) register(cli);
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
    guardOutput();
    process.stdout.write(`smtpkit ${version}\n`);
    return;
  }
  if (!cli.matchedCommand) {
    if (cli.args.length === 0) {
      cli.outputHelp();
      return;
    }
    fail(`unknown command '${cli.args[0]}' (see smtpkit --help)`, ExitCode.usage);
  }
  return runCommand(cli.matchedCommandName ?? "", cli.options, () => cli.runMatchedCommand());
}

// No top-level await: `bun build --compile --bytecode` precompiles only modules without it,
// which halves the binary's start-up time (it matters for `send` from cron and scripts).
if (import.meta.main) void main(process.argv);
