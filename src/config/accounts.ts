import { CliError, ExitCode } from "../commands/exit-codes.ts";
import { normalizeFingerprint } from "../net/tls-fingerprint.ts";

/** How a connection is secured: implicit TLS (smtps, port 465), STARTTLS, or plain. */
export type TlsMode = "implicit" | "starttls" | "none";

/** Where an account's secret comes from; never the secret itself (it would sit in a file in clear). */
export interface SecretSource {
  env?: string;
  file?: string;
  command?: string;
}

export interface Account {
  name: string;
  server?: string;
  port?: number;
  tls?: TlsMode;
  auth?: string;
  user?: string;
  password: SecretSource;
  from?: string;
  helo?: string;
  /** "AA:BB:...": trust the server's certificate with this SHA-256 fingerprint, and no other. */
  tlsFingerprint?: string;
  isDefault: boolean;
}

export interface AccountsFile {
  path: string;
  accounts: Map<string, Account>;
}

const TLS_MODES: readonly TlsMode[] = ["implicit", "starttls", "none"];
const AUTH_MECHANISMS = ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"];

/** The keys an account table may hold, each with the check its value must pass. */
const ACCOUNT_KEYS: Record<string, (value: unknown) => string | undefined> = {
  server: (v) => (typeof v === "string" && v.length > 0 ? undefined : "must be a host name"),
  port: (v) =>
    typeof v === "number" && Number.isInteger(v) && v > 0 && v < 65536 ? undefined : "must be a port 1-65535",
  tls: (v) => (TLS_MODES.includes(v as TlsMode) ? undefined : `must be one of ${TLS_MODES.join(", ")}`),
  auth: (v) =>
    typeof v === "string" && AUTH_MECHANISMS.includes(v.toUpperCase())
      ? undefined
      : `must be one of ${AUTH_MECHANISMS.join(", ")}`,
  user: (v) => (typeof v === "string" ? undefined : "must be a string"),
  password_env: (v) =>
    typeof v === "string" && v.length > 0 ? undefined : "must name an environment variable",
  password_file: (v) => (typeof v === "string" && v.length > 0 ? undefined : "must be a file path"),
  password_cmd: (v) => (typeof v === "string" && v.length > 0 ? undefined : "must be a command"),
  from: (v) => (typeof v === "string" ? undefined : "must be an address"),
  helo: (v) => (typeof v === "string" && v.length > 0 ? undefined : "must be a host name"),
  tls_fingerprint: (v) =>
    typeof v === "string" && normalizeFingerprint(v) !== undefined
      ? undefined
      : "must be a SHA-256 fingerprint (64 hex digits, colons allowed)",
  default: (v) => (typeof v === "boolean" ? undefined : "must be true or false"),
};

/** The default location, as msmtp and most XDG tools use it. */
export function defaultConfigPath(env: Record<string, string | undefined> = process.env): string {
  const base = env.XDG_CONFIG_HOME || `${env.HOME ?? "."}/.config`;
  return `${base}/smtpkit/config.toml`;
}

function configError(path: string, line: number | undefined, problem: string): CliError {
  const where = line === undefined ? path : `${path}:${line}`;
  return new CliError(`${where}: ${problem}`, ExitCode.config);
}

/**
 * Bun's TOML parser does not say where a syntax error is, so find the first line whose prefix no
 * longer parses. Good enough for the flat tables a config file holds.
 */
function syntaxErrorLine(text: string): number | undefined {
  const lines = text.split("\n");
  for (let count = 1; count <= lines.length; count++) {
    try {
      Bun.TOML.parse(lines.slice(0, count).join("\n"));
    } catch {
      return count;
    }
  }
  return undefined;
}

/** The line on which `key` is set inside `[accounts.NAME]`, for pointing at a bad value. */
function keyLine(text: string, account: string, key?: string): number | undefined {
  const lines = text.split("\n");
  const header = new RegExp(
    `^\\s*\\[\\s*accounts\\.("?)${account.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\1\\s*\\]`,
  );
  let inside = false;
  for (const [index, line] of lines.entries()) {
    if (/^\s*\[/.test(line)) {
      inside = header.test(line);
      if (inside && key === undefined) return index + 1;
      continue;
    }
    if (inside && key !== undefined && new RegExp(`^\\s*"?${key}"?\\s*=`).test(line)) return index + 1;
  }
  return undefined;
}

export function parseAccounts(path: string, text: string): AccountsFile {
  let document: unknown;
  try {
    document = Bun.TOML.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message.replace(/^TOML Parse error: /, "") : String(error);
    throw configError(path, syntaxErrorLine(text), `not valid TOML: ${reason}`);
  }
  const accounts = new Map<string, Account>();
  const root = document as Record<string, unknown>;
  for (const key of Object.keys(root)) {
    if (key !== "accounts")
      throw configError(
        path,
        undefined,
        `unknown top-level key '${key}'; only [accounts.NAME] tables are allowed`,
      );
  }
  const tables = root.accounts ?? {};
  if (typeof tables !== "object" || tables === null || Array.isArray(tables)) {
    throw configError(path, undefined, "'accounts' must be tables like [accounts.work]");
  }
  let defaultName: string | undefined;
  for (const [name, table] of Object.entries(tables)) {
    if (typeof table !== "object" || table === null || Array.isArray(table)) {
      throw configError(path, keyLine(text, name), `account '${name}' must be a table [accounts.${name}]`);
    }
    const values = table as Record<string, unknown>;
    for (const [key, value] of Object.entries(values)) {
      const check = ACCOUNT_KEYS[key];
      const line = keyLine(text, name, key);
      if (!check) {
        const hint =
          key === "password"
            ? " (store a password_cmd, password_env or password_file, never the password)"
            : "";
        throw configError(path, line, `account '${name}': unknown key '${key}'${hint}`);
      }
      const problem = check(value);
      if (problem) throw configError(path, line, `account '${name}': ${key} ${problem}`);
    }
    const isDefault = values.default === true;
    if (isDefault && defaultName) {
      throw configError(
        path,
        keyLine(text, name, "default"),
        `accounts '${defaultName}' and '${name}' are both marked default`,
      );
    }
    if (isDefault) defaultName = name;
    accounts.set(name, {
      name,
      server: values.server as string | undefined,
      port: values.port as number | undefined,
      tls: values.tls as TlsMode | undefined,
      auth: (values.auth as string | undefined)?.toUpperCase(),
      user: values.user as string | undefined,
      password: {
        env: values.password_env as string | undefined,
        file: values.password_file as string | undefined,
        command: values.password_cmd as string | undefined,
      },
      from: values.from as string | undefined,
      helo: values.helo as string | undefined,
      ...(typeof values.tls_fingerprint === "string"
        ? { tlsFingerprint: normalizeFingerprint(values.tls_fingerprint) }
        : {}),
      isDefault,
    });
  }
  return { path, accounts };
}

/** Reads the config file; a missing default file is no error (no accounts), a missing named one is. */
export async function loadAccounts(path: string | undefined): Promise<AccountsFile> {
  const chosen = path ?? defaultConfigPath();
  const file = Bun.file(chosen);
  if (!(await file.exists())) {
    if (path !== undefined) throw configError(chosen, undefined, "config file not found");
    return { path: chosen, accounts: new Map() };
  }
  return parseAccounts(chosen, await file.text());
}

/** The account named by --account, else the one marked default, else none. */
export function pickAccount(file: AccountsFile, name: string | undefined): Account | undefined {
  if (name !== undefined) {
    const account = file.accounts.get(name);
    if (!account) {
      const known = [...file.accounts.keys()].join(", ") || "none";
      throw configError(file.path, undefined, `no account named '${name}' (accounts: ${known})`);
    }
    return account;
  }
  return [...file.accounts.values()].find((account) => account.isDefault);
}
