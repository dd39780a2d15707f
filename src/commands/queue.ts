import type { CAC } from "cac";
import { restartWithoutFtl } from "../jit-tiers.ts";

const many = { type: [String] };

/** Flags of `queue` that take a value (the word after them is not an argument). */
const VALUE_FLAGS = new Set([
  "--data-dir",
  "--dns",
  "--concurrency",
  "--per-destination",
  "--backoff-min",
  "--backoff-max",
  "--max-age",
  "--delay-warning",
  "--dsn-route",
  "--dsn-password-env",
  "--dsn-password-file",
  "--dsn-password-cmd",
  "--hostname",
]);

/**
 * cac (mri) drops a lone "-" and every argument after it, so when "-" (IDs on standard input) is
 * given the arguments are read from argv here instead.
 */
export function queueArguments(argv: readonly string[], given: { action?: string; ids: string[] }) {
  const start = argv.indexOf("queue");
  if (start < 0 || !argv.includes("-", start)) return given;
  const words: string[] = [];
  for (let i = start + 1; i < argv.length; i++) {
    const word = argv[i] ?? "";
    if (word === "--") {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (word.startsWith("--")) {
      if (VALUE_FLAGS.has(word)) i++;
      continue;
    }
    words.push(word);
  }
  const [action, ...ids] = words;
  return action === undefined ? { ids } : { action, ids };
}

const ACTIONS_HELP =
  "ACTION: list | show ID... | flush [ID...] | run | hold ID... | release ID... | delete ID...|--all | retry-failed [ID...] | stats  (ID '-' reads IDs from stdin)";

/** Registers `smtpkit queue` (and `mailq`); the work is in queue-run.ts so this file stays the flag table. */
export function registerQueue(cli: CAC): void {
  cli
    .command(
      "queue [action] [...ids]",
      "Manage and deliver the durable outbound queue (mailq, postqueue, postsuper)",
    )
    .usage(`queue ACTION [ID...] [options]\n\n  ${ACTIONS_HELP}`)
    .option("--data-dir <dir>", "Where queue.sqlite lives (default $XDG_DATA_HOME/smtpkit)", many)
    .option("--json", "list, show, flush, stats: print one JSON document")
    .option("--raw", "show: print the message itself after its envelope")
    .option("--all", "delete: every message in the queue")
    // Delivery (run, flush)
    .option("--dns <host[:port]>", "run, flush: DNS resolver for MX lookups", many)
    .option("--concurrency <n>", "run, flush: connections at once (default 20)", many)
    .option("--per-destination <n>", "run, flush: connections to one destination at once (default 5)", many)
    .option("--backoff-min <duration>", "run, flush: first retry after this long (default 300s)", many)
    .option("--backoff-max <duration>", "run, flush: retries at most this far apart (default 4000s)", many)
    .option(
      "--max-age <duration>",
      "run, flush: a recipient still deferred after this long fails (default 5d)",
      many,
    )
    .option(
      "--delay-warning <duration>",
      "run, flush: tell the sender once when mail waits this long (off)",
      many,
    )
    .option(
      "--dsn-route <target>",
      "run, flush: send notifications via smtp://[user@]host[:port], smtps://... or mx",
      many,
    )
    .option(
      "--dsn-password-env <var>",
      "run, flush: password for --dsn-route's user, from this variable",
      many,
    )
    .option("--dsn-password-file <file>", "run, flush: password for --dsn-route's user, from this file", many)
    .option(
      "--dsn-password-cmd <command>",
      "run, flush: password for --dsn-route's user, from this command",
      many,
    )
    .option(
      "--hostname <name>",
      "run, flush: our name in EHLO and in notifications (default: this host's)",
      many,
    )
    .option("--quiet", "run, flush: do not print each attempt")
    .action(async (action: string | undefined, ids: string[], options: Record<string, unknown>) => {
      const args = queueArguments(process.argv, action === undefined ? { ids } : { action, ids });
      // The worker is a daemon like serve (src/jit-tiers.ts).
      if (args.action === "run") restartWithoutFtl();
      const { runQueueAction } = await import("./queue-run.ts");
      const code = await runQueueAction(args.action, args.ids, options);
      if (code !== 0) process.exit(code);
    });

  cli
    .command("mailq", "List the outbound queue (the same as smtpkit queue list)")
    .option("--data-dir <dir>", "Where queue.sqlite lives (default $XDG_DATA_HOME/smtpkit)", many)
    .option("--json", "Print one JSON document: an array with one object per message")
    .action(async (options: Record<string, unknown>) => {
      const { runQueueAction } = await import("./queue-run.ts");
      const code = await runQueueAction("list", [], options);
      if (code !== 0) process.exit(code);
    });
}
