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
import { UsageError } from "./exit-codes.ts";
import { choiceOption, hostPort, numberOption, type OptionValue, stringOption } from "./option-values.ts";
import { openQueueOrFail } from "./queue-options.ts";

type Options = Record<string, unknown>;

const opt = (options: Options, name: string): OptionValue => options[name] as OptionValue;

function absolute(path: string | undefined): string | undefined {
  return path === undefined ? undefined : resolve(path);
}

function definedOnly<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** The flags merged over the account (flags win), as `send` merges them, but kept by reference. */
export function queueRouteFromSend(options: Options, account: Account | undefined): QueueRoute {
  const implicitTls = options.tls === true || account?.tls === "implicit";
  const serverText = stringOption(opt(options, "server")) ?? account?.server;
  if (options["4"] && options["6"]) throw new UsageError("give -4 or -6, not both");
  const family = options["4"] ? 4 : options["6"] ? 6 : undefined;
  const user = stringOption(opt(options, "user")) ?? account?.user;
  const starttlsFlag = choiceOption(opt(options, "starttls"), "--starttls", [
    "auto",
    "always",
    "never",
  ] as const);
  const starttls =
    starttlsFlag ??
    (account?.tls === "none" ? "never" : account?.tls === "starttls" || user ? "always" : "auto");
  const timeout = numberOption(opt(options, "timeout"), "--timeout", 1);
  const tls: RouteTls = definedOnly({
    insecure: options.insecure === true ? true : undefined,
    servername: stringOption(opt(options, "tlsServername")),
    caFile: absolute(stringOption(opt(options, "ca"))),
    certFile: absolute(stringOption(opt(options, "clientCert"))),
    keyFile: absolute(stringOption(opt(options, "clientKey"))),
  });
  const common = definedOnly({
    helo: stringOption(opt(options, "helo")) ?? account?.helo,
    starttls,
    tls: Object.keys(tls).length === 0 ? undefined : tls,
    family: family as 4 | 6 | undefined,
    timeoutMs: timeout === undefined ? undefined : timeout * 1000,
    chunking: options.chunking === false ? false : undefined,
  });
  if (serverText === undefined) {
    if (user !== undefined) throw new UsageError("--user needs --server (MX delivery does not authenticate)");
    return { kind: "mx", ...common, ...definedOnly({ dns: stringOption(opt(options, "dns")) }) };
  }
  const server = hostPort(serverText, "--server", account?.port ?? (implicitTls ? 465 : 25));
  const route: QueueRoute = { kind: "smarthost", host: server.host, port: server.port, ...common };
  if (implicitTls) route.implicitTls = true;
  if (options.allowPlaintextAuth === true) route.allowPlaintextAuth = true;
  if (user !== undefined) {
    const secret: SecretSource = definedOnly({
      env: stringOption(opt(options, "passwordEnv")) ?? account?.password.env,
      file: absolute(stringOption(opt(options, "passwordFile")) ?? account?.password.file),
      command: stringOption(opt(options, "passwordCmd")) ?? account?.password.command,
    });
    if (Object.keys(secret).length === 0) {
      throw new UsageError(
        "--queue with --user needs the password by reference: give --password-env, --password-file or --password-cmd (the queue never stores a password)",
      );
    }
    const mechanism = stringOption(opt(options, "auth")) ?? account?.auth;
    route.auth = { username: user, secret, ...(mechanism ? { mechanism: mechanism.toUpperCase() } : {}) };
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
