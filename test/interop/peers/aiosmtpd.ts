// Python's aiosmtpd (Debian's python3-aiosmtpd, 1.4.x) as a test server, driven by aiosmtpd_server.py.
// It keeps each message's content bytes exactly as received (dot-unstuffed, CRLF kept).

import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { LOOPBACK } from "./ports.ts";
import { requirePeer } from "./require-peer.ts";
import { type Daemon, startDaemon } from "./run-process.ts";
import { isPemText, makeTempDir, removeTempDir } from "./temp-dir.ts";
import { waitForBanner } from "./wait-for-banner.ts";
import { waitForMessages } from "./wait-for-messages.ts";

const SERVER_SCRIPT = join(import.meta.dir, "aiosmtpd_server.py");
/** Names the server in its greeting and EHLO reply; set so aiosmtpd never asks DNS for our FQDN. */
const DEFAULT_HOSTNAME = "aiosmtpd.test";
const READY_LINE = /^READY (\d+)$/m;

/** A certificate and key, each as PEM text or as a path to a PEM file. cert may hold the whole chain. */
export interface TlsFiles {
  cert: string;
  key: string;
}

export type AuthMechanism = "PLAIN" | "LOGIN" | "CRAM-MD5";

export interface AiosmtpdAuth {
  /** user name → password. */
  users: Record<string, string>;
  /** Default: all three. */
  mechanisms?: AuthMechanism[];
  /** Offer and allow AUTH only after STARTTLS (aiosmtpd's auth_require_tls). Default true; moot under implicit TLS. */
  requireTls?: boolean;
  /** Refuse MAIL and DATA until authenticated (aiosmtpd's auth_required). */
  required?: boolean;
}

export interface AiosmtpdOptions {
  /** Greeting and EHLO name. Default "aiosmtpd.test". */
  hostname?: string;
  /** Offer STARTTLS with this certificate. */
  starttls?: TlsFiles;
  /** Refuse everything but EHLO/STARTTLS/QUIT before TLS (aiosmtpd's require_starttls). */
  requireStarttls?: boolean;
  /** TLS from the first byte (SMTPS, RFC 8314) with this certificate. Not together with starttls. */
  implicitTls?: TlsFiles;
  /**
   * AUTH with these users. Without it aiosmtpd's own default remains: AUTH PLAIN LOGIN offered only
   * after STARTTLS, and every attempt fails with 535.
   */
  auth?: AiosmtpdAuth;
  /** Offer SMTPUTF8. */
  smtputf8?: boolean;
  /** The SIZE limit in octets; default aiosmtpd's 33554432; 0 turns SIZE off. */
  dataSizeLimit?: number;
  /** recipient address (case-insensitive) → the whole reply line to give its RCPT, e.g. "550 5.1.1 No such user". */
  rcptReplies?: Record<string, string>;
}

export interface AiosmtpdMessage {
  mailFrom: string;
  rcptTos: string[];
  /** MAIL FROM parameters, upper-cased by aiosmtpd (e.g. ["SIZE=123", "BODY=8BITMIME"]). */
  mailOptions: string[];
  /** RCPT TO parameters of all recipients, in order. */
  rcptOptions: string[];
  heloName: string | null;
  peer: string | null;
  /** Whether this message came over TLS (STARTTLS or implicit). */
  tls: boolean;
  /** The authenticated user name, if any. */
  authLogin: string | null;
  /** The content as received: after dot-unstuffing, line ends untouched. */
  raw: Uint8Array;
}

export interface Aiosmtpd {
  host: string;
  port: number;
  /** The server process (e.g. to SIGKILL it in the middle of a delivery). */
  pid: number;
  greeting: string;
  /** Every message accepted so far, oldest first. */
  messages(): Promise<AiosmtpdMessage[]>;
  /** Waits until at least count messages arrived (throws after timeoutMs, default 10 s). */
  waitForMessages(count: number, timeoutMs?: number): Promise<AiosmtpdMessage[]>;
  /** What the server printed (aiosmtpd warnings and tracebacks). */
  output(): string;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface EnvelopeRecord {
  mailFrom: string;
  rcptTos: string[];
  mailOptions: string[];
  rcptOptions: string[];
  heloName: string | null;
  peer: string | null;
  tls: boolean;
  authLogin: string | null;
}

async function materialize(files: TlsFiles, dir: string, name: string): Promise<TlsFiles> {
  const place = async (value: string, suffix: string): Promise<string> => {
    if (!isPemText(value)) return value;
    const path = join(dir, `${name}-${suffix}.pem`);
    await writeFile(path, value, { mode: 0o600 });
    return path;
  };
  return { cert: await place(files.cert, "cert"), key: await place(files.key, "key") };
}

/** Starts an aiosmtpd server on a loopback port it picks itself, and waits for its greeting. */
export async function startAiosmtpd(options: AiosmtpdOptions = {}): Promise<Aiosmtpd> {
  const python = requirePeer("aiosmtpd");
  if (options.starttls && options.implicitTls)
    throw new Error("startAiosmtpd: choose starttls or implicitTls");
  const workDir = await makeTempDir("aiosmtpd");
  let daemon: Daemon | undefined;
  try {
    const messagesDir = join(workDir, "messages");
    await mkdir(messagesDir);
    const config = {
      host: LOOPBACK,
      port: 0,
      hostname: options.hostname ?? DEFAULT_HOSTNAME,
      messagesDir,
      starttls: options.starttls ? await materialize(options.starttls, workDir, "starttls") : null,
      implicitTls: options.implicitTls ? await materialize(options.implicitTls, workDir, "implicit") : null,
      requireStarttls: options.requireStarttls ?? false,
      auth: options.auth ?? null,
      smtputf8: options.smtputf8 ?? false,
      ...(options.dataSizeLimit === undefined ? {} : { dataSizeLimit: options.dataSizeLimit }),
      rcptReplies: options.rcptReplies ?? {},
    };
    const configPath = join(workDir, "config.json");
    await writeFile(configPath, JSON.stringify(config), { mode: 0o600 });

    const running = startDaemon([python, SERVER_SCRIPT, configPath], { stdinPipe: true });
    daemon = running;
    const ready = await running.waitForOutput(READY_LINE);
    const port = Number(ready?.[1]);
    if (!ready || !Number.isInteger(port)) {
      throw new Error(`aiosmtpd_server.py did not start:\n${running.output()}`);
    }
    const greeting = await waitForBanner({
      host: LOOPBACK,
      port,
      tls: options.implicitTls !== undefined,
      isAlive: running.isRunning,
      describe: () => `aiosmtpd (${running.output().trim()})`,
    });

    const messages = (): Promise<AiosmtpdMessage[]> => readMessages(messagesDir);
    const close = async (): Promise<void> => {
      await running.stop();
      await removeTempDir(workDir);
    };
    return {
      host: LOOPBACK,
      port,
      pid: running.pid,
      greeting,
      messages,
      waitForMessages: (count, timeoutMs) => waitForMessages("aiosmtpd", messages, count, timeoutMs),
      output: () => running.output(),
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await daemon?.stop();
    await removeTempDir(workDir);
    throw error;
  }
}

async function readMessages(dir: string): Promise<AiosmtpdMessage[]> {
  // The .json is renamed into place after the .eml is written, so a listed .json is a whole message.
  const envelopes = (await readdir(dir)).filter((name) => /^\d{6}\.json$/.test(name)).sort();
  return Promise.all(
    envelopes.map(async (name) => {
      const base = join(dir, name.slice(0, -".json".length));
      const envelope = JSON.parse(await readFile(`${base}.json`, "utf8")) as EnvelopeRecord;
      return { ...envelope, raw: new Uint8Array(await readFile(`${base}.eml`)) };
    }),
  );
}
