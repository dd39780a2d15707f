/**
 * The probe itself: the stages of issue 4 in order, each recorded in a HostReport as it ends.
 * Every SMTP decision (EHLO→HELO fallback, STARTTLS discard, SASL steps, reply parsing) is the
 * core session's; this file chooses which stage comes next, and when to stop.
 */

import { hostname } from "node:os";
import { SmtpClientError } from "../client/errors.ts";
import { ProbeSession } from "../client/probe-session.ts";
import type { ClientTimeouts } from "../client/timeouts.ts";
import { formatTranscriptLine } from "../client/transcript.ts";
import { chooseSaslMechanism, type SaslCredentials } from "../core/auth-client.ts";
import type { Capabilities } from "../core/capabilities.ts";
import type { ClientEvent } from "../core/client-session.ts";
import type { Reply } from "../core/reply.ts";
import type { ClientTlsOptions, TlsInfo } from "../net/connection.ts";
import { createResolver, type MailExchanger, mailHostsFor, type Resolver } from "../net/dns.ts";
import { NetError } from "../net/net-error.ts";
import { ExitCode } from "./exit-codes.ts";
import { type Expectation, type ExpectStage, evaluateExpectations } from "./probe-expectations.ts";
import { addressLiteral, relayPatterns } from "./probe-relay-patterns.ts";
import { replyReport, tlsReport } from "./probe-report-data.ts";
import type {
  AuthReport,
  CommandReport,
  ErrorReport,
  ExtensionChanges,
  HelloReport,
  HostReport,
  ProbeReport,
  RecipientReport,
  RelayTestReport,
} from "./probe-types.ts";

export type StarttlsMode = "auto" | "always" | "never";

/** --quit-after stages, in the order they are reached. */
export const QUIT_AFTER_STAGES = ["connect", "banner", "ehlo", "tls", "auth", "mail", "rcpt"] as const;
export type QuitAfterStage = (typeof QUIT_AFTER_STAGES)[number];

export interface ProbeAuth {
  /** Undefined: the best mechanism both sides speak. */
  mechanism?: string;
  credentials: SaslCredentials;
  allowPlaintext: boolean;
}

export interface ProbeEnvelope {
  /** MAIL FROM and RCPT TO lines, formatted by the core (CRLF removed). */
  mailCommand: string;
  recipients: { address: string; command: string }[];
}

export interface ProbeSettings {
  /** As given, for the report. */
  target: string;
  /** Host or, with `mx`, the domain. */
  host: string;
  port: number;
  mx: boolean;
  /** "127.0.0.1:5353"; without it the system resolver. */
  dnsServer?: string;
  family?: 4 | 6;
  implicitTls: boolean;
  starttls: StarttlsMode;
  insecure: boolean;
  /** PEM text of the CAs to trust instead of the system set. */
  ca?: string;
  tlsServername?: string;
  helo?: string;
  timeouts: ClientTimeouts;
  auth?: ProbeAuth;
  envelope?: ProbeEnvelope;
  relayCheck: boolean;
  quitAfter?: QuitAfterStage;
  expectations: Expectation[];
}

/** Live progress, for the terminal report and -v. */
export interface ProbeHooks {
  /** A host's probe starts (before connect). */
  hostStarted?(host: HostReport): void;
  /** A stage's section of `host` is complete (e.g. "banner"). */
  stageDone?(host: HostReport, stage: keyof HostReport): void;
  /** One transcript line in swaks notation. */
  transcript?(line: string): void;
  hostDone?(host: HostReport): void;
}

/** A probe is a diagnosis: a reply that takes over a minute is itself the finding. */
export const PROBE_REPLY_TIMEOUT_MS = 60_000;
export const PROBE_CONNECT_TIMEOUT_MS = 30_000;

function ms(value: number): number {
  return Math.round(value * 10) / 10;
}

function emptyHost(host: string, port: number, preference: number | null, quitAfter?: string): HostReport {
  return {
    host,
    port,
    preference,
    connect: null,
    banner: null,
    ehlo: null,
    tls: null,
    ehloAfterTls: null,
    auth: null,
    envelope: null,
    relayCheck: null,
    quit: null,
    quitAfter: quitAfter ?? null,
    error: null,
    expectations: [],
    exitCode: ExitCode.ok,
    transcript: [],
  };
}

/** The exit code for what stopped a probe (DESIGN.md's table). */
export function exitCodeFor(error: ErrorReport): number {
  switch (error.kind) {
    case "dns":
      return ExitCode.noHost;
    case "tls-verify":
      return ExitCode.noPermission;
    case "tls-handshake":
    case "tls-unavailable":
    case "protocol":
      return ExitCode.protocol;
    default:
      return ExitCode.tempFail;
  }
}

/** What a driver or DNS failure means for the report; anything else is a bug and is rethrown. */
export function errorReport(error: unknown, stage?: string): ErrorReport {
  if (error instanceof SmtpClientError) {
    const kind = error.kind === "network" ? (error.netKind ?? "reset") : error.kind;
    return { stage: stage ?? error.stage, kind, message: error.message };
  }
  if (error instanceof NetError)
    return { stage: stage ?? "connect", kind: error.kind, message: error.message };
  throw error;
}

function helloReport(event: Extract<ClientEvent, { type: "hello" }>, took: number): HelloReport {
  const lines = event.reply.lines;
  const first = (lines[0] ?? "").trim();
  const extended = event.extended && event.ok;
  return {
    command: event.extended ? "EHLO" : "HELO",
    reply: replyReport(event.reply),
    ms: ms(took),
    ehloReply: event.ehloReply === undefined ? null : replyReport(event.ehloReply),
    domain: first === "" ? null : (first.split(" ")[0] ?? null),
    extensions: extended
      ? lines
          .slice(1)
          .map((line) => line.trim())
          .filter((line) => line !== "")
      : [],
    capabilities: event.capabilities,
  };
}

/** Extension lines that differ before and after TLS; keywords compare case-insensitively (RFC 5321 §2.4). */
export function extensionChanges(before: readonly string[], after: readonly string[]): ExtensionChanges {
  const norm = (line: string) => line.replace(/^[A-Za-z0-9-]+/, (keyword) => keyword.toUpperCase());
  const beforeSet = new Set(before.map(norm));
  const afterSet = new Set(after.map(norm));
  return {
    added: after.filter((line) => !beforeSet.has(norm(line))),
    removed: before.filter((line) => !afterSet.has(norm(line))),
  };
}

function commandReport(command: string, reply: Reply, took: number): CommandReport {
  return { command, reply: replyReport(reply), ms: ms(took) };
}

function isPositive(reply: Reply): boolean {
  return reply.code >= 200 && reply.code < 300;
}

/** RFC 5321 §4.1.1.1: an FQDN, or failing that an address literal of our end of the connection. */
export function defaultHelo(localAddress: string): string {
  const name = hostname();
  if (name.includes(".") && !name.endsWith(".")) return name;
  return localAddress === "" ? "localhost" : addressLiteral(localAddress);
}

/** Reply codes per --expect stage. */
export function codesByStage(host: HostReport): Map<ExpectStage, number[]> {
  const codes = new Map<ExpectStage, number[]>();
  const add = (stage: ExpectStage, code: number | undefined) => {
    if (code === undefined) return;
    const list = codes.get(stage) ?? [];
    list.push(code);
    codes.set(stage, list);
  };
  add("banner", host.banner?.reply.code);
  for (const hello of [host.ehlo, host.ehloAfterTls]) {
    if (hello === null) continue;
    if (hello.command === "EHLO") add("ehlo", hello.reply.code);
    else {
      add("ehlo", hello.ehloReply?.code);
      add("helo", hello.reply.code);
    }
  }
  add("starttls", host.tls?.starttls?.code);
  add("auth", host.auth?.reply?.code);
  add("mail", host.envelope?.mail.reply.code);
  for (const r of host.envelope?.recipients ?? []) add("rcpt", r.reply?.code);
  add("rset", host.envelope?.rset?.reply.code);
  add("quit", host.quit?.reply.code);
  return codes;
}

/** Probes one host; never throws for anything the server or network did. */
class HostProbe {
  readonly report: HostReport;
  private session: ProbeSession | undefined;
  private stage = "connect";

  constructor(
    private readonly settings: ProbeSettings,
    private readonly hooks: ProbeHooks,
    host: string,
    port: number,
    preference: number | null,
    private readonly resolver: Resolver | undefined,
  ) {
    this.report = emptyHost(host, port, preference, settings.quitAfter);
  }

  async run(): Promise<HostReport> {
    this.hooks.hostStarted?.(this.report);
    try {
      await this.stages();
    } catch (error) {
      this.report.error = errorReport(error, this.stage);
      this.session?.destroy();
    }
    this.finish();
    this.hooks.hostDone?.(this.report);
    return this.report;
  }

  private finish(): void {
    const r = this.report;
    r.expectations = evaluateExpectations(this.settings.expectations, codesByStage(r));
    if (r.error !== null) r.exitCode = exitCodeFor(r.error);
    else if (r.expectations.some((e) => !e.ok)) r.exitCode = ExitCode.expectationFailed;
    else r.exitCode = ExitCode.ok;
  }

  private done(stage: keyof HostReport): void {
    this.hooks.stageDone?.(this.report, stage);
  }

  private quitsAfter(stage: QuitAfterStage): boolean {
    return this.settings.quitAfter === stage;
  }

  private tlsOptions(): ClientTlsOptions {
    const s = this.settings;
    return {
      // Probe reports a certificate that does not verify and then decides itself (--insecure).
      insecure: true,
      ...(s.tlsServername === undefined ? {} : { servername: s.tlsServername }),
      ...(s.ca === undefined ? {} : { ca: s.ca }),
    };
  }

  private transcriptLine = (line: Parameters<typeof formatTranscriptLine>[0]): void => {
    const text = formatTranscriptLine(line);
    this.report.transcript.push(text);
    this.hooks.transcript?.(text);
  };

  private async stages(): Promise<void> {
    const s = this.settings;
    const r = this.report;
    const opened = await ProbeSession.open({
      host: r.host,
      port: r.port,
      implicitTls: s.implicitTls,
      tls: this.tlsOptions(),
      timeouts: s.timeouts,
      transcript: this.transcriptLine,
      ...(s.family === undefined ? {} : { family: s.family }),
      ...(this.resolver === undefined ? {} : { resolver: this.resolver }),
    });
    const session = opened.value;
    this.session = session;
    const c = session.connection;
    r.connect = {
      address: c.remoteAddress,
      port: c.remotePort,
      family: c.family,
      localAddress: c.localAddress,
      localPort: c.localPort,
      ms: ms(opened.ms),
    };
    this.done("connect");
    if (s.implicitTls && c.tls !== undefined) {
      r.tls = tlsReport("implicit", false, null, c.tls, null, null);
      this.done("tls");
      if (!this.tlsAcceptable(c.tls)) return this.quit();
    }
    if (this.quitsAfter("connect")) return this.close();

    this.stage = "banner";
    const greeting = await session.greeting();
    r.banner = { reply: replyReport(greeting.value.reply), ms: ms(greeting.ms) };
    this.done("banner");
    if (!greeting.value.ok || this.quitsAfter("banner")) return this.quit();

    this.stage = "ehlo";
    const helo = s.helo ?? defaultHelo(c.localAddress);
    const hello = await session.hello(helo);
    r.ehlo = helloReport(hello.value, hello.ms);
    this.done("ehlo");
    if (!hello.value.ok || this.quitsAfter("ehlo")) return this.quit();

    if (!s.implicitTls) {
      this.stage = "tls";
      const goOn = await this.startTls(hello.value.capabilities, helo);
      if (!goOn) return;
    }
    if (this.quitsAfter("tls")) return this.quit();

    if (s.auth !== undefined) {
      this.stage = "auth";
      await this.authenticate(s.auth);
    }
    if (this.quitsAfter("auth")) return this.quit();

    if (s.envelope !== undefined) {
      const stop = await this.envelope(s.envelope);
      if (stop) return this.quit();
    }
    if (s.relayCheck) {
      this.stage = "relay";
      await this.relayCheck();
    }
    return this.quit();
  }

  /** False when the certificate does not verify and --insecure was not given: the probe stops. */
  private tlsAcceptable(info: TlsInfo): boolean {
    if (info.authorized || this.settings.insecure) return true;
    this.report.error = {
      stage: "tls",
      kind: "tls-verify",
      message: `certificate did not verify: ${info.authorizationError ?? "unknown reason"} (--insecure to go on)`,
    };
    return false;
  }

  /** STARTTLS as --starttls says, then EHLO again. False when the probe must stop. */
  private async startTls(caps: Capabilities, helo: string): Promise<boolean> {
    const s = this.settings;
    const r = this.report;
    const session = this.session as ProbeSession;
    const offered = caps.startTls;
    if (s.starttls === "never" || (!offered && s.starttls === "auto")) {
      r.tls = tlsReport("none", offered, null, undefined, null, null);
      this.done("tls");
      return true;
    }
    if (!offered) {
      r.tls = tlsReport("none", false, null, undefined, null, "STARTTLS not offered");
      this.done("tls");
      r.error = {
        stage: "tls",
        kind: "tls-unavailable",
        message: "STARTTLS not offered (--starttls always)",
      };
      await this.quit();
      return false;
    }
    let result: Awaited<ReturnType<ProbeSession["startTls"]>>;
    try {
      result = await session.startTls();
    } catch (error) {
      const failure = errorReport(error, "tls");
      r.tls = tlsReport("starttls", true, null, undefined, null, failure.message);
      this.done("tls");
      throw error;
    }
    const { event, tls } = result.value;
    if (tls === undefined) {
      const refused = `STARTTLS refused: ${event.reply.code} ${event.reply.lines.join(" ")}`.trim();
      r.tls = tlsReport("none", true, event.reply, undefined, result.ms, refused);
      this.done("tls");
      if (s.starttls === "always") {
        r.error = { stage: "tls", kind: "tls-unavailable", message: `${refused} (--starttls always)` };
        await this.quit();
        return false;
      }
      return true;
    }
    r.tls = tlsReport("starttls", true, event.reply, tls, result.ms, null);
    this.done("tls");
    if (!this.tlsAcceptable(tls)) {
      await this.quit();
      return false;
    }
    this.stage = "ehlo";
    const again = await session.hello(helo);
    const report = helloReport(again.value, again.ms);
    r.ehloAfterTls = { ...report, changes: extensionChanges(r.ehlo?.extensions ?? [], report.extensions) };
    this.done("ehloAfterTls");
    if (!again.value.ok) {
      await this.quit();
      return false;
    }
    return true;
  }

  private async authenticate(auth: ProbeAuth): Promise<void> {
    const r = this.report;
    const session = this.session as ProbeSession;
    const offered = [...session.session.capabilities.auth];
    const skipped = (error: string): AuthReport => ({
      mechanism: auth.mechanism ?? null,
      offered,
      ok: false,
      reply: null,
      ms: null,
      error,
    });
    if (!session.session.tls && !auth.allowPlaintext) {
      r.auth = skipped(
        "not attempted: the connection is not encrypted (--allow-plaintext-auth to try anyway)",
      );
    } else if (offered.length === 0) {
      r.auth = skipped("not attempted: the server offers no AUTH mechanism");
    } else {
      const mechanism = auth.mechanism ?? chooseSaslMechanism(offered, session.session.tls);
      if (mechanism === undefined) {
        r.auth = skipped(`not attempted: no mechanism in common (the server offers ${offered.join(" ")})`);
      } else {
        const result = await session.auth(mechanism, auth.credentials);
        r.auth = {
          mechanism,
          offered,
          ok: result.value.ok,
          reply: replyReport(result.value.reply),
          ms: ms(result.ms),
          error: result.value.error ?? null,
        };
      }
    }
    this.done("auth");
  }

  /** MAIL, each RCPT, RSET. True when --quit-after stops the probe here. */
  private async envelope(envelope: ProbeEnvelope): Promise<boolean> {
    const r = this.report;
    const session = this.session as ProbeSession;
    this.stage = "mail";
    const mail = await session.command(envelope.mailCommand);
    const mailAccepted = isPositive(mail.value.reply);
    const recipients: RecipientReport[] = [];
    r.envelope = {
      mail: commandReport(envelope.mailCommand, mail.value.reply, mail.ms),
      mailAccepted,
      recipients,
      rset: null,
    };
    if (this.quitsAfter("mail")) {
      this.done("envelope");
      return true;
    }
    this.stage = "rcpt";
    for (const rcpt of envelope.recipients) {
      if (!mailAccepted) {
        recipients.push({ address: rcpt.address, command: null, reply: null, ms: null, accepted: false });
        continue;
      }
      const answer = await session.command(rcpt.command);
      recipients.push({
        address: rcpt.address,
        command: rcpt.command,
        reply: replyReport(answer.value.reply),
        ms: ms(answer.ms),
        accepted: isPositive(answer.value.reply),
      });
    }
    if (this.quitsAfter("rcpt")) {
      this.done("envelope");
      return true;
    }
    this.stage = "rset";
    const reset = await session.reset();
    r.envelope.rset = commandReport("RSET", reset.value.reply, reset.ms);
    this.done("envelope");
    return false;
  }

  private async relayCheck(): Promise<void> {
    const r = this.report;
    const session = this.session as ProbeSession;
    const localDomain = this.settings.mx
      ? this.settings.host
      : (r.ehloAfterTls?.domain ?? r.ehlo?.domain ?? this.report.host);
    const tests: RelayTestReport[] = [];
    r.relayCheck = { open: false, authenticated: session.session.authenticated, localDomain, tests };
    for (const pattern of relayPatterns({ localDomain, address: r.connect?.address ?? "" })) {
      const test: RelayTestReport = { ...pattern, mail: null, rcpt: null, accepted: false };
      tests.push(test);
      const mail = await session.command(`MAIL FROM:${pattern.mailFrom}`);
      test.mail = replyReport(mail.value.reply);
      if (isPositive(mail.value.reply)) {
        const rcpt = await session.command(`RCPT TO:${pattern.rcptTo}`);
        test.rcpt = replyReport(rcpt.value.reply);
        test.accepted = isPositive(rcpt.value.reply);
      }
      await session.reset();
    }
    r.relayCheck.open = tests.some((t) => t.accepted);
    this.done("relayCheck");
  }

  private async quit(): Promise<void> {
    const session = this.session;
    if (session === undefined) return;
    this.stage = "quit";
    const reply = await session.quit();
    if (reply !== undefined) {
      this.report.quit = commandReport("QUIT", reply.value, reply.ms);
      this.done("quit");
    }
  }

  private close(): void {
    this.session?.close();
  }
}

export async function runProbe(settings: ProbeSettings, hooks: ProbeHooks = {}): Promise<ProbeReport> {
  const report: ProbeReport = {
    target: settings.target,
    mx: settings.mx,
    hosts: [],
    error: null,
    exitCode: 0,
  };
  let resolver: Resolver | undefined;
  if (settings.dnsServer !== undefined) resolver = createResolver(settings.dnsServer);
  let targets: { host: string; preference: number | null }[];
  if (settings.mx) {
    resolver ??= createResolver();
    let exchangers: MailExchanger[];
    try {
      exchangers = await mailHostsFor(settings.host, resolver);
    } catch (error) {
      report.error = errorReport(error, "dns");
      report.exitCode = exitCodeFor(report.error);
      return report;
    }
    targets = exchangers.map((mx) => ({ host: mx.exchange, preference: mx.implicit ? null : mx.priority }));
  } else {
    targets = [{ host: settings.host, preference: null }];
  }
  for (const target of targets) {
    const probe = new HostProbe(settings, hooks, target.host, settings.port, target.preference, resolver);
    report.hosts.push(await probe.run());
  }
  report.exitCode = report.hosts.find((h) => h.exitCode !== 0)?.exitCode ?? 0;
  return report;
}
