import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createSecureContext } from "node:tls";
import { version } from "../../package.json" with { type: "json" };
import type { Envelope } from "../core/envelope.ts";
import { DEFAULT_MAX_SIZE } from "../core/server-session.ts";
import { ChaosSettingsError, parseDelaySpec, parseFailSpec } from "../http/chaos.ts";
import { HtpasswdError, type HtpasswdUsers, parseHtpasswd } from "../http/htpasswd.ts";
import type { HttpApi } from "../http/start-http-api.ts";
import type { ServerTlsOptions } from "../net/connection.ts";
import { makeSelfSignedCertificate } from "../net/self-signed.ts";
import { defaultDataDir } from "../queue/open-queue.ts";
import type { QueueRoute } from "../queue/route.ts";
import { loadAuthUsers } from "../serve/auth-users.ts";
import { catcherBackend } from "../serve/catcher-backend.ts";
import { Chaos } from "../serve/chaos.ts";
import { messageLogLine } from "../serve/message-log.ts";
import { DEFAULT_WEBHOOK_LIMIT, startWebhook, type Webhook, webhookUrl } from "../serve/webhook.ts";
import type { Backend, SessionInfo } from "../server/backend.ts";
import { isLoopback, type ListenAddress, startSmtpServer } from "../server/smtp-server.ts";
import { MAILBOX_FILE_NAME, openStore } from "../store/open-store.ts";
import type { StagedMessage, StoredEnvelope } from "../store/types.ts";
import { CliError, ExitCode, UsageError } from "./exit-codes.ts";
import {
  hostPort,
  listOption,
  numberOption,
  type OptionValue,
  parseDuration,
  stringOption,
} from "./option-values.ts";
import { type Relay, relayRoute, startRelay } from "./serve-relay.ts";

type Options = Record<string, unknown>;
const opt = (options: Options, name: string): OptionValue => options[name] as OptionValue;

/** How long SIGINT/SIGTERM lets transactions in flight finish. */
const SHUTDOWN_GRACE_MS = 5_000;

/** `25M`, `512k`, `1048576`, `25MiB`. */
export function parseSize(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${flag} wants a size like 25M, 512k or 1048576, not '${text}'`);
  const unit = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[
    (m[2] ?? "").toLowerCase() as "" | "k" | "m" | "g"
  ];
  return Math.floor(Number(m[1]) * unit);
}

function chaosFromFlags(options: Options): Chaos {
  try {
    return new Chaos({
      fail: listOption(opt(options, "fail"), false).map(parseFailSpec),
      delay: listOption(opt(options, "delay"), false).map(parseDelaySpec),
    });
  } catch (error) {
    if (error instanceof ChaosSettingsError) throw new UsageError(error.message);
    throw error;
  }
}

/** The given certificate, or a self-signed one for the hostname, made once and kept in the data dir. */
async function tlsOptions(
  options: Options,
  hostname: string,
  dataDir: string | undefined,
): Promise<ServerTlsOptions | undefined> {
  if (!smtpUsesTls(options) && options.httpTls !== true) return undefined;
  const certPath = stringOption(opt(options, "tlsCert"));
  const keyPath = stringOption(opt(options, "tlsKey"));
  if ((certPath === undefined) !== (keyPath === undefined))
    throw new UsageError("give --tls-cert and --tls-key together");
  if (certPath !== undefined && keyPath !== undefined) {
    for (const path of [certPath, keyPath]) {
      if (!(await Bun.file(path).exists())) throw new CliError(`${path} does not exist`, ExitCode.noInput);
    }
    const given = { cert: await Bun.file(certPath).text(), key: await Bun.file(keyPath).text() };
    // A file that is not PEM, or a key that does not match, would otherwise surface only at the
    // first STARTTLS, as a failed handshake on the client's side.
    try {
      createSecureContext(given);
    } catch (error) {
      throw new CliError(
        `--tls-cert ${certPath} / --tls-key ${keyPath}: ${errorText(error)}`,
        ExitCode.config,
      );
    }
    return given;
  }
  if (dataDir === undefined) return makeSelfSignedCertificate(hostname);
  const certPathKept = join(dataDir, `tls-${hostname}.crt`);
  const keyPathKept = join(dataDir, `tls-${hostname}.key`);
  const cert = Bun.file(certPathKept);
  const key = Bun.file(keyPathKept);
  if ((await cert.exists()) && (await key.exists()))
    return { cert: await cert.text(), key: await key.text() };
  const made = await makeSelfSignedCertificate(hostname);
  // Bun.write ignored `mode` here (measured on Bun 1.4.4: the key came out 0644); writeFile honours it.
  await writeFile(keyPathKept, made.key, { mode: 0o600 });
  await writeFile(certPathKept, made.cert);
  return made;
}

/** Whether the SMTP side offers TLS: STARTTLS (unless --no-starttls) or an --smtps listener. */
function smtpUsesTls(options: Options): boolean {
  return options.starttls !== false || listOption(opt(options, "smtps")).length > 0;
}

/** --http-auth-file's users; a missing file is 66, a malformed one 78. */
async function httpUsers(options: Options): Promise<HtpasswdUsers | undefined> {
  const path = stringOption(opt(options, "httpAuthFile"));
  if (path === undefined) return undefined;
  const file = Bun.file(path);
  if (!(await file.exists()))
    throw new CliError(`--http-auth-file: ${path} does not exist`, ExitCode.noInput);
  try {
    return parseHtpasswd(await file.text(), path);
  } catch (error) {
    if (error instanceof HtpasswdError) throw new CliError(error.message, ExitCode.config);
    throw error;
  }
}

function listenAddresses(options: Options): ListenAddress[] {
  const plain = listOption(opt(options, "listen"));
  const smtps = listOption(opt(options, "smtps"));
  const addresses: ListenAddress[] = (
    plain.length > 0 ? plain : smtps.length > 0 ? [] : ["127.0.0.1:1025"]
  ).map((text) => hostPort(text, "--listen", 1025));
  for (const text of smtps) addresses.push({ ...hostPort(text, "--smtps", 465), implicitTls: true });
  return addresses;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

export async function runServe(options: Options): Promise<void> {
  const memory = options.memory === true;
  const dataDir = memory ? undefined : (stringOption(opt(options, "dataDir")) ?? defaultDataDir());
  if (dataDir !== undefined) {
    await mkdir(dataDir, { recursive: true, mode: 0o700 }).catch((error: unknown) => {
      throw new CliError(
        `cannot use ${dataDir} as the data directory: ${errorText(error)}`,
        ExitCode.noInput,
      );
    });
  }
  const hostname = stringOption(opt(options, "hostname")) ?? (await import("node:os")).hostname();
  const httpText = stringOption(opt(options, "http")) ?? "127.0.0.1:8025";
  const http = httpText === "off" ? undefined : hostPort(httpText, "--http", 8025);
  const maxAge = stringOption(opt(options, "maxAge"));
  const maxSizeText = stringOption(opt(options, "maxSize"));
  const maxSize = maxSizeText === undefined ? DEFAULT_MAX_SIZE : parseSize(maxSizeText, "--max-size");
  const chaos = chaosFromFlags(options);
  const authUsersPath = stringOption(opt(options, "authUsers"));
  const users = authUsersPath === undefined ? undefined : await loadAuthUsers(authUsersPath);
  const listen = listenAddresses(options);
  const httpTls = options.httpTls === true;
  if (httpTls && http === undefined) throw new UsageError("--http-tls needs the HTTP API: drop --http off");
  const apiUsers = await httpUsers(options);
  if (apiUsers && http && !httpTls && !isLoopback(http.host) && options.allowInsecureAuth !== true) {
    throw new UsageError(
      `--http-auth-file on ${http.host} would take passwords in clear text: add --http-tls, or --allow-insecure-auth`,
    );
  }
  const tls = await tlsOptions(options, hostname, dataDir);
  const quiet = options.quiet === true;
  const logJson = options.logJson === true;
  const webhookText = stringOption(opt(options, "webhookUrl"));
  const webhookTarget = webhookText === undefined ? undefined : webhookUrl(webhookText);
  if (typeof webhookTarget === "string") throw new UsageError(webhookTarget);
  const webhookLimit = numberOption(opt(options, "webhookLimit"), "--webhook-limit") ?? DEFAULT_WEBHOOK_LIMIT;
  if (!Number.isInteger(webhookLimit))
    throw new UsageError(
      `--webhook-limit wants a whole number of requests per second, not '${webhookLimit}'`,
    );

  const mailbox = dataDir === undefined ? ":memory:" : join(dataDir, MAILBOX_FILE_NAME);
  const maxMessages = numberOption(opt(options, "maxMessages"), "--max-messages") ?? 5000;
  const maxAgeMs = maxAge === undefined ? undefined : parseDuration(maxAge, "--max-age");
  let store: ReturnType<typeof openStore>;
  try {
    store = openStore({ path: mailbox, maxMessages, ...(maxAgeMs === undefined ? {} : { maxAgeMs }) });
  } catch (error) {
    // Not a database, unreadable, or locked: one line, not a stack trace.
    throw new CliError(`cannot open the mailbox ${mailbox}: ${errorText(error)}`, ExitCode.noInput);
  }
  const webhook: Webhook | undefined =
    webhookTarget === undefined
      ? undefined
      : startWebhook({
          url: webhookTarget.href,
          limit: webhookLimit,
          store,
          userAgent: `smtpkit/${version}`,
          warn: (line) => process.stderr.write(`${line}\n`),
        });
  const route = relayRoute(options);
  const relay =
    route === undefined
      ? undefined
      : startRelay(options, route, {
          dataDir,
          hostname,
          checkedAuth: users !== undefined,
          ...(quiet ? {} : { log: (line: string) => process.stderr.write(`${line}\n`) }),
        });
  const onStored = quiet
    ? undefined
    : (id: string, raw: Uint8Array | StagedMessage, envelope: StoredEnvelope) =>
        print(messageLogLine(id, raw, envelope, new Date(), logJson));
  const catcher: Backend = catcherBackend({
    store,
    hostname,
    chaos,
    ...(users ? { users } : {}),
    ...(relay
      ? {
          forward: (raw: Uint8Array, envelope: Envelope, session: SessionInfo) =>
            relay.forward(raw, envelope, session.authUser !== undefined),
          keep: relay.keep,
        }
      : {}),
    ...(onStored ? { onStored } : {}),
  });

  const backend = relay ? relay.guard(catcher) : catcher;
  const server = await startSmtpServer({
    backend,
    hostname,
    listen,
    ...(tls && smtpUsesTls(options) ? { tls } : {}),
    maxSize,
    maxRecipients: numberOption(opt(options, "maxRecipients"), "--max-recipients", 1),
    maxConnections: numberOption(opt(options, "maxConnections"), "--max-connections"),
    maxConnectionsPerIp: numberOption(opt(options, "maxConnectionsPerIp"), "--max-connections-per-ip"),
    requireAuth: options.requireAuth === true,
    requireTls: options.requireTls === true,
    allowInsecureAuth: options.allowInsecureAuth === true,
    onError: (error) => process.stderr.write(`smtpkit: backend error: ${(error as Error).message}\n`),
  }).catch(async (error: Error) => {
    await webhook?.close();
    store.close();
    void relay?.close();
    throw new CliError(`cannot listen: ${error.message}`, ExitCode.unavailable);
  });

  const api = http
    ? await startApi(http, store, {
        chaos,
        relay,
        maxSize,
        onStored,
        users: apiUsers,
        tls: httpTls ? tls : undefined,
      }).catch(async (error: Error) => {
        await server.close(0);
        await webhook?.close();
        store.close();
        throw new CliError(
          `cannot start the HTTP API on ${http.host}:${http.port}: ${error.message}`,
          ExitCode.unavailable,
        );
      })
    : undefined;

  const where = server.listeners
    .map((l) => `${l.implicitTls ? "smtps" : "smtp"}://${l.host}:${l.port}`)
    .join(", ");
  if (!quiet) {
    process.stderr.write(
      `smtpkit ${version} serving ${where}${api ? `, API ${httpTls ? "https" : "http"}://${http?.host}:${api.port}` : ""}; ${relay && !relay.keep ? `relaying to ${describeRoute(relay.route)}` : `mail stored ${dataDir === undefined ? "in memory" : `in ${join(dataDir, MAILBOX_FILE_NAME)}`}${relay ? ` and relayed to ${describeRoute(relay.route)}` : ""}`}\n`,
    );
  }

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = async () => {
      // A second signal means "now": whatever is in flight is safe (leases expire, 250s are committed).
      if (stopping) process.exit(ExitCode.tempFail);
      stopping = true;
      await server.close(SHUTDOWN_GRACE_MS);
      await api?.close();
      // A delivery stuck on a silent upstream must not hold the shutdown: its lease expires and
      // the message is retried by the next worker.
      const relayClosed = relay
        ? await Promise.race([relay.close().then(() => true), Bun.sleep(SHUTDOWN_GRACE_MS).then(() => false)])
        : true;
      await webhook?.close();
      store.close();
      // The stuck delivery still holds sockets and timers that would keep the process alive.
      if (!relayClosed) process.exit(ExitCode.ok);
      resolve();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

function describeRoute(route: QueueRoute): string {
  return route.kind === "mx"
    ? "each recipient's MX"
    : `${route.implicitTls ? "smtps" : "smtp"}://${route.host}:${route.port}`;
}

async function startApi(
  http: { host: string; port: number },
  store: ReturnType<typeof openStore>,
  wiring: {
    chaos: Chaos;
    relay: Relay | undefined;
    maxSize: number;
    onStored: ((id: string, raw: Uint8Array, envelope: StoredEnvelope) => void) | undefined;
    users: HtpasswdUsers | undefined;
    tls: ServerTlsOptions | undefined;
  },
): Promise<HttpApi> {
  const { chaos, relay, maxSize, onStored, users, tls } = wiring;
  const { startHttpApi } = await import("../http/start-http-api.ts");
  return startHttpApi({
    host: http.host,
    port: http.port,
    store,
    version: version,
    getChaos: () => chaos.current,
    onChaos: (settings) => chaos.set(settings),
    ...(relay ? { onRelease: (raw, mailFrom, to) => relay.release(raw, mailFrom, to) } : {}),
    maxSize,
    ...(onStored ? { onStored } : {}),
    ...(users ? { users } : {}),
    ...(tls ? { tls } : {}),
  });
}
