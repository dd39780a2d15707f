/**
 * `smtpkit probe HOST -i`: the telnet session SMTP tutorials teach, made safe. Each typed line
 * goes out with CRLF; each reply comes back with the meaning of its codes. STARTTLS switches to
 * TLS for real, AUTH PLAIN/LOGIN (and the other mechanisms smtpkit speaks) ask for a user and a
 * password and build the exchange themselves, lines typed after DATA's 354 are dot-stuffed until
 * a lone ".", and a command that needs an extension the server did not advertise asks first.
 */

import { SmtpClientError } from "../client/errors.ts";
import { ProbeSession } from "../client/probe-session.ts";
import { formatTranscriptLine } from "../client/transcript.ts";
import { isSaslMechanism } from "../core/auth-client.ts";
import type { Reply } from "../core/reply.ts";
import type { TlsInfo } from "../net/connection.ts";
import { createResolver, mailHostsFor, type Resolver } from "../net/dns.ts";
import { ExitCode } from "./exit-codes.ts";
import { LineReader } from "./probe-line-reader.ts";
import { describeReply, formatTls, type Style, styleFor, wantsColor } from "./probe-report.ts";
import { replyReport, tlsReport } from "./probe-report-data.ts";
import { defaultHelo, errorReport, exitCodeFor, type ProbeSettings } from "./probe-runner.ts";
import { completeVerb, parseTypedAuth, unadvertisedUse, verbOf } from "./probe-typed-commands.ts";

export interface InteractiveIo {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

export interface InteractiveOptions {
  /** Show the lines sent too (the replies are always shown). */
  verbose: boolean;
  io?: InteractiveIo;
}

const encoder = new TextEncoder();
const YES = /^\s*y(es)?\s*$/i;

class InteractiveSession {
  private readonly style: Style;
  private readonly reader: LineReader;
  private helloDone = false;

  constructor(
    private readonly settings: ProbeSettings,
    private readonly options: InteractiveOptions,
    private readonly io: InteractiveIo,
  ) {
    const terminal = io.input.isTTY === true && io.output.isTTY === true;
    this.style = styleFor(wantsColor(io.output.isTTY === true));
    this.reader = new LineReader({ input: io.input, output: io.output, terminal, completer: completeVerb });
  }

  private print(...lines: string[]): void {
    for (const line of lines) this.io.output.write(`${line}\n`);
  }

  private problem(text: string): void {
    this.print(this.style.bad(`*** ${text}`));
  }

  private meaning(reply: Reply): void {
    this.print(this.style.dim(`    = ${describeReply(replyReport(reply))}`));
  }

  async run(): Promise<number> {
    let session: ProbeSession | undefined;
    try {
      session = await this.connect();
      return await this.converse(session);
    } catch (error) {
      const report = errorReport(error);
      session?.destroy();
      this.problem(`${report.stage}: ${report.message}`);
      return exitCodeFor(report);
    } finally {
      this.reader.close();
    }
  }

  /** The host, or each MX host in preference order until one answers. */
  private async connect(): Promise<ProbeSession> {
    const s = this.settings;
    let resolver: Resolver | undefined = s.dnsServer === undefined ? undefined : createResolver(s.dnsServer);
    let hosts = [s.host];
    if (s.mx) {
      resolver ??= createResolver();
      hosts = (await mailHostsFor(s.host, resolver)).map((mx) => mx.exchange);
    }
    let lastError: unknown;
    for (const host of hosts) {
      try {
        const opened = await ProbeSession.open({
          host,
          port: s.port,
          implicitTls: s.implicitTls,
          tls: {
            insecure: true,
            ...(s.tlsServername === undefined ? {} : { servername: s.tlsServername }),
            ...(s.ca === undefined ? {} : { ca: s.ca }),
          },
          timeouts: s.timeouts,
          transcript: (line) => {
            if (line.direction === "sent" && !this.options.verbose) return;
            this.print(
              line.direction === "received"
                ? formatTranscriptLine(line)
                : this.style.dim(formatTranscriptLine(line)),
            );
          },
          ...(s.family === undefined ? {} : { family: s.family }),
          ...(resolver === undefined ? {} : { resolver }),
        });
        return opened.value;
      } catch (error) {
        if (!(error instanceof SmtpClientError)) throw error;
        lastError = error;
        if (hosts.length > 1) this.problem(error.message);
      }
    }
    throw lastError;
  }

  private async converse(session: ProbeSession): Promise<number> {
    const implicit = session.connection.tls;
    if (implicit !== undefined && !this.tlsAcceptable(implicit, null)) {
      await session.quit();
      return ExitCode.noPermission;
    }
    const greeting = await session.greeting();
    this.meaning(greeting.value.reply);
    this.print(
      this.style.dim(
        `=== Type SMTP commands (EHLO ${this.settings.helo ?? defaultHelo(session.connection.localAddress)} to start); Ctrl-D quits.`,
      ),
    );
    for (;;) {
      if (session.closed || session.session.state === "closed") {
        // We did not say QUIT: the server went away (421, or a hang-up), a temporary failure.
        this.print(this.style.dim("=== connection closed"));
        return ExitCode.tempFail;
      }
      const inBody = session.session.state === "body";
      const prompt = inBody ? "" : session.session.tls ? "smtp~> " : "smtp> ";
      const line = await this.reader.read(prompt);
      if (line === null) return this.endOfInput(session, inBody);
      if (inBody) {
        await this.bodyLine(session, line);
        continue;
      }
      const typed = line.trim();
      if (typed === "") continue;
      const stop = await this.send(session, typed);
      if (stop !== undefined) return stop;
    }
  }

  private async endOfInput(session: ProbeSession, inBody: boolean): Promise<number> {
    if (inBody) this.problem("input ended inside DATA: the message was not finished, so it is not delivered");
    if (inBody) {
      session.destroy();
      return ExitCode.ok;
    }
    const reply = await session.quit();
    if (reply !== undefined) this.meaning(reply.value);
    return ExitCode.ok;
  }

  /** After 354: a lone "." ends the message; any other line is dot-stuffed by the core session. */
  private async bodyLine(session: ProbeSession, line: string): Promise<void> {
    if (line === ".") {
      const reply = await session.endBody();
      this.meaning(reply.value);
      return;
    }
    session.writeBody(encoder.encode(`${line}\r\n`));
  }

  /** Sends one typed command; returns an exit code when the session is over. */
  private async send(session: ProbeSession, typed: string): Promise<number | undefined> {
    const caps = session.session.capabilities;
    const warning = unadvertisedUse(typed, caps, this.helloDone);
    if (warning !== undefined && !(await this.confirm(`${warning}. Send it anyway?`))) return undefined;
    const verb = verbOf(typed);
    const auth = verb === "AUTH" ? parseTypedAuth(typed) : undefined;
    if (auth !== undefined && auth.initialResponse === undefined && isSaslMechanism(auth.mechanism)) {
      await this.authenticate(session, auth.mechanism);
      return undefined;
    }
    const masked = auth?.initialResponse === undefined ? undefined : `AUTH ${auth.mechanism} ********`;
    const { value } = await session.command(typed, masked);
    this.meaning(value.reply);
    const positive = value.reply.code >= 200 && value.reply.code < 300;
    if ((verb === "EHLO" || verb === "HELO") && positive) this.helloDone = true;
    if (value.tls !== undefined) {
      this.helloDone = false;
      if (!this.tlsAcceptable(value.tls, value.reply)) {
        await session.quit();
        return ExitCode.noPermission;
      }
    }
    if (verb === "QUIT") {
      session.close();
      return ExitCode.ok;
    }
    return undefined;
  }

  private async authenticate(session: ProbeSession, mechanism: string): Promise<void> {
    if (
      !session.session.tls &&
      !(await this.confirm("the connection is not encrypted: the password can be read on the way. Go on?"))
    )
      return;
    const username = await this.reader.read(mechanism === "XOAUTH2" ? "user: " : "username: ");
    if (username === null) return;
    const password = await this.reader.readSecret(mechanism === "XOAUTH2" ? "token: " : "password: ");
    if (password === null) return;
    const result = await session.auth(mechanism, { username, password });
    if (result.value.error !== undefined) this.problem(result.value.error);
    this.meaning(result.value.reply);
  }

  private async confirm(question: string): Promise<boolean> {
    this.print(this.style.warn(`*** ${question} [y/N]`));
    const answer = await this.reader.read("? ");
    return answer !== null && YES.test(answer);
  }

  /** Prints what TLS brought; false when the certificate does not verify and --insecure was not given. */
  private tlsAcceptable(info: TlsInfo, reply: Reply | null): boolean {
    const report = tlsReport(reply === null ? "implicit" : "starttls", true, null, info, null, null);
    const [, ...details] = formatTls(report, this.style);
    this.print(...details.map((line) => line.replace(/^ {10}/, "    ")));
    if (info.authorized || this.settings.insecure) return true;
    this.problem(
      `certificate did not verify: ${info.authorizationError ?? "unknown reason"} (--insecure to go on)`,
    );
    return false;
  }
}

export async function runInteractive(settings: ProbeSettings, options: InteractiveOptions): Promise<number> {
  const io = options.io ?? { input: process.stdin, output: process.stdout };
  return new InteractiveSession(settings, options, io).run();
}
