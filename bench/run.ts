/**
 * `npm run bench [send|serve ...]`: smtpkit against the peers the issues name, measured in the
 * same run on this machine, printed as ratios. Needs `npm run build` and `scripts/install-peers`.
 * Nothing here is a test: it prints figures, it asserts nothing.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { msmtpCommand } from "../test/interop/peers/msmtp.ts";
import { freePort, LOOPBACK } from "../test/interop/peers/ports.ts";
import { runProcess, startProcess } from "../test/interop/peers/run-process.ts";
import { startSmtpSink } from "../test/interop/peers/smtp-sink.ts";
import { runSmtpSource } from "../test/interop/peers/smtp-source.ts";
import { makeTempDir, removeTempDir } from "../test/interop/peers/temp-dir.ts";
import { waitForBanner } from "../test/interop/peers/wait-for-banner.ts";

const binary = join(import.meta.dir, "..", "dist", "smtpkit");

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function line(label: string, ours: string, theirs: string, ratio: number, target: string): void {
  console.log(
    `${label.padEnd(44)} smtpkit ${ours.padStart(12)}   peer ${theirs.padStart(12)}   ratio ${ratio.toFixed(2)}  (target ${target})`,
  );
}

const message1k =
  `From: bench@example.com\r\nTo: sink@example.com\r\nSubject: bench\r\n\r\n${"x".repeat(70)}\r\n`.repeat(1);

/** Runs not counted: the first runs page the binaries in and warm the sink. */
const SEND_WARMUP_RUNS = 3;
const SEND_RUNS = 51;
/** Rounds of the queue drain and its send --repeat reference; the median of each is reported. */
const QUEUE_ROUNDS = 3;

/** Compiles a program the way package.json's build compiles smtpkit (the flags that matter for start-up). */
async function compileProgram(source: string, output: string): Promise<string> {
  const build = await runProcess([
    process.execPath,
    "build",
    "--compile",
    "--minify",
    "--bytecode",
    "--format=esm",
    source,
    "--outfile",
    output,
  ]);
  if (build.exitCode !== 0) throw new Error(`compiling ${source} failed: ${build.stderr}`);
  return output;
}

/**
 * A `bun build --compile` hello-world: the start-up floor of any compiled Bun program on this
 * machine, measured beside smtpkit so a slow run shows as slow for both.
 */
async function buildHelloWorld(dir: string): Promise<string> {
  const source = join(dir, "hello.ts");
  await Bun.write(source, 'console.log("hello");\n');
  return compileProgram(source, join(dir, "hello"));
}

/** A floor program of bench/floors, compiled into `dir`. */
function buildFloor(name: "smtp-client" | "smtp-responder", dir: string): Promise<string> {
  return compileProgram(join(import.meta.dir, "floors", `${name}.ts`), join(dir, name));
}

/**
 * The wall time of one whole process, from spawn to exit. Spawned synchronously with no output
 * pipes to read and no watchdog (test/interop/peers' runProcess has both): measured, those added
 * 5-9 ms to every run of every program, which pulls any ratio of two start-up times towards 1.
 */
function timedRun(
  command: string[],
  what: string,
  input?: { stdin: Uint8Array; env: Record<string, string> },
): number {
  const started = performance.now();
  const result = Bun.spawnSync(command, {
    stdin: input?.stdin ?? "ignore",
    stdout: "ignore",
    stderr: "pipe",
    env: { ...process.env, ...input?.env },
  });
  const elapsed = performance.now() - started;
  if (result.exitCode !== 0)
    throw new Error(`${what} failed (${result.exitCode}): ${result.stderr.toString()}`);
  return elapsed;
}

/**
 * Issue 3: one message, whole process, median of runs. smtpkit, msmtp and the two floors
 * (`smtpkit --version`, a compiled hello-world) take turns in every round, so machine load
 * changes hit them alike.
 */
async function benchOneMessage(sinkPort: number): Promise<void> {
  const dir = await makeTempDir("bench-send");
  try {
    const hello = await buildHelloWorld(dir);
    const floorClient = await buildFloor("smtp-client", dir);
    const send = [
      binary,
      "send",
      "-s",
      `${LOOPBACK}:${sinkPort}`,
      "-f",
      "bench@example.com",
      "-t",
      "sink@example.com",
      "--subject",
      "bench",
      "--body",
      "x".repeat(70),
    ];
    const msmtpInput = new TextEncoder().encode(message1k);
    const msmtp = msmtpCommand({
      port: sinkPort,
      from: "bench@example.com",
      recipients: ["sink@example.com"],
    });
    const times = {
      ours: [] as number[],
      msmtp: [] as number[],
      version: [] as number[],
      hello: [] as number[],
      floor: [] as number[],
    };
    for (let i = 0; i < SEND_WARMUP_RUNS + SEND_RUNS; i++) {
      const ours = timedRun(send, "smtpkit send");
      const theirs = timedRun(msmtp.command, "msmtp", {
        stdin: msmtpInput,
        env: msmtp.env,
      });
      const version = timedRun([binary, "--version"], "smtpkit --version");
      const helloMs = timedRun([hello], "hello-world");
      const floorMs = timedRun([floorClient, String(sinkPort)], "the floor SMTP client");
      if (i < SEND_WARMUP_RUNS) continue;
      times.ours.push(ours);
      times.msmtp.push(theirs);
      times.version.push(version);
      times.hello.push(helloMs);
      times.floor.push(floorMs);
    }
    const a = median(times.ours);
    const b = median(times.msmtp);
    line(
      "send: one message, whole process (median ms)",
      `${a.toFixed(1)} ms`,
      `${b.toFixed(1)} ms msmtp`,
      a / b,
      "<= 0.50",
    );
    console.log(
      `${"".padEnd(44)} floors: smtpkit --version ${median(times.version).toFixed(1)} ms, compiled hello-world ${median(times.hello).toFixed(1)} ms (${SEND_RUNS} runs)`,
    );
    const floor = median(times.floor);
    console.log(
      `${"".padEnd(44)} bench/floors/smtp-client.ts (the same exchange, nothing else) ${floor.toFixed(1)} ms, ratio ${(floor / b).toFixed(2)}`,
    );
  } finally {
    await removeTempDir(dir);
  }
}

/** `smtpkit send --repeat COUNT --parallel 10` of a 1 KiB body to a local sink: the load both issues compare with. */
function sendLoadCommand(port: number, body: string, count: number, extra: string[]): string[] {
  return [
    binary,
    "send",
    "-s",
    `${LOOPBACK}:${port}`,
    "-f",
    "bench@example.com",
    "-t",
    "sink@example.com",
    ...extra,
    "--body",
    body,
    "--repeat",
    String(count),
    "--parallel",
    "10",
  ];
}

/** Issue 3: one message, whole process; and load mode against smtp-source. */
async function benchSend(): Promise<void> {
  await using sink = await startSmtpSink({ dump: false });
  await benchOneMessage(sink.port);

  const count = 20000;
  const source = await runSmtpSource({
    port: sink.port,
    sessions: 10,
    messages: count,
    messageSize: 1024,
    reuseConnections: true,
    timeoutMs: 300_000,
  });
  if (source.exitCode !== 0) throw new Error(`smtp-source failed: ${source.stderr}`);
  const body = "x".repeat(1024);
  const load = await runProcess(sendLoadCommand(sink.port, body, count, []), { timeoutMs: 300_000 });
  if (load.exitCode !== 0) throw new Error(`smtpkit send --repeat failed: ${load.stderr}`);
  const ourRate = count / (load.elapsedMs / 1000);
  const theirRate = count / (source.elapsedMs / 1000);
  line(
    "send --repeat 20000 --parallel 10, 1 KiB (msg/s)",
    ourRate.toFixed(0),
    `${theirRate.toFixed(0)} source`,
    ourRate / theirRate,
    ">= 1.00",
  );
}

async function rssKb(pid: number, field: "VmHWM" | "VmRSS"): Promise<number> {
  const status = await Bun.file(`/proc/${pid}/status`)
    .text()
    .catch(() => "");
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
}

const mib = (kb: number) => `${(kb / 1024).toFixed(0)} MiB`;

/** `SMTPKIT_SERVE_BINARY` measures another build (say one kept apart from dist/ while others rebuild it). */
const serveBinary = process.env.SMTPKIT_SERVE_BINARY ?? binary;
/** Rounds per workload; the median is reported. smtp-sink and serve take turns, so load changes hit both. */
const SERVE_ROUNDS = 3;

/** Runs `use` once the server `command` starts (listening on `port`) greets, then stops it. */
async function withServer<T>(
  command: string[],
  port: number,
  use: (port: number, pid: number) => Promise<T>,
): Promise<T> {
  const server = startProcess(command);
  try {
    await waitForBanner({ host: LOOPBACK, port, timeoutMs: 10_000 });
    return await use(port, server.pid);
  } finally {
    server.kill();
    await server.done;
  }
}

/**
 * A fresh `serve` with the default durable store, in its own data directory; with `--memory`
 * (`memory: true`) it keeps nothing on disk, which tells what durability costs.
 */
async function withServe<T>(
  use: (port: number, pid: number) => Promise<T>,
  options: { memory?: boolean } = {},
): Promise<T> {
  const dataDir = await makeTempDir("bench-serve");
  const port = await freePort();
  const store = options.memory === true ? ["--memory"] : ["--data-dir", dataDir];
  const command = [serveBinary, "serve", "--listen", `${LOOPBACK}:${port}`, "--http", "off", ...store];
  try {
    return await withServer([...command, "--quiet", "--max-messages", "1000000"], port, use);
  } finally {
    await removeTempDir(dataDir);
  }
}

/** Issue 5: smtp-source against `serve` (durable store) and against smtp-sink (stores nothing). */
async function benchServe(): Promise<void> {
  const workloads = [
    {
      name: "new connection per message",
      sessions: 10,
      messages: 10000,
      size: 1024,
      reuse: false,
      target: 0.8,
    },
    { name: "reused connections", sessions: 10, messages: 20000, size: 1024, reuse: true, target: 0.5 },
    { name: "1 MiB messages", sessions: 4, messages: 400, size: 1048576, reuse: true, target: 1.0 },
  ];
  const floorDir = await makeTempDir("bench-floor");
  const responder = await buildFloor("smtp-responder", floorDir);
  for (const w of workloads) {
    const options = {
      sessions: w.sessions,
      messages: w.messages,
      messageSize: w.size,
      reuseConnections: w.reuse,
      timeoutMs: 600_000,
    };
    const sinkRates: number[] = [];
    const serveRates: number[] = [];
    const memoryRates: number[] = [];
    const floorRates: number[] = [];
    const peaks: number[] = [];
    const rate = async (port: number, into: number[], what: string) => {
      const run = await runSmtpSource({ port, ...options });
      if (run.exitCode !== 0) throw new Error(`smtp-source vs ${what} failed: ${run.stderr}`);
      into.push(w.messages / (run.elapsedMs / 1000));
    };
    for (let round = 0; round < SERVE_ROUNDS; round++) {
      {
        await using sink = await startSmtpSink({ dump: false });
        await rate(sink.port, sinkRates, "smtp-sink");
      }
      await withServe(async (port, pid) => {
        await rate(port, serveRates, "serve");
        peaks.push(await rssKb(pid, "VmHWM"));
      });
      await withServe((port) => rate(port, memoryRates, "serve --memory"), { memory: true });
      const floorPort = await freePort();
      await withServer([responder, String(floorPort)], floorPort, (port) =>
        rate(port, floorRates, "the floor responder"),
      );
    }
    const ourRate = median(serveRates);
    const theirRate = median(sinkRates);
    line(
      `serve: ${w.name} (msg/s)`,
      ourRate.toFixed(0),
      `${theirRate.toFixed(0)} sink`,
      ourRate / theirRate,
      `>= ${w.target}`,
    );
    const rates = (values: number[]) => values.map((r) => r.toFixed(0)).join(" ");
    console.log(
      `${"".padEnd(44)} median of ${SERVE_ROUNDS}; serve ${rates(serveRates)}, sink ${rates(sinkRates)}; serve peak RSS ${mib(Math.max(...peaks))}`,
    );
    console.log(
      `${"".padEnd(44)} serve --memory ${median(memoryRates).toFixed(0)} (ratio ${(median(memoryRates) / theirRate).toFixed(2)}); bench/floors/smtp-responder.ts ${median(floorRates).toFixed(0)} (ratio ${(median(floorRates) / theirRate).toFixed(2)})`,
    );
  }
  await removeTempDir(floorDir);

  // Memory with a full mailbox: 100,000 messages stored (1 KiB each, reused connections).
  const stored = 100_000;
  await withServe(async (port, pid) => {
    const fill = await runSmtpSource({
      port,
      sessions: 10,
      messages: stored,
      messageSize: 1024,
      reuseConnections: true,
      timeoutMs: 1_200_000,
    });
    if (fill.exitCode !== 0) throw new Error(`smtp-source filling serve failed: ${fill.stderr}`);
    // Settled: the idle indexer and the checkpoints have had their turn.
    await Bun.sleep(2000);
    console.log(
      `${`serve: ${stored.toLocaleString("en")} messages stored`.padEnd(44)} RSS ${mib(await rssKb(pid, "VmRSS"))}, peak while storing them ${mib(await rssKb(pid, "VmHWM"))} (${(stored / (fill.elapsedMs / 1000)).toFixed(0)} msg/s)`,
    );
  });
}

/**
 * Issue 6: 10,000 queued 1 KiB messages drained to smtp-sink by the queue's delivery engine
 * (`queue flush`, the same engine `queue run` uses, timed as a whole process like `send`), against
 * `send --repeat 10000 --parallel 10` delivering the same messages directly, in the same run. Both
 * use 10 connections (--per-destination 10; the default is 5).
 */
async function benchQueue(): Promise<void> {
  const { openQueue } = await import("../src/queue/open-queue.ts");
  const { parsePath } = await import("../src/core/address.ts");
  const { emptyMailParams, emptyRcptParams } = await import("../src/core/esmtp-params.ts");
  const count = 10000;
  const body = "x".repeat(1024);
  await using sink = await startSmtpSink({ dump: false });
  const message = new TextEncoder().encode(
    `From: bench@example.com\r\nTo: sink@example.com\r\nSubject: bench\r\n\r\n${body}\r\n`,
  );
  const envelope = {
    from: parsePath("<bench@example.com>"),
    mailParams: emptyMailParams(),
    recipients: [{ path: parsePath("<sink@example.com>"), params: emptyRcptParams() }],
  };
  const route = { kind: "smarthost" as const, host: LOOPBACK, port: sink.port, starttls: "never" as const };
  const queueRates: number[] = [];
  const sendRates: number[] = [];
  // Rounds as for serve: a single run of each swung the ratio by ±0.05 between runs.
  for (let round = 0; round < QUEUE_ROUNDS; round++) {
    const direct = await runProcess(sendLoadCommand(sink.port, body, count, ["--subject", "bench"]), {
      timeoutMs: 300_000,
    });
    if (direct.exitCode !== 0) throw new Error(`smtpkit send --repeat failed: ${direct.stderr}`);
    sendRates.push(count / (direct.elapsedMs / 1000));
    const dataDir = await makeTempDir("bench-queue");
    try {
      const queue = openQueue({ path: join(dataDir, "queue.sqlite") });
      await Promise.all(Array.from({ length: count }, () => queue.enqueue(message, envelope, route)));
      await queue.close();
      const drain = await runProcess(
        [binary, "queue", "flush", "--data-dir", dataDir, "--per-destination", "10", "--quiet"],
        { timeoutMs: 600_000 },
      );
      if (drain.exitCode !== 0) throw new Error(`smtpkit queue flush failed: ${drain.stderr}`);
      queueRates.push(count / (drain.elapsedMs / 1000));
    } finally {
      await removeTempDir(dataDir);
    }
  }
  const queueRate = median(queueRates);
  const sendRate = median(sendRates);
  line(
    "queue: drain 10000 x 1 KiB, 10 conns (msg/s)",
    queueRate.toFixed(0),
    `${sendRate.toFixed(0)} send`,
    queueRate / sendRate,
    ">= 0.50",
  );
  const rates = (values: number[]) => values.map((v) => v.toFixed(0)).join(" ");
  console.log(
    `${"".padEnd(44)} median of ${QUEUE_ROUNDS}; flush ${rates(queueRates)}, send ${rates(sendRates)}`,
  );
}

const sections: Record<string, () => Promise<void>> = {
  send: benchSend,
  serve: benchServe,
  queue: benchQueue,
};
const wanted = process.argv.slice(2);
if (!existsSync(binary)) throw new Error(`${binary} is missing: run npm run build first`);
for (const [name, run] of Object.entries(sections)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  console.log(`== ${name}`);
  await run();
}
