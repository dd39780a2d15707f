import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

// The single binary must run alone: no node_modules, no source beside it (issue 2).
const root = join(import.meta.dir, "..");
let dir: string;
let binary: string;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const { port } = server;
    server.stop(true);
    resolve(port);
  });
}

/** The environment a running process has now: after an execve, the one it replaced itself with. */
async function environmentOf(pid: number): Promise<Map<string, string>> {
  const text = await Bun.file(`/proc/${pid}/environ`).text();
  const entries = text.split("\0").filter((entry) => entry.includes("="));
  return new Map(
    entries.map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)]),
  );
}

function readGreeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 10_000;
    const attempt = () => {
      const socket = createConnection({ host: "127.0.0.1", port });
      socket.once("data", (chunk) => {
        resolve(chunk.toString());
        socket.destroy();
      });
      socket.once("error", () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error("serve never answered"));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpkit-build-"));
  binary = join(dir, "smtpkit");
  // The very command `npm run build` runs, only with the output redirected, so the test covers
  // the shipped build flags (bytecode, splitting, JIT policy) rather than a copy of them.
  const script: string = (await Bun.file(join(root, "package.json")).json()).scripts.build;
  const command = script.slice(script.indexOf("bun build")).split(/\s+/);
  const args = command.slice(1).map((arg) => (arg === "dist/smtpkit" ? binary : arg));
  if (!args.includes(binary))
    throw new Error(`the build script no longer ends in --outfile dist/smtpkit: ${script}`);
  const build = Bun.spawnSync([process.execPath, ...args], { stdout: "pipe", stderr: "pipe", cwd: root });
  if (build.exitCode !== 0) throw new Error(`bun build --compile failed: ${build.stderr.toString()}`);
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("compiled binary", () => {
  test("prints help from an empty directory", () => {
    const run = Bun.spawnSync([binary, "--help"], { cwd: dir, stdout: "pipe", stderr: "pipe" });
    expect(run.exitCode).toBe(0);
    for (const name of ["send", "probe", "serve", "queue"])
      expect(run.stdout.toString()).toContain(`  ${name}`);
  });

  test("serves with a self-signed STARTTLS certificate made at start-up", async () => {
    const port = await freePort();
    const serve = Bun.spawn([binary, "serve", "--memory", "--http", "off", "--listen", `127.0.0.1:${port}`], {
      cwd: dir,
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      expect(await readGreeting(port)).toStartWith("220 ");
      // serve replaced itself (same PID) with JSC's FTL tier off: src/jit-tiers.ts.
      expect((await environmentOf(serve.pid)).get("BUN_JSC_useFTLJIT")).toBe("0");
      const send = Bun.spawnSync(
        [
          binary,
          "send",
          "-s",
          `127.0.0.1:${port}`,
          "-f",
          "a@example.com",
          "-t",
          "b@example.com",
          "--body",
          "hi",
          "--insecure",
          "--json",
        ],
        { cwd: dir, stdout: "pipe", stderr: "pipe" },
      );
      expect(send.stderr.toString()).toBe("");
      expect(send.exitCode).toBe(0);
      const report = JSON.parse(send.stdout.toString());
      expect(report.deliveries[0].tls.protocol).toMatch(/^TLSv1\.[23]$/);
      expect(report.deliveries[0].tls.verified).toBe(false);
    } finally {
      serve.kill("SIGTERM");
      expect(await serve.exited).toBe(0);
    }
  }, 30_000);

  test("serve keeps a BUN_JSC_useFTLJIT it was given", async () => {
    const port = await freePort();
    const serve = Bun.spawn([binary, "serve", "--memory", "--http", "off", "--listen", `127.0.0.1:${port}`], {
      cwd: dir,
      env: { ...process.env, BUN_JSC_useFTLJIT: "1" },
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      expect(await readGreeting(port)).toStartWith("220 ");
      expect((await environmentOf(serve.pid)).get("BUN_JSC_useFTLJIT")).toBe("1");
    } finally {
      serve.kill("SIGTERM");
      expect(await serve.exited).toBe(0);
    }
  }, 30_000);

  test("queue run, the other daemon, replaces itself with FTL off too", async () => {
    const worker = Bun.spawn([binary, "queue", "run", "--data-dir", join(dir, "queue-data")], {
      cwd: dir,
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      // The worker says this after any exec (and with its SIGTERM handler in place).
      const reader = worker.stderr.getReader();
      let said = "";
      while (!said.includes("delivering from")) {
        const { value: chunk, done } = await reader.read();
        if (done) break;
        said += new TextDecoder().decode(chunk);
      }
      reader.releaseLock();
      expect((await environmentOf(worker.pid)).get("BUN_JSC_useFTLJIT")).toBe("0");
    } finally {
      worker.kill("SIGTERM");
      expect(await worker.exited).toBe(0);
    }
  }, 30_000);
});
