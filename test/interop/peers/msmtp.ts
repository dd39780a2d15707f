// msmtp as a sendmail-style client: the message on stdin, recipients as arguments. --host makes it
// ignore every configuration file, so only what we pass here counts.

import { LOOPBACK } from "./ports.ts";
import { requirePeer } from "./require-peer.ts";
import { type ProcessResult, runProcess } from "./run-process.ts";

const DEFAULT_TIMEOUT_MS = 30_000;
/** The environment variable msmtp's --passwordeval reads the password from (kept off the command line). */
const PASSWORD_VARIABLE = "SMTPKIT_MSMTP_PASSWORD";

export interface MsmtpOptions {
  port: number;
  host?: string;
  from: string;
  recipients: string[];
  message: Uint8Array | string;
  /** "starttls": plain connect then STARTTLS; "implicit": TLS from the first byte. Default: no TLS. */
  tls?: "starttls" | "implicit";
  /** A CA (PEM file path) to verify the server with; without it certificate checks are turned off. */
  trustFile?: string;
  auth?: { user: string; password: string; mechanism?: "plain" | "login" | "cram-md5" };
  /** EHLO name. */
  domain?: string;
  /** More msmtp flags. */
  args?: string[];
  timeoutMs?: number;
}

/** Sends one message. Exit code 0 on success; msmtp uses sysexits codes (e.g. 69, 75, 77) otherwise. */
/** The msmtp command line and environment for these options (the message goes on stdin). */
export function msmtpCommand(options: Omit<MsmtpOptions, "message" | "timeoutMs">): {
  command: string[];
  env: Record<string, string>;
} {
  const msmtp = requirePeer("msmtp");
  const args = [
    `--host=${options.host ?? LOOPBACK}`,
    `--port=${options.port}`,
    `--from=${options.from}`,
    `--domain=${options.domain ?? "msmtp.test"}`,
  ];
  if (options.tls !== undefined) {
    args.push("--tls=on", `--tls-starttls=${options.tls === "starttls" ? "on" : "off"}`);
    args.push(options.trustFile ? `--tls-trust-file=${options.trustFile}` : "--tls-certcheck=off");
  }
  const env: Record<string, string> = {};
  if (options.auth) {
    args.push(`--auth=${options.auth.mechanism ?? "on"}`, `--user=${options.auth.user}`);
    args.push(`--passwordeval=printf %s "$${PASSWORD_VARIABLE}"`);
    env[PASSWORD_VARIABLE] = options.auth.password;
  }
  args.push(...(options.args ?? []), "--", ...options.recipients);
  return { command: [msmtp, ...args], env };
}

export function runMsmtp(options: MsmtpOptions): Promise<ProcessResult> {
  const { command, env } = msmtpCommand(options);
  return runProcess(command, {
    stdin: options.message,
    env,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  });
}
