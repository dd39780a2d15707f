/** Flag values of `smtpkit queue`: durations, queue IDs (also from standard input), the queue file. */
import { hostname } from "node:os";
import { createResolver } from "../net/dns.ts";
import type { EngineOptions } from "../queue/delivery-engine.ts";
import { defaultDataDir, openQueue, queuePath } from "../queue/open-queue.ts";
import { normalizeQueueId } from "../queue/queue-id.ts";
import { parseRouteTarget, RouteTargetError } from "../queue/route.ts";
import type { Queue, QueueId } from "../queue/types.ts";
import { CliError, ExitCode, UsageError } from "./exit-codes.ts";
import { mxPortFromEnvironment } from "./mx-port.ts";
import { durationOption, numberOption, type OptionValue, stringOption } from "./option-values.ts";

type Options = Record<string, unknown>;

export const opt = (options: Options, name: string): OptionValue => options[name] as OptionValue;

/** The queue file: `--data-dir DIR`/queue.sqlite, else $XDG_DATA_HOME/smtpkit/queue.sqlite. */
export function queueFile(options: Options): string {
  return queuePath(stringOption(opt(options, "dataDir")) ?? defaultDataDir());
}

export function openQueueOrFail(options: Options): Queue {
  const path = queueFile(options);
  try {
    return openQueue({ path });
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    throw new CliError(`cannot open the queue ${path}: ${text}`, ExitCode.config);
  }
}

async function readStdinText(): Promise<string> {
  return new Response(Bun.stdin.stream()).text();
}

/**
 * Queue IDs from the arguments; "-" reads more from standard input, separated by white space (so
 * `queue list --json | jq -r '.[].id' | smtpkit queue hold -` works). Case does not matter.
 */
export async function readIds(
  args: readonly string[],
  readStdin: () => Promise<string> = readStdinText,
): Promise<QueueId[]> {
  const words: string[] = [];
  for (const arg of args) {
    if (arg === "-") words.push(...(await readStdin()).split(/\s+/).filter((w) => w !== ""));
    else words.push(arg);
  }
  const ids: QueueId[] = [];
  for (const word of words) {
    const id = normalizeQueueId(word);
    if (id === undefined) throw new UsageError(`'${word}' is not a queue ID (see smtpkit queue list)`);
    if (!ids.includes(id)) ids.push(id);
  }
  return ids;
}

/** The delivery flags shared by `queue run` and `queue flush`. */
export function engineOptions(options: Options): EngineOptions {
  const engine: EngineOptions = { hostname: stringOption(opt(options, "hostname")) ?? hostname() };
  const dns = stringOption(opt(options, "dns"));
  if (dns !== undefined) {
    try {
      engine.resolver = createResolver(dns);
    } catch (error) {
      throw new UsageError(`--dns: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const concurrency = numberOption(opt(options, "concurrency"), "--concurrency", 1);
  if (concurrency !== undefined) engine.concurrency = Math.floor(concurrency);
  const perDestination = numberOption(opt(options, "perDestination"), "--per-destination", 1);
  if (perDestination !== undefined) engine.perDestination = Math.floor(perDestination);
  const backoffMin = durationOption(opt(options, "backoffMin"), "--backoff-min");
  if (backoffMin !== undefined) engine.backoffMinMs = backoffMin;
  const backoffMax = durationOption(opt(options, "backoffMax"), "--backoff-max");
  if (backoffMax !== undefined) engine.backoffMaxMs = backoffMax;
  if ((engine.backoffMinMs ?? 0) > (engine.backoffMaxMs ?? Number.POSITIVE_INFINITY)) {
    throw new UsageError("--backoff-min must not be larger than --backoff-max");
  }
  const maxAge = durationOption(opt(options, "maxAge"), "--max-age");
  if (maxAge !== undefined) engine.maxAgeMs = maxAge;
  const delayWarning = durationOption(opt(options, "delayWarning"), "--delay-warning");
  if (delayWarning !== undefined && delayWarning > 0) engine.delayWarningMs = delayWarning;
  const dsnRoute = stringOption(opt(options, "dsnRoute"));
  if (dsnRoute !== undefined) {
    const secret = {
      env: stringOption(opt(options, "dsnPasswordEnv")),
      file: stringOption(opt(options, "dsnPasswordFile")),
      command: stringOption(opt(options, "dsnPasswordCmd")),
    };
    try {
      engine.dsnRoute = parseRouteTarget(dsnRoute, { secret });
    } catch (error) {
      if (error instanceof RouteTargetError) throw new UsageError(`--dsn-route: ${error.message}`);
      throw error;
    }
  }
  engine.mxPort = mxPortFromEnvironment();
  return engine;
}
