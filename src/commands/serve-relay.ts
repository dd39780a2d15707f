/**
 * `serve --relay TARGET`: accepted mail goes into the durable queue (src/queue) for onward
 * delivery by a worker running in this process, instead of (or, with --relay-and-keep, as well
 * as) being kept in the catcher. Recipients are checked against the relay policy so the server
 * is never an open relay.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createSecureContext } from "node:tls";
import { formatPath, type Path, parseMailbox } from "../core/address.ts";
import type { Envelope } from "../core/envelope.ts";
import { emptyMailParams, emptyRcptParams } from "../core/esmtp-params.ts";
import { ReleaseRefused } from "../http/release-route.ts";
import { openQueue, QUEUE_FILE_NAME } from "../queue/open-queue.ts";
import { parseRouteTarget, type QueueRoute, RouteTargetError } from "../queue/route.ts";
import type { Queue, QueueId } from "../queue/types.ts";
import { runWorker, type Worker } from "../queue/worker.ts";
import {
  mailboxKey,
  mayRelay,
  RELAY_DENIED,
  type RelayPolicy,
  RelayPolicyError,
  relayPolicy,
  relaysNothing,
} from "../serve/relay-policy.ts";
import type { Backend } from "../server/backend.ts";
import { pinnedFingerprint } from "./connection-flags.ts";
import { CliError, ExitCode, UsageError } from "./exit-codes.ts";
import { listOption, type OptionValue, stringOption } from "./option-values.ts";
import { attemptLines } from "./queue-format.ts";
import { engineOptions } from "./queue-options.ts";

type Options = Record<string, unknown>;
const opt = (options: Options, name: string): OptionValue => options[name] as OptionValue;

export interface Relay {
  route: QueueRoute;
  queue: Queue;
  worker: Worker;
  policy: RelayPolicy;
  keep: boolean;
  /**
   * Queues the message for the recipients that may be relayed; undefined when there are none
   * (with --relay-and-keep; without it that is a 550, since the message would go nowhere).
   */
  forward(raw: Uint8Array, envelope: Envelope, authenticated: boolean): Promise<QueueId | undefined>;
  /** Mailpit's release: the stored message to other recipients, through the queue, within the policy. */
  release(raw: Uint8Array, mailFrom: string, to: string[]): Promise<QueueId>;
  /** With --relay only, refuses RCPT for recipients that may not be relayed (550 5.7.1). */
  guard(backend: Backend): Backend;
  close(): Promise<void>;
}

/** Flags that mean nothing without --relay (cac's camelCase key, the flag as typed). */
const RELAY_FLAGS: readonly (readonly [string, string])[] = [
  ["relayAndKeep", "--relay-and-keep"],
  ["relayDomains", "--relay-domains"],
  ["relayTo", "--relay-to"],
  ["relayPasswordEnv", "--relay-password-env"],
  ["relayPasswordFile", "--relay-password-file"],
  ["relayPasswordCmd", "--relay-password-cmd"],
  ["relayCa", "--relay-ca"],
  ["relayInsecure", "--relay-insecure"],
  ["relayTlsFingerprint", "--relay-tls-fingerprint"],
];

const SECRET_FLAGS = {
  env: "--relay-password-env",
  file: "--relay-password-file",
  command: "--relay-password-cmd",
} as const;

function given(options: Options, key: string): boolean {
  const value = options[key];
  return value !== undefined && value !== false;
}

/**
 * The relay policy from --relay-domains, --relay-to and whether --auth-users checks credentials.
 * Refuses a policy under which nobody may relay anything: such a server would only bounce mail.
 */
export function relayPolicyFromFlags(options: Options, checkedAuth: boolean): RelayPolicy {
  let policy: RelayPolicy;
  try {
    policy = relayPolicy(
      listOption(opt(options, "relayDomains")),
      listOption(opt(options, "relayTo")),
      checkedAuth,
    );
  } catch (error) {
    if (error instanceof RelayPolicyError) {
      throw new UsageError(
        `${error.list === "domains" ? "--relay-domains" : "--relay-to"}: ${error.message}`,
      );
    }
    throw error;
  }
  if (relaysNothing(policy)) {
    throw new UsageError(
      "--relay: say who may relay with --relay-domains, --relay-to or --auth-users (serve is never an open relay)",
    );
  }
  return policy;
}

function absolute(path: string | undefined): string | undefined {
  return path === undefined ? undefined : resolve(path);
}

function checkCaFile(caFile: string): void {
  if (!existsSync(caFile)) throw new CliError(`--relay-ca: ${caFile} does not exist`, ExitCode.noInput);
  // Read now only to fail at start-up; the route keeps the path and reads it per connection.
  try {
    createSecureContext({ ca: readFileSync(caFile) });
  } catch (error) {
    throw new CliError(
      `--relay-ca ${caFile}: ${error instanceof Error ? error.message : String(error)}`,
      ExitCode.config,
    );
  }
}

/**
 * The route of `--relay TARGET` with its TLS and secret flags, or undefined without --relay.
 * Everything that can be checked before the first message is: a mistake here would otherwise
 * show only as mail deferred for days.
 */
export function relayRoute(
  options: Options,
  env: Record<string, string | undefined> = process.env,
): QueueRoute | undefined {
  const target = stringOption(opt(options, "relay"));
  if (target === undefined) {
    const stray = RELAY_FLAGS.find(([key]) => given(options, key));
    if (stray) throw new UsageError(`${stray[1]} needs --relay TARGET`);
    return undefined;
  }
  // Paths are made absolute: the route is stored with each message, and `queue flush` in another
  // directory reads them too.
  const secret = {
    env: stringOption(opt(options, "relayPasswordEnv")),
    file: absolute(stringOption(opt(options, "relayPasswordFile"))),
    command: stringOption(opt(options, "relayPasswordCmd")),
  };
  const sources = (Object.keys(SECRET_FLAGS) as (keyof typeof SECRET_FLAGS)[]).filter(
    (key) => secret[key] !== undefined,
  );
  if (sources.length > 1) {
    throw new UsageError(`give one of ${Object.values(SECRET_FLAGS).join(", ")}, not ${sources.length}`);
  }
  const caFile = absolute(stringOption(opt(options, "relayCa")));
  if (caFile !== undefined) checkCaFile(caFile);
  const fingerprint = pinnedFingerprint(
    options,
    "relayTlsFingerprint",
    "--relay-tls-fingerprint",
    "relayInsecure",
    "--relay-insecure",
  );
  const tls = {
    ...(caFile === undefined ? {} : { caFile }),
    ...(options.relayInsecure === true ? { insecure: true } : {}),
    ...(fingerprint === undefined ? {} : { fingerprint }),
  };
  let route: QueueRoute;
  try {
    route = parseRouteTarget(target, {
      ...(Object.keys(tls).length > 0 ? { tls } : {}),
      ...(sources.length > 0 ? { secret } : {}),
    });
  } catch (error) {
    if (error instanceof RouteTargetError) throw new UsageError(`--relay: ${error.message}`);
    throw error;
  }
  const source = sources[0];
  if (source !== undefined) {
    const flag = SECRET_FLAGS[source];
    if (route.kind !== "smarthost" || route.auth === undefined) {
      throw new UsageError(`${flag}: --relay ${target} names no user (smtp://user@host[:port])`);
    }
    // The environment of a running process cannot change: a missing variable would defer every message.
    if (secret.env !== undefined && env[secret.env] === undefined) {
      throw new UsageError(`${flag}: environment variable ${secret.env} is not set`);
    }
    if (secret.file !== undefined && !existsSync(secret.file)) {
      throw new CliError(`${flag}: ${secret.file} does not exist`, ExitCode.noInput);
    }
  }
  relayPolicyFromFlags(options, stringOption(opt(options, "authUsers")) !== undefined);
  return route;
}

/** Parses an address given to the release API; "Name <addr>" as Mailpit takes it, too. */
function releasePath(address: string): Path {
  const angle = /<([^<>]*)>\s*$/.exec(address);
  const bare = (angle?.[1] ?? address).trim();
  try {
    return { mailbox: parseMailbox(bare, { utf8: true }) };
  } catch (error) {
    throw new ReleaseRefused(`'${address}' is not an address: ${(error as Error).message}`);
  }
}

export function startRelay(
  options: Options,
  route: QueueRoute,
  context: {
    dataDir: string | undefined;
    hostname: string;
    checkedAuth: boolean;
    log?: (line: string) => void;
  },
): Relay {
  // Flags first, so a mistake leaves no queue file behind.
  const policy = relayPolicyFromFlags(options, context.checkedAuth);
  // Only --dns applies here: serve's own --max-age is the mailbox's retention, not the queue's.
  const engine = engineOptions({ dns: options.dns, hostname: context.hostname });
  const path = context.dataDir === undefined ? ":memory:" : join(context.dataDir, QUEUE_FILE_NAME);
  let queue: Queue;
  try {
    queue = openQueue({ path });
  } catch (error) {
    throw new CliError(
      `cannot open the queue ${path}: ${error instanceof Error ? error.message : String(error)}`,
      ExitCode.noInput,
    );
  }
  const log = context.log;
  const worker = runWorker(queue, {
    ...engine,
    ...(log
      ? {
          onAttempt: (report) => {
            for (const line of attemptLines(report, Date.now())) log(line);
          },
        }
      : {}),
    onError: (error) =>
      process.stderr.write(
        `smtpkit: relay worker: ${error instanceof Error ? error.message : String(error)}\n`,
      ),
  });
  const keep = options.relayAndKeep === true;
  return {
    route,
    queue,
    worker,
    policy,
    keep,
    async forward(raw, envelope, authenticated) {
      const recipients = envelope.recipients
        .filter((r) => mayRelay(policy, r.path, authenticated))
        // Source routes are ignored (RFC 5321 §3.3, appendix C): passed on, a smarthost that
        // honoured `<@other.test:bob@allowed.test>` would relay past our policy.
        .map((r) => ({ ...r, path: { mailbox: r.path.mailbox } }));
      if (recipients.length === 0) {
        // The guard refuses such recipients at RCPT already; answering 250 here would drop the mail.
        if (!keep) throw RELAY_DENIED;
        return undefined;
      }
      const from: Path = { mailbox: envelope.from.mailbox };
      return queue.enqueue(raw, { ...envelope, from, recipients }, route);
    },
    async release(raw, mailFrom, to) {
      // The API has no login: it may send only where an unauthenticated SMTP client could.
      const recipients: Path[] = [];
      const seen = new Set<string>();
      for (const address of to) {
        const path = releasePath(address);
        // The same address twice would be delivered twice.
        const key = path.mailbox === null ? "" : mailboxKey(path.mailbox);
        if (!seen.has(key)) recipients.push(path);
        seen.add(key);
      }
      const refused = recipients.filter((path) => !mayRelay(policy, path, false));
      if (refused.length > 0) {
        const list = refused.map((path) => formatPath(path)).join(", ");
        throw new ReleaseRefused(`may not relay to ${list}: not in --relay-domains or --relay-to`);
      }
      const envelope: Envelope = {
        from: mailFrom === "" ? { mailbox: null } : releasePath(mailFrom),
        mailParams: emptyMailParams(),
        recipients: recipients.map((path) => ({ path, params: emptyRcptParams() })),
      };
      return queue.enqueue(raw, envelope, route);
    },
    guard(backend) {
      if (keep) return backend;
      const rcpt = backend.rcpt;
      return {
        ...backend,
        rcpt(session, to, params) {
          if (!mayRelay(policy, to, session.authUser !== undefined)) throw RELAY_DENIED;
          return rcpt?.call(backend, session, to, params);
        },
      };
    },
    async close() {
      try {
        await worker.stop();
      } finally {
        await queue.close();
      }
    },
  };
}
