/** Turns `smtpkit probe` flags into ProbeSettings, refusing contradictions with exit 64. */

import { readFile } from "node:fs/promises";
import { uniformTimeouts } from "../client/timeouts.ts";
import { promptSecret, readSecret } from "../config/secret.ts";
import { AddressError, type Path, parsePath, pathNeedsUtf8 } from "../core/address.ts";
import { isSaslMechanism, SASL_MECHANISMS } from "../core/auth-client.ts";
import { formatCommand } from "../core/command.ts";
import type { EsmtpParam } from "../core/esmtp-params.ts";
import { createResolver } from "../net/dns.ts";
import { CliError, ExitCode, UsageError } from "./exit-codes.ts";
import {
  choiceOption,
  hostPort,
  listOption,
  numberOption,
  type OptionValue,
  stringOption,
} from "./option-values.ts";
import { type Expectation, type ExpectStage, parseExpectation } from "./probe-expectations.ts";
import {
  PROBE_CONNECT_TIMEOUT_MS,
  PROBE_REPLY_TIMEOUT_MS,
  type ProbeAuth,
  type ProbeEnvelope,
  type ProbeSettings,
  QUIT_AFTER_STAGES,
  type QuitAfterStage,
  type StarttlsMode,
} from "./probe-runner.ts";

/** RFC 5321 §3.1 / RFC 8314 §3.3: submission over implicit TLS listens on 465, relay on 25. */
export const SMTP_PORT = 25;
export const SMTPS_PORT = 465;

export type ProbeOutput = "report" | "json";

export interface ProbeCommand {
  settings: ProbeSettings;
  output: ProbeOutput;
  verbose: boolean;
  interactive: boolean;
}

/** How far into the session each --expect stage lies, against QUIT_AFTER_STAGES' indexes; QUIT is always sent. */
const EXPECT_DEPTH: Readonly<Record<ExpectStage, number>> = {
  quit: -1,
  banner: 1,
  ehlo: 2,
  helo: 2,
  starttls: 3,
  auth: 4,
  mail: 5,
  rcpt: 6,
  rset: 7,
};

const ASCII_ONLY = /^[\x00-\x7f]*$/;

/** `bob@example.com` or `<bob@example.com>`; `<>` is the null path. */
export function parseProbePath(text: string, flag: string): Path {
  const trimmed = text.trim();
  const bracketed = trimmed.startsWith("<") ? trimmed : `<${trimmed}>`;
  try {
    return parsePath(bracketed, { utf8: !ASCII_ONLY.test(bracketed) });
  } catch (error) {
    if (error instanceof AddressError) {
      throw new CliError(`${flag} ${text}: ${error.message}`, ExitCode.dataError);
    }
    throw error;
  }
}

/** RFC 6531 §3.4: SMTPUTF8 on MAIL when any address of the envelope needs it. */
export function buildEnvelope(from: string | undefined, rcpts: readonly string[]): ProbeEnvelope {
  const fromPath = from === undefined ? ({ mailbox: null } satisfies Path) : parseProbePath(from, "--from");
  const rcptPaths = rcpts.map((r) => ({ text: r, path: parseProbePath(r, "--rcpt") }));
  const utf8 = pathNeedsUtf8(fromPath) || rcptPaths.some((r) => pathNeedsUtf8(r.path));
  const mailParams: EsmtpParam[] = utf8 ? [{ name: "SMTPUTF8" }] : [];
  const line = (text: string) => text.slice(0, -2);
  return {
    mailCommand: line(formatCommand({ verb: "MAIL", path: fromPath, params: mailParams })),
    recipients: rcptPaths.map((r) => ({
      address: r.text,
      command: line(formatCommand({ verb: "RCPT", path: r.path, params: [] })),
    })),
  };
}

function checkExpectations(
  expectations: readonly Expectation[],
  context: {
    quitAfter: QuitAfterStage | undefined;
    auth: boolean;
    from: boolean;
    rcpt: boolean;
    starttls: boolean;
  },
): void {
  const limit = context.quitAfter === undefined ? Infinity : QUIT_AFTER_STAGES.indexOf(context.quitAfter);
  for (const e of expectations) {
    const needs =
      (e.stage === "auth" && !context.auth && "--user") ||
      ((e.stage === "mail" || e.stage === "rset") && !context.from && !context.rcpt && "--from or --rcpt") ||
      (e.stage === "rcpt" && !context.rcpt && "--rcpt") ||
      (e.stage === "starttls" && !context.starttls && "STARTTLS (not with --tls or --starttls never)");
    if (needs) throw new UsageError(`--expect ${e.text}: that stage needs ${needs}`);
    if (EXPECT_DEPTH[e.stage] > limit) {
      throw new UsageError(`--expect ${e.text}: --quit-after ${context.quitAfter} stops before ${e.stage}`);
    }
  }
}

async function readCa(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new CliError(`--ca ${path}: ${reason}`, ExitCode.noInput);
  }
}

/** Asks for a secret on the terminal; tests pass one that never asks. */
export type SecretPrompt = (message: string) => Promise<string | undefined>;

async function authSettings(
  options: Record<string, OptionValue>,
  prompt: SecretPrompt,
): Promise<ProbeAuth | undefined> {
  const user = stringOption(options.user);
  const mechanism = stringOption(options.auth)?.toUpperCase();
  if (mechanism !== undefined && !isSaslMechanism(mechanism)) {
    throw new UsageError(`--auth ${mechanism}: smtpkit speaks ${SASL_MECHANISMS.join(", ")}`);
  }
  if (user === undefined) {
    if (mechanism !== undefined) throw new UsageError("--auth needs --user");
    for (const flag of ["passwordEnv", "passwordFile", "passwordCmd"] as const) {
      if (options[flag] !== undefined) throw new UsageError("a password flag needs --user");
    }
    return undefined;
  }
  const source = {
    ...(stringOption(options.passwordEnv) === undefined ? {} : { env: stringOption(options.passwordEnv) }),
    ...(stringOption(options.passwordFile) === undefined ? {} : { file: stringOption(options.passwordFile) }),
    ...(stringOption(options.passwordCmd) === undefined
      ? {}
      : { command: stringOption(options.passwordCmd) }),
  };
  const password = (await readSecret(source, "password")) ?? (await prompt(`Password for ${user}`));
  if (password === undefined) {
    throw new UsageError("--user needs a password: --password-env, --password-file or --password-cmd");
  }
  return {
    ...(mechanism === undefined ? {} : { mechanism }),
    credentials: { username: user, password },
    allowPlaintext: options.allowPlaintextAuth === true,
  };
}

export async function parseProbeCommand(
  target: string | undefined,
  options: Record<string, OptionValue>,
  prompt: SecretPrompt = promptSecret,
): Promise<ProbeCommand> {
  if (target === undefined || target === "") throw new UsageError("probe needs a TARGET (HOST[:PORT])");
  const implicitTls = options.tls === true;
  const mx = options.mx === true;
  const { host, port } = hostPort(target, "TARGET", implicitTls ? SMTPS_PORT : SMTP_PORT);
  if (options["4"] === true && options["6"] === true) throw new UsageError("-4 and -6 exclude each other");
  const family = options["4"] === true ? 4 : options["6"] === true ? 6 : undefined;

  const starttls: StarttlsMode =
    choiceOption(options.starttls, "--starttls", ["auto", "always", "never"]) ?? "auto";
  if (implicitTls && stringOption(options.starttls) !== undefined) {
    throw new UsageError("--tls (implicit TLS) and --starttls exclude each other");
  }
  const quitAfter = choiceOption(options.quitAfter, "--quit-after", QUIT_AFTER_STAGES);
  const seconds = numberOption(options.timeout, "--timeout", 0.001);
  const timeouts =
    seconds === undefined
      ? { ...uniformTimeouts(PROBE_REPLY_TIMEOUT_MS), connect: PROBE_CONNECT_TIMEOUT_MS }
      : uniformTimeouts(Math.round(seconds * 1000));

  const from = stringOption(options.from);
  const rcpts = listOption(options.rcpt);
  const envelope = from !== undefined || rcpts.length > 0 ? buildEnvelope(from, rcpts) : undefined;
  const expectations = listOption(options.expect, false).map(parseExpectation);
  const interactive = options.interactive === true;
  const json = options.json === true;

  if (interactive) {
    for (const [flag, given] of [
      ["--json", json],
      ["--expect", expectations.length > 0],
      ["--relay-check", options.relayCheck === true],
      ["--quit-after", quitAfter !== undefined],
      ["--from/--rcpt", envelope !== undefined],
      ["--user", options.user !== undefined],
    ] as const) {
      if (given) throw new UsageError(`${flag} does not go with --interactive (type the commands instead)`);
    }
  }

  const auth = await authSettings(options, prompt);
  checkExpectations(expectations, {
    quitAfter,
    auth: auth !== undefined,
    from: from !== undefined,
    rcpt: rcpts.length > 0,
    starttls: !implicitTls && starttls !== "never",
  });
  const dnsServer = stringOption(options.dns);
  if (dnsServer !== undefined) {
    try {
      createResolver(dnsServer);
    } catch (error) {
      throw new UsageError(`--dns: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const ca = await readCa(stringOption(options.ca));
  const servername = stringOption(options.tlsServername);
  const helo = stringOption(options.helo);

  const settings: ProbeSettings = {
    target,
    host,
    port,
    mx,
    implicitTls,
    starttls,
    insecure: options.insecure === true,
    timeouts,
    relayCheck: options.relayCheck === true,
    expectations,
    ...(dnsServer === undefined ? {} : { dnsServer }),
    ...(family === undefined ? {} : { family }),
    ...(ca === undefined ? {} : { ca }),
    ...(servername === undefined ? {} : { tlsServername: servername }),
    ...(helo === undefined ? {} : { helo }),
    ...(auth === undefined ? {} : { auth }),
    ...(envelope === undefined ? {} : { envelope }),
    ...(quitAfter === undefined ? {} : { quitAfter }),
  };
  return { settings, output: json ? "json" : "report", verbose: options.verbose === true, interactive };
}
