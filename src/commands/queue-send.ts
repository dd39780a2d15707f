/**
 * `send --queue` (and `sendmail --queue`): the composed message goes into the durable queue with
 * its route, and the command returns once the queue has it on disk, printing its queue ID. The
 * route keeps the flags and account as given: certificate files and the password by reference
 * (paths made absolute, an environment variable's name, a command), never their contents.
 */
import { resolve } from "node:path";
import type { Account, SecretSource } from "../config/accounts.ts";
import type { Envelope } from "../core/envelope.ts";
import type { QueueRoute, RouteTls } from "../queue/route.ts";
import { connectionFlags } from "./connection-flags.ts";
import { UsageError } from "./exit-codes.ts";
import type { OptionValue } from "./option-values.ts";
import { openQueueOrFail } from "./queue-options.ts";

type Options = Record<string, unknown>;

const _opt = (options: Options, name: string): OptionValue => options[name] as OptionValue;

function absolute(path: string | undefined): string | undefined {
  return path === undefined ? undefined : resolve(path);
}

function definedOnly<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** The flags merged over the account as `send` merges them, but files and secrets kept by reference. */
export function queueRouteFromSend(options: Options, account: Account | undefined): QueueRoute {
  const flags = connectionFlags(options, account);
  const tls: RouteTls = definedOnly({
    insecure: flags.insecure ? true : undefined,
    fingerprint: flags.fingerprint,
    servername: flags.servername,
    caFile: absolute(flags.caPath),
    certFile: absolute(flags.certPath),
    keyFile: absolute(flags.keyPath),
  });
  const common = definedOnly({
    helo: flags.helo,
    starttls: flags.starttls,
    tls: Object.keys(tls).length === 0 ? undefined : tls,
    family: flags.family,
    timeoutMs: flags.timeoutSeconds === undefined ? undefined : flags.timeoutSeconds * 1000,
    chunking: flags.chunking ? undefined : false,
  });
  if (flags.server === undefined) {
    if (flags.user !== undefined)
      throw new UsageError("--user needs --server (MX delivery does not authenticate)");
    return { kind: "mx", ...common, ...definedOnly({ dns: flags.dns }) };
  }
  const route: QueueRoute = {
    kind: "smarthost",
    host: flags.server.host,
    port: flags.server.port,
    ...common,
  };
  if (flags.implicitTls) route.implicitTls = true;
  if (flags.allowPlaintextAuth) route.allowPlaintextAuth = true;
  if (flags.user !== undefined) {
    const secret: SecretSource = definedOnly({ ...flags.secret, file: absolute(flags.secret.file) });
    if (Object.keys(secret).length === 0) {
      throw new UsageError(
        "--queue with --user needs the password by reference: give --password-env, --password-file or --password-cmd (the queue never stores a password)",
      );
    }
    route.auth = { username: flags.user, secret, ...(flags.mechanism ? { mechanism: flags.mechanism } : {}) };
  }
  return route;
}

export interface QueuedReport {
  json: boolean;
  messageId?: string;
}

/** Queues the message and prints its queue ID (or a JSON document); resolves once it is on disk. */
export async function enqueueSend(
  options: Options,
  account: Account | undefined,
  envelope: Envelope,
  message: Uint8Array,
  report: QueuedReport,
): Promise<void> {
  if (options.repeat !== undefined || options.parallel !== undefined) {
    throw new UsageError("--queue cannot be combined with --repeat/--parallel");
  }
  const route = queueRouteFromSend(options, account);
  const queue = openQueueOrFail(options);
  let id: string;
  try {
    id = await queue.enqueue(message, envelope, route);
  } finally {
    await queue.close();
  }
  if (report.json) {
    const document = {
      queueId: id,
      messageId: report.messageId ?? null,
      size: message.length,
      recipients: envelope.recipients.length,
      queue: queue.path,
    };
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  } else {
    process.stdout.write(`${id}\n`);
  }
}
