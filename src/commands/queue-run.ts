/** `smtpkit queue ACTION`: the actions behind the flag table in queue.ts. */
import type { AttemptReport } from "../queue/delivery-engine.ts";
import type { Queue, QueueEntry, QueueId } from "../queue/types.ts";
import { flushQueue, runWorker } from "../queue/worker.ts";
import { CliError, ExitCode, UsageError } from "./exit-codes.ts";
import {
  attemptJson,
  attemptLines,
  attemptReportJson,
  listText,
  messageJson,
  messageState,
  showText,
  statsJson,
  statsText,
} from "./queue-format.ts";
import { engineOptions, openQueueOrFail, queueFile, readIds } from "./queue-options.ts";

type Options = Record<string, unknown>;

export const QUEUE_ACTIONS = [
  "list",
  "show",
  "flush",
  "run",
  "hold",
  "release",
  "delete",
  "retry-failed",
  "stats",
] as const;
type Action = (typeof QUEUE_ACTIONS)[number];

function isAction(text: string): text is Action {
  return (QUEUE_ACTIONS as readonly string[]).includes(text);
}

function out(text: string): void {
  process.stdout.write(text);
}

function note(text: string): void {
  process.stderr.write(`smtpkit: ${text}\n`);
}

function json(document: unknown): void {
  out(`${JSON.stringify(document, null, 2)}\n`);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** Runs one action and returns the exit code; errors that are the user's throw CliError. */
export async function runQueueAction(
  action: string | undefined,
  args: string[],
  options: Options,
): Promise<ExitCode> {
  if (action === undefined) throw new UsageError(`queue needs an action: ${QUEUE_ACTIONS.join(", ")}`);
  if (!isAction(action)) {
    throw new UsageError(`unknown queue action '${action}'; try one of ${QUEUE_ACTIONS.join(", ")}`);
  }
  const takesIds = action !== "list" && action !== "run" && action !== "stats";
  if (!takesIds && args.length > 0) throw new UsageError(`queue ${action} takes no IDs`);
  const ids = await readIds(args);
  const queue = openQueueOrFail(options);
  try {
    return await perform(action, ids, options, queue);
  } catch (error) {
    if (error instanceof Error && error.name === "SQLiteError") {
      const code = /locked|busy/i.test(error.message) ? ExitCode.tempFail : ExitCode.config;
      throw new CliError(`queue ${queueFile(options)}: ${error.message}`, code);
    }
    throw error;
  } finally {
    await queue.close();
  }
}

async function perform(action: Action, ids: QueueId[], options: Options, queue: Queue): Promise<ExitCode> {
  const now = Date.now();
  switch (action) {
    case "list": {
      const entries = await queue.list();
      if (options.json === true) json(entries.map((entry) => messageJson(entry, now)));
      else out(listText(entries, now));
      return ExitCode.ok;
    }
    case "show":
      return await show(queue, ids, options, now);
    case "flush":
      return flush(queue, ids, options);
    case "run":
      return run(queue, options);
    case "hold":
    case "release": {
      requireIds(action, ids);
      const changed = action === "hold" ? await queue.hold(ids) : await queue.release(ids);
      note(`${plural(changed.length, "message")} ${action === "hold" ? "held" : "released"}`);
      return reportMissing(ids, changed);
    }
    case "delete": {
      const all = options.all === true;
      if (all && ids.length > 0) throw new UsageError("queue delete takes IDs or --all, not both");
      if (!all) requireIds(action, ids);
      const deleted = await queue.delete(all ? {} : { ids });
      note(`${plural(deleted.length, "message")} deleted`);
      return all ? ExitCode.ok : reportMissing(ids, deleted);
    }
    case "retry-failed": {
      const selection = ids.length === 0 ? undefined : { ids };
      if (selection !== undefined) {
        const missing = reportMissing(ids, await queue.existing(ids));
        if (missing !== ExitCode.ok) return missing;
      }
      const requeued = await queue.retryFailed(now, selection);
      note(`${plural(requeued.length, "message")} with failed recipients queued again`);
      return ExitCode.ok;
    }
    case "stats": {
      const stats = await queue.stats();
      if (options.json === true) json(statsJson(stats, now));
      else out(statsText(stats, now));
      return ExitCode.ok;
    }
  }
}

function requireIds(action: string, ids: readonly QueueId[]): void {
  if (ids.length === 0)
    throw new UsageError(`queue ${action} needs queue IDs (or - to read them from stdin)`);
}

/** Names the IDs that are not in the queue; 64 when there were any (a bad argument). */
function reportMissing(asked: readonly QueueId[], found: readonly QueueId[]): ExitCode {
  const missing = asked.filter((id) => !found.includes(id));
  if (missing.length === 0) return ExitCode.ok;
  note(`not in the queue: ${missing.join(", ")}`);
  return ExitCode.usage;
}

async function show(queue: Queue, ids: QueueId[], options: Options, now: number): Promise<ExitCode> {
  requireIds("show", ids);
  const entries: { entry: QueueEntry; id: QueueId }[] = [];
  for (const id of ids) {
    const entry = await queue.get(id);
    if (entry !== undefined) entries.push({ entry, id });
  }
  const raw = options.raw === true;
  if (options.json === true) {
    const documents = [];
    for (const { entry, id } of entries) {
      const attempts = await queue.attempts(id);
      const bytes = raw ? ((await queue.raw(id)) ?? new Uint8Array()) : undefined;
      documents.push({
        ...messageJson(entry, now),
        mailParams: entry.mailParams,
        attempts: attempts.map((a) => attemptJson(a, entry)),
        ...(bytes === undefined ? {} : { rawBase64: Buffer.from(bytes).toString("base64") }),
      });
    }
    json(ids.length === 1 ? (documents[0] ?? null) : documents);
  } else {
    for (const [i, { entry, id }] of entries.entries()) {
      if (i > 0) out("\n");
      out(showText(entry, await queue.attempts(id), now));
      if (raw) {
        out("\n");
        process.stdout.write((await queue.raw(id)) ?? new Uint8Array());
      }
    }
  }
  return reportMissing(
    ids,
    entries.map((e) => e.id),
  );
}

/** Failed beats deferred beats delivered, as for `send` (a permanent failure is reported first). */
function exitCodeFor(states: readonly string[]): ExitCode {
  if (states.includes("failed")) return ExitCode.unavailable;
  if (states.some((s) => s === "deferred" || s === "held" || s === "active" || s === "queued")) {
    return ExitCode.tempFail;
  }
  return ExitCode.ok;
}

async function flush(queue: Queue, ids: QueueId[], options: Options): Promise<ExitCode> {
  const selection = ids.length === 0 ? undefined : ids;
  let missingCode: ExitCode = ExitCode.ok;
  const held: QueueId[] = [];
  const idle: QueueId[] = [];
  if (selection !== undefined) {
    const found = await queue.existing(selection);
    missingCode = reportMissing(selection, found);
    for (const id of found) {
      const entry = await queue.get(id);
      if (entry === undefined) continue;
      const state = messageState(entry);
      if (state === "held") held.push(id);
      else if (state === "failed" || state === "delivered") idle.push(id);
    }
  }
  const asJson = options.json === true;
  const result = await flushQueue(queue, {
    ...engineOptions(options),
    ...(selection === undefined ? {} : { ids: selection }),
    onAttempt: (report) => {
      if (!asJson && options.quiet !== true) out(`${attemptLines(report, Date.now()).join("\n")}\n`);
    },
  });
  // Messages another worker held when the flush began: their outcome is whatever it recorded.
  const attempted = new Set(result.attempts.map((a) => a.id));
  const others = (selection ?? []).filter(
    (id) => !attempted.has(id) && !held.includes(id) && !idle.includes(id),
  );
  const otherStates: { id: QueueId; state: string }[] = [];
  for (const id of others) {
    const entry = await queue.get(id);
    otherStates.push({ id, state: entry === undefined ? "delivered" : messageState(entry) });
  }
  const states = [
    ...result.attempts.flatMap((a) => a.recipients.map((r) => r.outcome.state)),
    ...otherStates.map((o) => o.state),
    ...held.map(() => "held"),
  ];
  const code = missingCode !== ExitCode.ok ? missingCode : exitCodeFor(states);
  if (asJson) {
    json({
      attempts: result.attempts.map(attemptReportJson),
      elsewhere: otherStates,
      held,
      nothingToDo: idle,
      exitCode: code,
    });
  } else {
    for (const { id, state } of otherStates) out(`${id}: ${state} (delivered by another worker)\n`);
    for (const id of held) note(`${id} is held: release it first (smtpkit queue release ${id})`);
    for (const id of idle) note(`${id} has nothing left to deliver (see smtpkit queue retry-failed)`);
    if (result.attempts.length === 0 && otherStates.length === 0 && selection === undefined) {
      note("nothing to deliver");
    }
  }
  return code;
}

async function run(queue: Queue, options: Options): Promise<ExitCode> {
  const quiet = options.quiet === true;
  const engine = engineOptions(options);
  const log = (line: string): void => {
    if (!quiet) process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  };
  const worker = runWorker(queue, {
    ...engine,
    onAttempt: (report: AttemptReport) => {
      for (const line of attemptLines(report, Date.now())) log(line);
    },
    onError: (error) => log(`error: ${error instanceof Error ? error.message : String(error)}`),
  });
  log(
    `queue worker ${worker.owner} delivering from ${queue.path} (${engine.concurrency ?? 20} connections, ${engine.perDestination ?? 5} per destination)`,
  );
  let signals = 0;
  const stop = (signal: string): void => {
    signals++;
    if (signals > 1) process.exit(ExitCode.tempFail);
    log(`${signal}: finishing the messages in hand`);
    void worker.stop();
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  await worker.done;
  log("queue worker stopped");
  return ExitCode.ok;
}
