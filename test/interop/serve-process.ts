// `smtpkit serve` as a real process for interop tests: spawned as `bun src/cli.ts serve`, ready once
// it prints where it listens, stopped with SIGTERM (or killed with SIGKILL by crash tests). Its
// HTTP API (Mailpit's API v1) is how tests read back what it stored.

import { join } from "node:path";
import { freePort, LOOPBACK } from "./peers/ports.ts";
import { type Daemon, type ProcessResult, runProcess, startDaemon } from "./peers/run-process.ts";
import { makeTempDir, removeTempDir } from "./peers/temp-dir.ts";
import { waitForBanner } from "./peers/wait-for-banner.ts";

const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");
/** Names serve in its banner, EHLO reply and Received lines. */
export const SERVE_HOSTNAME = "serve.test";
/** serve prints this line on stderr once its listeners (and the API) are up. */
const READY_LINE = /serving (.+?)(?:, API (https?:\/\/\S+?))?; (?:mail stored|relaying)/;
const BIND_FAILED = /address already in use|in use/i;
/** Attempts when a port we picked was taken before serve could bind it. */
const BIND_ATTEMPTS = 3;

export interface ServeOptions {
  /** Reuse this data directory (a restart); default: a fresh temp dir, removed by close(). */
  dataDir?: string;
  /** --memory instead of a data directory. */
  memory?: boolean;
  /** Start the HTTP API (default true). */
  http?: boolean;
  /** SMTP port; default a free one. */
  port?: number;
  /**
   * Pass neither --data-dir nor --memory, so serve picks its default ($XDG_DATA_HOME/smtpkit);
   * give XDG_DATA_HOME in env to keep it inside a test directory.
   */
  defaultDataDir?: boolean;
  /** More serve flags, e.g. ["--max-size", "64k"]. With --quiet, readiness is the SMTP banner. */
  args?: string[];
  env?: Record<string, string>;
}

export interface ApiMessageSummary {
  ID: string;
  MessageID: string;
  Subject: string;
  Size: number;
  From: { Name: string; Address: string } | null;
  To: { Name: string; Address: string }[];
  Bcc: { Name: string; Address: string }[];
}

export interface ApiMessagePage {
  total: number;
  messages_count: number;
  messages: ApiMessageSummary[];
}

export interface ServeProcess {
  host: string;
  port: number;
  /** The API's base URL without a trailing slash; undefined with http: false. */
  apiUrl: string | undefined;
  dataDir: string | undefined;
  pid: number;
  /** What serve printed so far (the ready line, one line per message, errors). */
  output(): string;
  isRunning(): boolean;
  exited: Promise<number>;
  /** GET (or another method on) an API path; throws unless the status is 2xx. */
  api(path: string, init?: RequestInit): Promise<Response>;
  /** Every stored message, newest first (all pages). */
  messages(): Promise<ApiMessageSummary[]>;
  /** How many messages the store holds. */
  count(): Promise<number>;
  /** PUT /api/v1/chaos with our { fail, delay } settings. */
  setChaos(settings: { fail?: unknown[]; delay?: unknown[] }): Promise<void>;
  /** GET /api/v1/search?query=..., every match. */
  search(query: string): Promise<ApiMessageSummary[]>;
  /** GET /api/v1/message/{id}/raw as bytes. */
  raw(id: string): Promise<Uint8Array>;
  /** SIGKILL, no goodbye; the data directory stays. */
  kill(): Promise<void>;
  /** SIGTERM and wait; the data directory stays. */
  stop(): Promise<void>;
  /** stop(), then remove the data directory if this helper made it. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Messages asked for per page when listing everything. */
const PAGE = 1000;

/** Starts `smtpkit serve` on loopback and waits until it says it is listening. */
export async function startServe(options: ServeOptions = {}): Promise<ServeProcess> {
  const noDir = options.memory === true || options.defaultDataDir === true;
  const ownDir = options.dataDir === undefined && !noDir;
  const dataDir = noDir ? undefined : (options.dataDir ?? (await makeTempDir("serve")));
  const storage = options.memory ? ["--memory"] : dataDir === undefined ? [] : ["--data-dir", dataDir];
  const quiet = options.args?.includes("--quiet") === true;
  try {
    for (let attempt = 1; ; attempt++) {
      const port = options.port ?? (await freePort());
      const httpPort = await freePort();
      const command = [
        process.execPath,
        CLI,
        "serve",
        "--listen",
        `${LOOPBACK}:${port}`,
        "--http",
        options.http === false ? "off" : `${LOOPBACK}:${httpPort}`,
        "--hostname",
        SERVE_HOSTNAME,
        ...storage,
        ...(options.args ?? []),
      ];
      const daemon = startDaemon(command, options.env ? { env: options.env } : {});
      const api = options.http === false ? undefined : `http://${LOOPBACK}:${httpPort}`;
      if (quiet) {
        // --quiet prints nothing when ready: the banner says it, and the API is up before it.
        const greeted = await waitForBanner({
          host: LOOPBACK,
          port,
          isAlive: daemon.isRunning,
          accept: (greeting) => greeting.includes(SERVE_HOSTNAME),
        })
          .then(() => true)
          .catch(() => false);
        if (greeted) return serveProcess(daemon, port, api, dataDir, ownDir);
        await daemon.stop();
      } else {
        const ready = await daemon.waitForOutput(READY_LINE);
        if (ready) return serveProcess(daemon, port, ready[2], dataDir, ownDir);
      }
      await daemon.exited;
      const retry =
        BIND_FAILED.test(daemon.output()) && options.port === undefined && attempt < BIND_ATTEMPTS;
      if (!retry) throw new Error(`smtpkit serve did not start:\n${daemon.output()}`);
    }
  } catch (error) {
    if (ownDir && dataDir !== undefined) await removeTempDir(dataDir);
    throw error;
  }
}

function serveProcess(
  daemon: Daemon,
  port: number,
  api: string | undefined,
  dataDir: string | undefined,
  ownDir: boolean,
): ServeProcess {
  const apiUrl = api?.replace(/\/+$/, "");
  const request = async (path: string, init?: RequestInit): Promise<Response> => {
    if (apiUrl === undefined) throw new Error("this serve was started with --http off");
    const response = await fetch(`${apiUrl}${path}`, init);
    if (!response.ok) {
      throw new Error(`${init?.method ?? "GET"} ${path}: ${response.status} ${await response.text()}`);
    }
    return response;
  };
  const stop = () => daemon.stop();
  const close = async () => {
    await daemon.stop();
    if (ownDir && dataDir !== undefined) await removeTempDir(dataDir);
  };
  return {
    host: LOOPBACK,
    port,
    apiUrl,
    dataDir,
    pid: daemon.pid,
    output: () => daemon.output(),
    isRunning: () => daemon.isRunning(),
    exited: daemon.exited,
    api: request,
    messages: async () => {
      const all: ApiMessageSummary[] = [];
      for (;;) {
        const url = `/api/v1/messages?start=${all.length}&limit=${PAGE}`;
        const page = (await (await request(url)).json()) as ApiMessagePage;
        all.push(...page.messages);
        if (page.messages.length < PAGE) return all;
      }
    },
    count: async () => ((await (await request("/api/v1/messages?limit=1")).json()) as ApiMessagePage).total,
    setChaos: async (settings) => {
      await request("/api/v1/chaos", {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ fail: [], delay: [], ...settings }),
      });
    },
    search: async (query) =>
      (
        (await (
          await request(`/api/v1/search?limit=${PAGE}&query=${encodeURIComponent(query)}`)
        ).json()) as ApiMessagePage
      ).messages,
    raw: async (id) =>
      new Uint8Array(await (await request(`/api/v1/message/${encodeURIComponent(id)}/raw`)).arrayBuffer()),
    kill: async () => {
      if (daemon.isRunning()) process.kill(daemon.pid, "SIGKILL");
      await daemon.exited;
    },
    stop,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** How long a serve that was expected to fail at start-up may run before it is killed. */
const FAILING_START_TIMEOUT_MS = 15_000;

/** Runs `smtpkit serve ARGS` to its end: for flags that must make it fail at start-up. */
export function runServeCommand(args: string[], env?: Record<string, string>): Promise<ProcessResult> {
  return runProcess([process.execPath, CLI, "serve", ...args], {
    timeoutMs: FAILING_START_TIMEOUT_MS,
    ...(env ? { env } : {}),
  });
}

/**
 * Splits the trace field serve prepends (RFC 5321 §4.4: "Received:" and its folded lines) from the
 * message as the client sent it, so tests can compare the rest byte for byte.
 */
export function splitReceived(raw: Uint8Array): { received: string; message: Uint8Array } {
  const text = Buffer.from(raw).toString("latin1");
  if (!text.startsWith("Received: "))
    throw new Error(`stored message does not start with Received: ${text.slice(0, 80)}`);
  let end = text.indexOf("\r\n");
  while (end !== -1 && (text[end + 2] === "\t" || text[end + 2] === " ")) end = text.indexOf("\r\n", end + 2);
  if (end === -1) throw new Error("the Received header does not end");
  return { received: text.slice(0, end + 2), message: raw.subarray(end + 2) };
}

/** The queue id from a "250 2.0.0 Ok: queued as ID" reply somewhere in a transcript. */
export function queuedIds(transcript: string): string[] {
  return [...transcript.matchAll(/250[ -](?:2\.0\.0 )?Ok: queued as (\S+)/g)].map((m) => m[1] ?? "");
}

export const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("latin1");
export const bytesOf = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "latin1"));
