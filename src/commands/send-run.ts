import { hostname } from "node:os";
import { SmtpClientError } from "../client/errors.ts";
import type { DomainDelivery } from "../client/mx-delivery.ts";
import { PreparedMessage } from "../client/prepared-message.ts";
import { type ClientAuthOptions, type ClientOptions, SmtpClient } from "../client/smtp-client.ts";
import { uniformTimeouts } from "../client/timeouts.ts";
import { type ClientTranscriptLine, formatTranscriptLine } from "../client/transcript.ts";
import { chooseAccount } from "../config/account-choice.ts";
import type { Account } from "../config/accounts.ts";
import { formatPath, mailboxNeedsUtf8 } from "../core/address.ts";
import type { Envelope } from "../core/envelope.ts";
import { emptyMailParams, emptyRcptParams, type NotifyType } from "../core/esmtp-params.ts";
import { type ConnectionFlags, connectionFlags } from "./connection-flags.ts";
import { describeFailure, exitCodeForDeliveries } from "./delivery-outcome.ts";
import { ExitCode, UsageError } from "./exit-codes.ts";
import { mxPortFromEnvironment } from "./mx-port.ts";
import { choiceOption, listOption, numberOption, type OptionValue, stringOption } from "./option-values.ts";
import { type Composition, composeMessage, readFileBytes, readTextFile } from "./send-compose.ts";

type Options = Record<string, unknown>;

const opt = (options: Options, name: string): OptionValue => options[name] as OptionValue;

/** Where and how to connect, after flags and the account are merged (flags win). */
export interface Route {
  server?: { host: string; port: number };
  dns?: string;
  client: Omit<ClientOptions, "host" | "port">;
  /** The flags it came from; the password (flags.secret) is read only when a connection needs it. */
  flags: ConnectionFlags;
}

async function readStdin(): Promise<Uint8Array> {
  return new Uint8Array(await new Response(Bun.stdin.stream()).arrayBuffer());
}

async function readBody(options: Options): Promise<string | undefined> {
  const body = stringOption(opt(options, "body"));
  const bodyFile = stringOption(opt(options, "bodyFile"));
  if (body !== undefined && bodyFile !== undefined)
    throw new UsageError("give --body or --body-file, not both");
  if (body !== undefined) return body;
  if (bodyFile !== undefined)
    return bodyFile === "-"
      ? new TextDecoder().decode(await readStdin())
      : readTextFile(bodyFile, "--body-file");
  return undefined;
}

/** The message and envelope, from --raw or from the flags. */
export async function compose(options: Options, account: Account | undefined): Promise<Composition> {
  const from = stringOption(opt(options, "from")) ?? account?.from;
  const to = listOption(opt(options, "to"));
  const cc = listOption(opt(options, "cc"));
  const bcc = listOption(opt(options, "bcc"));
  const raw = stringOption(opt(options, "raw"));
  if (raw !== undefined) {
    const bytes = raw === "-" ? await readStdin() : await readFileBytes(raw, "--raw");
    const fromAddress = from === undefined ? undefined : composeAddress(from);
    const { composeRaw } = await import("./send-raw.ts");
    return composeRaw(bytes, fromAddress, [...to, ...cc, ...bcc].map(composeAddress));
  }
  let text = await readBody(options);
  const htmlText = stringOption(opt(options, "html"));
  const htmlFile = stringOption(opt(options, "htmlFile"));
  const html = htmlText ?? (htmlFile === undefined ? undefined : await readTextFile(htmlFile, "--html-file"));
  if (text === undefined && html === undefined && !process.stdin.isTTY) {
    // As mail(1) and msmtp do in cron jobs: the body comes from standard input.
    text = new TextDecoder().decode(await readStdin());
  }
  return composeMessage({
    from,
    to,
    cc,
    bcc,
    replyTo: listOption(opt(options, "replyTo")),
    subject: stringOption(opt(options, "subject")),
    headers: listOption(opt(options, "header"), false),
    text,
    html,
    attachments: listOption(opt(options, "attach"), false),
    inline: listOption(opt(options, "inline"), false),
    now: new Date(),
  });
}

/** The bare address of `Name <addr>`, for envelopes given as flags next to a raw message. */
function composeAddress(text: string): string {
  const angle = /<([^>]*)>\s*$/.exec(text);
  return angle ? (angle[1] ?? "") : text.trim();
}

async function readFileText(path: string | undefined, flag: string): Promise<string | undefined> {
  return path === undefined ? undefined : readTextFile(path, flag);
}

/** Flags merged over the chosen account, certificate files read. */
export async function resolveRoute(options: Options, account: Account | undefined): Promise<Route> {
  const flags = connectionFlags(options, account);
  const [ca, cert, key] = await Promise.all([
    readFileText(flags.caPath, "--ca"),
    readFileText(flags.certPath, "--client-cert"),
    readFileText(flags.keyPath, "--client-key"),
  ]);
  const client: Route["client"] = {
    helo: flags.helo ?? hostname(),
    implicitTls: flags.implicitTls,
    starttls: flags.starttls,
    chunking: flags.chunking,
    allowPlaintextAuth: flags.allowPlaintextAuth,
    tls: {
      insecure: flags.insecure,
      ...(flags.fingerprint === undefined ? {} : { fingerprint: flags.fingerprint }),
      servername: flags.servername,
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
    },
  };
  if (flags.family) client.family = flags.family;
  if (flags.timeoutSeconds !== undefined) client.timeouts = uniformTimeouts(flags.timeoutSeconds * 1000);
  return { server: flags.server, dns: flags.dns, client, flags };
}

/** The password is read only now, when a connection will use it (and secret.ts loads only then). */
async function authOptions(flags: ConnectionFlags, user: string): Promise<ClientAuthOptions> {
  const { promptSecret, readSecret } = await import("../config/secret.ts");
  const password =
    (await readSecret(flags.secret, "password")) ?? (await promptSecret(`Password for ${user}`));
  if (password === undefined) {
    throw new UsageError("--user needs a password: give --password-env, --password-file or --password-cmd");
  }
  return { username: user, password, ...(flags.mechanism ? { mechanism: flags.mechanism } : {}) };
}

/** The envelope with the DSN parameters of --notify, --ret and --envid (sendmail: -N, -R, -V). */
export function dsnEnvelope(options: Options, composition: Composition): Envelope {
  const notifyText = stringOption(opt(options, "notify"));
  let notify: NotifyType[] | undefined;
  if (notifyText !== undefined) {
    const words = notifyText.split(",").map((w) => w.trim().toUpperCase());
    const allowed = ["NEVER", "SUCCESS", "FAILURE", "DELAY"];
    const bad = words.find((w) => !allowed.includes(w));
    if (bad !== undefined || (words.includes("NEVER") && words.length > 1)) {
      throw new UsageError("--notify takes never, or a list of success,failure,delay");
    }
    notify = words as NotifyType[];
  }
  const ret = choiceOption(opt(options, "ret"), "--ret", ["full", "hdrs"] as const);
  const envid = stringOption(opt(options, "envid"));
  const mailParams = emptyMailParams();
  if (ret) mailParams.ret = ret === "full" ? "FULL" : "HDRS";
  if (envid !== undefined) mailParams.envid = envid;
  if (composition.from.mailbox && mailboxNeedsUtf8(composition.from.mailbox)) mailParams.smtpUtf8 = true;
  return {
    from: composition.from,
    mailParams,
    recipients: composition.recipients.map((path) => {
      const params = emptyRcptParams();
      if (notify) params.notify = notify;
      return { path, params };
    }),
  };
}

/** `--dry-run`: the envelope as MAIL and RCPT lines, then the message, on stdout. */
export function printDryRun(envelope: Envelope, composition: Composition): void {
  const lines = [
    `MAIL FROM:${formatPath(envelope.from)}`,
    ...envelope.recipients.map((r) => `RCPT TO:${formatPath(r.path)}`),
    "",
  ];
  process.stdout.write(lines.join("\n"));
  process.stdout.write(composition.message);
}

/** swaks' notation, plus how long the server took, after the last line of each reply. */
function transcriptWithTiming(line: ClientTranscriptLine): string {
  const text = formatTranscriptLine(line);
  const lastReplyLine = line.direction === "received" && /^\d{3}(?: |$)/.test(line.text);
  return lastReplyLine && line.elapsedMs !== undefined ? `${text}  [${line.elapsedMs.toFixed(1)} ms]` : text;
}

/** Verbose transcript and credentials on the route's client options, as `send` and `sendmail` share them. */
export async function configureClient(route: Route, options: Options): Promise<void> {
  if (options.verbose === true) {
    route.client.transcript = (line) => process.stderr.write(`${transcriptWithTiming(line)}\n`);
  }
  if (route.flags.user !== undefined) route.client.auth = await authOptions(route.flags, route.flags.user);
}

/** The message framed once for DATA or BDAT, with what the envelope needs of the server. */
export function prepareMessage(composition: Composition, envelope: Envelope): PreparedMessage {
  return new PreparedMessage(composition.message, {
    eightBit: composition.eightBit,
    smtpUtf8: envelope.mailParams.smtpUtf8 === true,
  });
}

export interface ReportOptions {
  json: boolean;
  printId: boolean;
  allowPartial: boolean;
}

/**
 * Delivers (smarthost or MX), quits, and reports: the JSON document on stdout with --json, else
 * one line per failure on stderr, and the Message-ID with --print-id. Returns the exit code.
 */
export async function deliverAndReport(
  route: Route,
  envelope: Envelope,
  composition: Composition,
  message: PreparedMessage,
  report: ReportOptions,
): Promise<ExitCode> {
  const started = performance.now();
  const deliveries = await deliver(route, envelope, message);
  const exitCode = exitCodeForDeliveries(deliveries, report.allowPartial);
  await Promise.all(deliveries.map((d) => d.client?.quit().catch(() => undefined)));

  if (report.json) {
    const { deliveryJson } = await import("./delivery-json.ts");
    const document = {
      messageId: composition.messageId ?? null,
      size: message.size,
      from: formatPath(envelope.from).slice(1, -1),
      deliveries: deliveries.map(deliveryJson),
      totalMs: Math.round((performance.now() - started) * 10) / 10,
      exitCode,
    };
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  }
  for (const delivery of deliveries) {
    const failure = describeFailure(delivery);
    if (failure && !report.json) process.stderr.write(`smtpkit: ${failure}\n`);
  }
  if (exitCode === ExitCode.ok && report.printId && composition.messageId) {
    process.stdout.write(`${composition.messageId}\n`);
  }
  return exitCode;
}

/** Runs `smtpkit send` and exits with the code DESIGN.md gives for what happened. */
export async function runSend(options: Options): Promise<void> {
  const account = await chooseAccount({
    config: stringOption(opt(options, "config")),
    account: stringOption(opt(options, "account")),
    server: stringOption(opt(options, "server")),
  });
  const composition = await compose(options, account);
  const envelope = dsnEnvelope(options, composition);
  if (options.dryRun === true) return printDryRun(envelope, composition);
  if (options.queue === true) {
    const { enqueueSend } = await import("./queue-send.ts");
    const messageId = composition.messageId === undefined ? {} : { messageId: composition.messageId };
    return enqueueSend(options, account, envelope, composition.message, {
      json: options.json === true,
      ...messageId,
    });
  }

  const route = await resolveRoute(options, account);
  await configureClient(route, options);
  const message = prepareMessage(composition, envelope);

  const repeat = numberOption(opt(options, "repeat"), "--repeat", 1);
  const parallel = numberOption(opt(options, "parallel"), "--parallel", 1);
  if (repeat !== undefined || parallel !== undefined) {
    if (!route.server)
      throw new UsageError("--repeat/--parallel need --server (load mode talks to one server)");
    const { runLoad } = await import("./send-load.ts");
    const code = await runLoad(
      { ...route.client, ...route.server },
      envelope,
      message,
      repeat ?? 1,
      parallel ?? 1,
      options.json === true,
    );
    process.exit(code);
  }

  const exitCode = await deliverAndReport(route, envelope, composition, message, {
    json: options.json === true,
    printId: options.printId === true,
    allowPartial: options.allowPartial === true,
  });
  if (exitCode !== ExitCode.ok) process.exit(exitCode);
}

/** Through the smarthost when there is one, else to each recipient domain's MX. */
export async function deliver(
  route: Route,
  envelope: Envelope,
  message: PreparedMessage,
): Promise<DomainDelivery[]> {
  if (route.server) {
    const delivery: DomainDelivery = { domain: "", recipients: envelope.recipients, attempts: [] };
    try {
      const client = await SmtpClient.connect({ ...route.client, ...route.server });
      delivery.client = client;
      delivery.result = await client.send(envelope, message);
    } catch (error) {
      if (!(error instanceof SmtpClientError)) throw error;
      delivery.error = error;
    }
    return [delivery];
  }
  // Loaded only for direct delivery: a smarthost needs no resolver of ours, and node:dns adds to
  // every run's start-up time.
  const [{ createResolver }, { deliverToDomain, groupByDomain }] = await Promise.all([
    import("../net/dns.ts"),
    import("../client/mx-delivery.ts"),
  ]);
  const resolver = createResolver(route.dns);
  // 25, unless the SMTPKIT_MX_PORT test hook says otherwise (read only here: a smarthost needs no port of it).
  const mxPort = mxPortFromEnvironment();
  const groups = groupByDomain(envelope.recipients);
  return Promise.all(
    [...groups].map(([domain, recipients]) =>
      deliverToDomain(domain, { ...envelope, recipients }, message, resolver, (host) => ({
        ...route.client,
        host,
        port: mxPort,
      })),
    ),
  );
}
