// Spawning peers: one-shot runs whose output we keep, and long-running servers we must always stop,
// even when a test throws or the test process exits early.

import { reapOnExit } from "./reaper.ts";

/** How long a server gets to exit after SIGTERM before it is killed. */
const STOP_GRACE_MS = 3000;
/** A long-running server's output is kept only up to this size (its tail), so noisy flags like -c stay cheap. */
const DAEMON_OUTPUT_LIMIT = 256 * 1024;

export interface ProcessResult {
  exitCode: number;
  /** Set when the process was ended by a signal (our timeout, or a kill). */
  signal: string | null;
  stdout: string;
  stderr: string;
  elapsedMs: number;
  timedOut: boolean;
}

export interface RunOptions {
  stdin?: Uint8Array | string;
  env?: Record<string, string>;
  cwd?: string;
  /** Kill the process (SIGKILL) after this long; the result then has timedOut = true. */
  timeoutMs?: number;
}

const exitCleanups = new Set<() => void>();
let exitHookInstalled = false;

/**
 * Registers a synchronous cleanup for process "exit". Note: `bun test` does not emit "exit" (measured,
 * Bun 1.4.4), so in tests this only helps scripts run with `bun run`; reapOnExit (reaper.ts) is what
 * cleans up after an aborted test run. Returns a function that unregisters the cleanup.
 */
export function onTestProcessExit(cleanup: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", () => {
      for (const run of exitCleanups) {
        try {
          run();
        } catch {
          // Best effort: the process is going away anyway.
        }
      }
    });
  }
  exitCleanups.add(cleanup);
  return () => {
    exitCleanups.delete(cleanup);
  };
}

function stdinOf(input: Uint8Array | string | undefined): Blob | "ignore" {
  if (input === undefined) return "ignore";
  return new Blob([typeof input === "string" ? new TextEncoder().encode(input) : input]);
}

/** A one-shot child whose completion can be awaited, or which can be killed midway (e.g. SIGKILL tests). */
export interface RunningProcess {
  readonly pid: number;
  readonly done: Promise<ProcessResult>;
  kill(signal?: NodeJS.Signals): void;
}

export function startProcess(command: string[], options: RunOptions = {}): RunningProcess {
  const started = performance.now();
  const child = Bun.spawn(command, {
    stdin: stdinOf(options.stdin),
    stdout: "pipe",
    stderr: "pipe",
    env: options.env ? { ...process.env, ...options.env } : process.env,
    cwd: options.cwd,
  });
  const unregister = reapOnExit({ pid: child.pid });
  let timedOut = false;
  const timer =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          child.kill("SIGKILL");
        }, options.timeoutMs);
  const done = (async (): Promise<ProcessResult> => {
    const [stdout, stderr, exitCode] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.exited,
    ]);
    if (timer !== undefined) clearTimeout(timer);
    unregister();
    return {
      exitCode,
      signal: child.signalCode === null ? null : String(child.signalCode),
      stdout,
      stderr,
      elapsedMs: performance.now() - started,
      timedOut,
    };
  })();
  return { pid: child.pid, done, kill: (signal = "SIGTERM") => child.kill(signal) };
}

export function runProcess(command: string[], options: RunOptions = {}): Promise<ProcessResult> {
  return startProcess(command, options).done;
}

/** Keeps the tail of a child's output and wakes whoever waits for a pattern in it. */
class OutputTail {
  private text = "";
  private waiters: { pattern: RegExp; resolve: (match: RegExpMatchArray | null) => void }[] = [];
  append(chunk: string): void {
    this.text += chunk;
    if (this.text.length > DAEMON_OUTPUT_LIMIT) this.text = this.text.slice(-DAEMON_OUTPUT_LIMIT);
    this.waiters = this.waiters.filter((waiter) => {
      const match = this.text.match(waiter.pattern);
      if (match) waiter.resolve(match);
      return !match;
    });
  }
  waitFor(pattern: RegExp): Promise<RegExpMatchArray | null> {
    const match = this.text.match(pattern);
    if (match) return Promise.resolve(match);
    return new Promise((resolve) => this.waiters.push({ pattern, resolve }));
  }
  /** The process ended: nobody waiting will ever see their pattern. */
  close(): void {
    for (const waiter of this.waiters) waiter.resolve(null);
    this.waiters = [];
  }
  toString(): string {
    return this.text;
  }
}

async function drain(stream: ReadableStream<Uint8Array>, tail: OutputTail): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) tail.append(decoder.decode(chunk, { stream: true }));
}

/** A long-running server process (smtp-sink, the aiosmtpd script). */
export interface Daemon {
  readonly pid: number;
  readonly exited: Promise<number>;
  isRunning(): boolean;
  /** stdout and stderr so far (interleaved by arrival, tail only). */
  output(): string;
  /** Resolves with the first match of pattern in the output, or null if the process ends first. */
  waitForOutput(pattern: RegExp): Promise<RegExpMatchArray | null>;
  /** SIGTERM, then SIGKILL after a grace period; resolves once the process is gone. */
  stop(): Promise<void>;
}

export interface DaemonOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Keep the child's stdin open as a pipe: a child that watches it sees EOF when we die. */
  stdinPipe?: boolean;
}

export function startDaemon(command: string[], options: DaemonOptions = {}): Daemon {
  const child = Bun.spawn(command, {
    stdin: options.stdinPipe ? "pipe" : "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: options.env ? { ...process.env, ...options.env } : process.env,
    cwd: options.cwd,
  });
  const unregister = reapOnExit({ pid: child.pid });
  const tail = new OutputTail();
  let running = true;
  const drained = Promise.all([drain(child.stdout, tail), drain(child.stderr, tail)]);
  const exited = child.exited.then(async (code) => {
    running = false;
    unregister();
    await drained;
    tail.close();
    return code;
  });

  const stop = async (): Promise<void> => {
    if (!running) {
      await exited;
      return;
    }
    child.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gone = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), STOP_GRACE_MS);
      }),
    ]);
    clearTimeout(timer);
    if (!gone) child.kill("SIGKILL");
    await exited;
  };

  return {
    pid: child.pid,
    exited,
    isRunning: () => running,
    output: () => tail.toString(),
    waitForOutput: (pattern) => tail.waitFor(pattern),
    stop,
  };
}
