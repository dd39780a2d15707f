/**
 * `serve --relay TARGET`: accepted mail goes into the durable queue (src/queue) for onward
 * delivery by a worker running in this process, instead of (or, with --relay-and-keep, as well
 * as) being kept in the catcher. Recipients are checked against the relay policy so the server
 * is never an open relay.
 */
import { join } from "node:path";
import { type Path, parseMailbox } from "../core/address.ts";
import type { Envelope } from "../core/envelope.ts";
import { emptyMailParams, emptyRcptParams } from "../core/esmtp-params.ts";
import { ReleaseRefused } from "../http/release-route.ts";
import { openQueue, QUEUE_FILE_NAME } from "../queue/open-queue.ts";
import { parseRouteTarget, type QueueRoute, RouteTargetError } from "../queue/route.ts";
import type { Queue, QueueId } from "../queue/types.ts";
import { runWorker, type Worker } from "../queue/worker.ts";
import { mayRelay, RELAY_DENIED, type RelayPolicy, relayPolicy } from "../serve/relay-policy.ts";
import type { Backend } from "../server/backend.ts";
import { UsageError } from "./exit-codes.ts";
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
  /** Queues the message for the recipients that may be relayed; undefined when there are none. */
  forward(raw: Uint8Array, envelope: Envelope, authenticated: boolean): Promise<QueueId | undefined>;
  /** Mailpit's release: the stored message to other recipients, through the queue. */
  release(raw: Uint8Array, mailFrom: string, to: string[]): Promise<QueueId>;
  /** With --relay only, refuses RCPT for recipients that may not be relayed (550 5.7.1). */
  guard(backend: Backend): Backend;
  close(): Promise<void>;
}

export function relayRoute(options: Options): QueueRoute | undefined {
  const target = stringOption(opt(options, "relay"));
  if (target === undefined) return undefined;
  try {
    const caFile = stringOption(opt(options, "relayCa"));
    const tls = {
      ...(caFile === undefined ? {} : { caFile }),
      ...(options.relayInsecure === true ? { insecure: true } : {}),
    };
    return parseRouteTarget(target, {
      ...(Object.keys(tls).length > 0 ? { tls } : {}),
      secret: {
        env: stringOption(opt(options, "relayPasswordEnv")),
        file: stringOption(opt(options, "relayPasswordFile")),
        command: stringOption(opt(options, "relayPasswordCmd")),
      },
    });
  } catch (error) {
    if (error instanceof RouteTargetError) throw new UsageError(`--relay: ${error.message}`);
    throw error;
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
  const queue = openQueue({
    path: context.dataDir === undefined ? ":memory:" : join(context.dataDir, QUEUE_FILE_NAME),
  });
  const policy = relayPolicy(
    listOption(opt(options, "relayDomains")),
    listOption(opt(options, "relayTo")),
    context.checkedAuth,
  );
  const log = context.log;
  const worker = runWorker(queue, {
    // Only --dns applies here: serve's own --max-age is the mailbox's retention, not the queue's.
    ...engineOptions({ dns: options.dns, hostname: context.hostname }),
    ...(log
      ? {
          onAttempt: (report) => {
            for (const line of attemptLines(report, Date.now())) log(line);
          },
        }
      : {}),
    onError: (error) => process.stderr.write(`smtpkit: relay worker: ${(error as Error).message}\n`),
  });
  const keep = options.relayAndKeep === true;
  return {
    route,
    queue,
    worker,
    policy,
    keep,
    async forward(raw, envelope, authenticated) {
      const recipients = envelope.recipients.filter((r) => mayRelay(policy, r.path, authenticated));
      if (recipients.length === 0) return undefined;
      return queue.enqueue(raw, { ...envelope, recipients }, route);
    },
    release(raw, mailFrom, to) {
      const path = (address: string): Path => {
        try {
          return { mailbox: parseMailbox(address, { utf8: true }) };
        } catch (error) {
          throw new ReleaseRefused(`'${address}' is not an address: ${(error as Error).message}`);
        }
      };
      const envelope: Envelope = {
        from: mailFrom === "" ? { mailbox: null } : path(mailFrom),
        mailParams: emptyMailParams(),
        recipients: to.map((address) => ({ path: path(address), params: emptyRcptParams() })),
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
      await worker.stop();
      await queue.close();
    },
  };
}
