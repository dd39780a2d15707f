/**
 * The connection flags `send` takes, merged over the chosen account (flags win): read once here
 * for both ways a message leaves, now (send-run.ts reads the files) or later through the queue
 * (queue-send.ts keeps files and secrets by reference).
 */
import type { Account, SecretSource } from "../config/accounts.ts";
import { normalizeFingerprint } from "../net/tls-fingerprint.ts";
import { UsageError } from "./exit-codes.ts";
import { choiceOption, hostPort, numberOption, type OptionValue, stringOption } from "./option-values.ts";

type Options = Record<string, unknown>;
const opt = (options: Options, name: string): OptionValue => options[name] as OptionValue;

export type StartTlsMode = "auto" | "always" | "never";

export interface ConnectionFlags {
  server?: { host: string; port: number };
  implicitTls: boolean;
  family?: 4 | 6;
  user?: string;
  /** Given, else from the account; "always" when authenticating, so a password never goes in clear. */
  starttls: StartTlsMode;
  timeoutSeconds?: number;
  chunking: boolean;
  helo?: string;
  insecure: boolean;
  /** "AA:BB:..." of --tls-fingerprint or the account's tls_fingerprint: trust that certificate only. */
  fingerprint?: string;
  servername?: string;
  caPath?: string;
  certPath?: string;
  keyPath?: string;
  allowPlaintextAuth: boolean;
  /** Where the password comes from (never the password itself). */
  secret: SecretSource;
  mechanism?: string;
  dns?: string;
}

export function connectionFlags(options: Options, account: Account | undefined): ConnectionFlags {
  if (options["4"] && options["6"]) throw new UsageError("give -4 or -6, not both");
  const implicitTls = options.tls === true || account?.tls === "implicit";
  const serverText = stringOption(opt(options, "server")) ?? account?.server;
  const user = stringOption(opt(options, "user")) ?? account?.user;
  const starttlsFlag = choiceOption(opt(options, "starttls"), "--starttls", [
    "auto",
    "always",
    "never",
  ] as const);
  const mechanism = stringOption(opt(options, "auth")) ?? account?.auth;
  const fingerprint =
    pinnedFingerprint(options, "tlsFingerprint", "--tls-fingerprint", "insecure", "--insecure") ??
    account?.tlsFingerprint;
  if (fingerprint !== undefined && options.insecure === true)
    throw new UsageError("give --tls-fingerprint or --insecure, not both");
  return {
    server:
      serverText === undefined
        ? undefined
        : hostPort(serverText, "--server", account?.port ?? (implicitTls ? 465 : 25)),
    implicitTls,
    family: options["4"] ? 4 : options["6"] ? 6 : undefined,
    user,
    starttls:
      starttlsFlag ??
      (account?.tls === "none" ? "never" : account?.tls === "starttls" || user ? "always" : "auto"),
    timeoutSeconds: numberOption(opt(options, "timeout"), "--timeout", 1),
    chunking: options.chunking !== false,
    helo: stringOption(opt(options, "helo")) ?? account?.helo,
    insecure: options.insecure === true,
    ...(fingerprint === undefined ? {} : { fingerprint }),
    servername: stringOption(opt(options, "tlsServername")),
    caPath: stringOption(opt(options, "ca")),
    certPath: stringOption(opt(options, "clientCert")),
    keyPath: stringOption(opt(options, "clientKey")),
    allowPlaintextAuth: options.allowPlaintextAuth === true,
    secret: {
      env: stringOption(opt(options, "passwordEnv")) ?? account?.password.env,
      file: stringOption(opt(options, "passwordFile")) ?? account?.password.file,
      command: stringOption(opt(options, "passwordCmd")) ?? account?.password.command,
    },
    mechanism: mechanism?.toUpperCase(),
    dns: stringOption(opt(options, "dns")),
  };
}

/**
 * A fingerprint flag (send's --tls-fingerprint, serve's --relay-tls-fingerprint) in openssl's
 * "AA:BB:..." form; a value that is not a SHA-256 fingerprint, or the flag beside its
 * don't-verify twin, is a usage error.
 */
export function pinnedFingerprint(
  options: Options,
  key: string,
  flag: string,
  insecureKey: string,
  insecureFlag: string,
): string | undefined {
  const text = stringOption(opt(options, key));
  if (text === undefined) return undefined;
  const fingerprint = normalizeFingerprint(text);
  if (fingerprint === undefined) {
    throw new UsageError(
      `${flag} wants the certificate's SHA-256 fingerprint (64 hex digits, colons allowed), not '${text}'`,
    );
  }
  if (options[insecureKey] === true) throw new UsageError(`give ${flag} or ${insecureFlag}, not both`);
  return fingerprint;
}
