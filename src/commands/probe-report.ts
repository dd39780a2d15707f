/**
 * The terminal report: one section per stage, each reply with the meaning of its codes, printed
 * as the stages finish so a slow server shows where it is slow. Color only when asked for (the
 * caller decides: a TTY and no NO_COLOR).
 */

import { ExitCode } from "./exit-codes.ts";
import type {
  CertificateReport,
  HelloReport,
  HostReport,
  ProbeReport,
  ReplyReport,
  TlsReport,
} from "./probe-types.ts";

export interface Style {
  good(text: string): string;
  warn(text: string): string;
  bad(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
}

const plainStyle: Style = {
  good: (t) => t,
  warn: (t) => t,
  bad: (t) => t,
  dim: (t) => t,
  bold: (t) => t,
};

const ansi =
  (open: number, close: number) =>
  (text: string): string =>
    `\x1b[${open}m${text}\x1b[${close}m`;

const colorStyle: Style = {
  good: ansi(32, 39),
  warn: ansi(33, 39),
  bad: ansi(31, 39),
  dim: ansi(2, 22),
  bold: ansi(1, 22),
};

/** https://no-color.org: any non-empty NO_COLOR turns color off. */
export function wantsColor(isTty: boolean, env: Record<string, string | undefined> = process.env): boolean {
  return isTty && (env.NO_COLOR ?? "") === "";
}

export function styleFor(color: boolean): Style {
  return color ? colorStyle : plainStyle;
}

/** Width of the stage label column. */
const LABEL_WIDTH = 10;
const INDENT = " ".repeat(LABEL_WIDTH);

function label(name: string): string {
  return name.padEnd(LABEL_WIDTH);
}

function took(ms: number | null | undefined, style: Style): string {
  if (ms === null || ms === undefined) return "";
  return style.dim(`  (${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms)`);
}

function codeStyle(code: number, style: Style): (text: string) => string {
  if (code >= 200 && code < 400) return style.good;
  if (code >= 400 && code < 500) return style.warn;
  return style.bad;
}

/** "250 2.1.5 Ok" on the first line, more text lines below, then what the codes mean. */
export function formatReply(reply: ReplyReport, style: Style, prefix = "", firstLineOnly = false): string[] {
  const head = `${reply.code}${reply.enhanced === null ? "" : ` ${reply.enhanced}`}`;
  const [first = "", ...rest] = reply.lines;
  const lines = [`${prefix}${codeStyle(reply.code, style)(head)}${first === "" ? "" : ` ${first}`}`];
  if (!firstLineOnly) for (const line of rest) lines.push(`${INDENT}  ${line}`);
  lines.push(`${INDENT}${style.dim(`= ${describeReply(reply)}`)}`);
  return lines;
}

/** "550: Requested action not taken: mailbox unavailable; 5.1.1: Bad destination mailbox address" */
export function describeReply(reply: ReplyReport): string {
  return reply.enhancedMeaning === null
    ? `${reply.code}: ${reply.meaning}`
    : `${reply.code}: ${reply.meaning}; ${reply.enhanced}: ${reply.enhancedMeaning}`;
}

/** The first line gets the stage label and the time; the rest are indented under it. */
function section(name: string, body: string[], ms: number | null | undefined, style: Style): string[] {
  const [first = "", ...rest] = body;
  return [`${style.bold(label(name))}${first}${took(ms, style)}`, ...rest];
}

function formatHello(hello: HelloReport, style: Style): string[] {
  const body: string[] = [];
  if (hello.ehloReply !== null) {
    body.push(...formatReply(hello.ehloReply, style, "EHLO "));
    body.push(...formatReply(hello.reply, style, `${INDENT}HELO `));
    return body;
  }
  const [first = "", ...meaning] = formatReply(hello.reply, style, "", hello.command === "EHLO");
  body.push(first, ...wrapList(hello.extensions).map((line) => `${INDENT}${line}`), ...meaning);
  return body;
}

/** Keeps a list of extensions readable: " · " between items, lines up to WRAP_AT characters. */
const WRAP_AT = 100;

export function wrapList(items: readonly string[]): string[] {
  const lines: string[] = [];
  let current = "";
  for (const item of items) {
    const next = current === "" ? item : `${current} · ${item}`;
    if (current !== "" && next.length > WRAP_AT) {
      lines.push(current);
      current = item;
    } else current = next;
  }
  if (current !== "") lines.push(current);
  return lines;
}

function yesNo(value: boolean | null, style: Style, yes = "yes", no = "no"): string {
  if (value === null) return style.dim("unknown");
  return value ? style.good(yes) : style.bad(no);
}

function formatCertificate(cert: CertificateReport, index: number, style: Style): string[] {
  const ago = -cert.daysLeft - 1;
  const days =
    cert.daysLeft < 0
      ? style.bad(`expired ${ago === 0 ? "less than a day" : ago === 1 ? "1 day" : `${ago} days`} ago`)
      : cert.daysLeft < 14
        ? style.warn(`${cert.daysLeft} days left`)
        : `${cert.daysLeft} days left`;
  const lines = [`${INDENT}#${index} ${cert.subject}`, `${INDENT}   issuer  ${cert.issuer}`];
  if (cert.subjectAltNames.length > 0) lines.push(`${INDENT}   names   ${cert.subjectAltNames.join(", ")}`);
  lines.push(`${INDENT}   valid   ${cert.notBefore} to ${cert.notAfter} (${days})`);
  lines.push(`${INDENT}   sha256  ${cert.fingerprintSha256}`);
  return lines;
}

/** The TLS section's lines (interactive mode prints them after a typed STARTTLS too). */
export function formatTls(tls: TlsReport, style: Style): string[] {
  const body: string[] = [];
  if (tls.mode === "none") {
    if (tls.starttls !== null) body.push(...formatReply(tls.starttls, style, "STARTTLS "));
    else
      body.push(
        tls.offered ? "STARTTLS offered, not used (--starttls never)" : style.warn("STARTTLS not offered"),
      );
    if (tls.error !== null) body.push(`${INDENT}${style.bad(tls.error)}`);
    return body;
  }
  if (tls.starttls !== null) body.push(...formatReply(tls.starttls, style, "STARTTLS "));
  else body.push(tls.mode === "implicit" ? "implicit TLS" : "STARTTLS");
  if (tls.error !== null) {
    body.push(`${INDENT}${style.bad(`handshake failed: ${tls.error}`)}`);
    return body;
  }
  body.push(`${INDENT}${tls.protocol ?? "?"}, ${tls.cipher ?? "?"}`);
  const name = tls.servername === null ? "" : ` ${tls.servername}`;
  body.push(
    `${INDENT}chain verified: ${yesNo(tls.chainVerified, style)} · name${name}: ${yesNo(tls.nameMatches, style, "matches", "does not match")}`,
  );
  if (tls.verifyError !== null) body.push(`${INDENT}${style.bad(tls.verifyError)}`);
  tls.certificates.forEach((cert, i) => {
    body.push(...formatCertificate(cert, i, style));
  });
  return body;
}

/** "<bob@example.com>" from "RCPT TO:<bob@example.com>". */
function pathOf(command: string): string {
  return command.replace(/^(MAIL FROM|RCPT TO):/i, "");
}

/** The lines for one finished stage of `host`. */
export function formatStage(host: HostReport, stage: keyof HostReport, style: Style): string[] {
  switch (stage) {
    case "connect": {
      const c = host.connect;
      if (c === null) return [];
      const where = c.family === 6 ? `[${c.address}]:${c.port}` : `${c.address}:${c.port}`;
      const from = c.family === 6 ? `[${c.localAddress}]:${c.localPort}` : `${c.localAddress}:${c.localPort}`;
      return section("connect", [`${where} over IPv${c.family}, from ${from}`], c.ms, style);
    }
    case "banner":
      return host.banner === null
        ? []
        : section("banner", formatReply(host.banner.reply, style), host.banner.ms, style);
    case "ehlo":
      return host.ehlo === null ? [] : section("ehlo", formatHello(host.ehlo, style), host.ehlo.ms, style);
    case "tls":
      return host.tls === null ? [] : section("tls", formatTls(host.tls, style), host.tls.ms, style);
    case "ehloAfterTls": {
      const again = host.ehloAfterTls;
      if (again === null) return [];
      const body = formatHello(again, style);
      for (const line of again.changes.added) body.push(`${INDENT}${style.good(`+ ${line}`)}`);
      for (const line of again.changes.removed) body.push(`${INDENT}${style.warn(`- ${line}`)}`);
      if (again.changes.added.length + again.changes.removed.length === 0)
        body.push(`${INDENT}${style.dim("(same extensions as before TLS)")}`);
      return section("ehlo/tls", body, again.ms, style);
    }
    case "auth": {
      const auth = host.auth;
      if (auth === null) return [];
      if (auth.reply === null)
        return section("auth", [style.warn(auth.error ?? "not attempted")], null, style);
      const body = formatReply(auth.reply, style, `${auth.mechanism ?? ""} `);
      if (auth.error !== null) body.push(`${INDENT}${style.bad(auth.error)}`);
      return section("auth", body, auth.ms, style);
    }
    case "envelope": {
      const env = host.envelope;
      if (env === null) return [];
      const lines = section(
        "mail",
        formatReply(env.mail.reply, style, `${pathOf(env.mail.command)}  `),
        env.mail.ms,
        style,
      );
      for (const r of env.recipients) {
        const body =
          r.command === null || r.reply === null
            ? [style.dim(`${r.address}: not sent (MAIL was refused)`)]
            : formatReply(r.reply, style, `${pathOf(r.command)}  `);
        lines.push(...section("rcpt", body, r.ms, style));
      }
      if (env.rset !== null)
        lines.push(...section("rset", formatReply(env.rset.reply, style), env.rset.ms, style));
      return lines;
    }
    case "relayCheck": {
      const relay = host.relayCheck;
      if (relay === null) return [];
      const accepted = relay.tests.filter((t) => t.accepted).length;
      const verdict = relay.open
        ? style.bad(`OPEN RELAY: ${accepted} of ${relay.tests.length} patterns accepted`)
        : style.good(`not an open relay: 0 of ${relay.tests.length} patterns accepted`);
      const body = [verdict];
      if (relay.authenticated)
        body.push(
          `${INDENT}${style.warn("(the session was authenticated: relaying may be allowed on purpose)")}`,
        );
      for (const t of relay.tests) {
        const decided = t.rcpt ?? t.mail;
        const code =
          decided === null
            ? "-"
            : `${decided.code}${decided.enhanced === null ? "" : ` ${decided.enhanced}`}`;
        const mark = t.accepted ? style.bad("accepted") : style.good("refused ");
        const at = t.rcpt === null ? "at MAIL" : "at RCPT";
        body.push(
          `${INDENT}${mark} ${code.padEnd(10)} ${style.dim(at)}  ${t.rcptTo}  ${style.dim(t.description)}`,
        );
      }
      return section("relay", body, null, style);
    }
    case "quit":
      return host.quit === null
        ? []
        : section("quit", formatReply(host.quit.reply, style), host.quit.ms, style);
    default:
      return [];
  }
}

/** Before a host's sections, when there may be several hosts (--mx); a blank line parts them. */
export function formatHostHeader(host: HostReport, style: Style, first = true): string[] {
  const pref = host.preference === null ? "" : ` (MX preference ${host.preference})`;
  const header = style.bold(`── ${host.host} port ${host.port}${pref}`);
  return first ? [header] : ["", header];
}

const EXIT_MEANINGS: Readonly<Record<number, string>> = {
  [ExitCode.ok]: "probe complete",
  [ExitCode.expectationFailed]: "an --expect did not hold",
  [ExitCode.noHost]: "host or domain not found",
  [ExitCode.tempFail]: "connection refused, closed or timed out",
  [ExitCode.protocol]: "TLS or protocol failure",
  [ExitCode.noPermission]: "certificate did not verify",
};

export function describeExit(code: number): string {
  return EXIT_MEANINGS[code] ?? "";
}

/** After a host's sections: what stopped it, and the expectations. */
export function formatHostFooter(host: HostReport, style: Style): string[] {
  const lines: string[] = [];
  if (host.error !== null) {
    lines.push(`${style.bold(label("error"))}${style.bad(`${host.error.stage}: ${host.error.message}`)}`);
  }
  if (host.quitAfter !== null && host.error === null) {
    lines.push(`${style.bold(label("stopped"))}${style.dim(`after ${host.quitAfter} (--quit-after)`)}`);
  }
  host.expectations.forEach((e, i) => {
    const verdict = e.ok
      ? style.good(`${e.expectation} held`)
      : style.bad(`${e.expectation} FAILED: ${e.reason}`);
    lines.push(`${style.bold(label(i === 0 ? "expect" : ""))}${verdict}`);
  });
  return lines;
}

/** The last line: the exit code and why. */
export function formatSummary(report: ProbeReport, style: Style): string[] {
  const lines: string[] = [];
  if (report.error !== null) {
    lines.push(`${style.bold(label("error"))}${style.bad(`${report.error.stage}: ${report.error.message}`)}`);
  }
  if (report.mx && report.hosts.length > 1) {
    const ok = report.hosts.filter((h) => h.exitCode === 0).length;
    lines.push(`${style.bold(label("hosts"))}${ok} of ${report.hosts.length} probed cleanly`);
  }
  const meaning = describeExit(report.exitCode);
  const text = `exit ${report.exitCode}${meaning === "" ? "" : ` (${meaning})`}`;
  lines.push(`${style.bold(label("result"))}${report.exitCode === 0 ? style.good(text) : style.bad(text)}`);
  return lines;
}

/** The whole report at once (what the live printer produces, for tests and non-live use). */
export function formatReport(report: ProbeReport, style: Style = plainStyle): string {
  const stages: (keyof HostReport)[] = [
    "connect",
    "banner",
    "ehlo",
    "tls",
    "ehloAfterTls",
    "auth",
    "envelope",
    "relayCheck",
    "quit",
  ];
  const lines: string[] = [];
  report.hosts.forEach((host, index) => {
    if (report.mx) lines.push(...formatHostHeader(host, style, index === 0));
    // Implicit TLS is negotiated before the banner; the report keeps the order it happened in.
    const order: (keyof HostReport)[] =
      host.tls?.mode === "implicit"
        ? ["connect", "tls", ...stages.filter((s) => s !== "connect" && s !== "tls")]
        : stages;
    for (const stage of order) lines.push(...formatStage(host, stage, style));
    lines.push(...formatHostFooter(host, style));
  });
  lines.push(...formatSummary(report, style));
  return `${lines.join("\n")}\n`;
}
