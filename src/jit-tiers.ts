/**
 * The daemons (`serve`, `queue run`) run without JSC's top JIT tier (FTL). On a 2-core machine
 * FTL spends 0.7-0.9 s of CPU compiling serve's hot paths during the first 10-20 thousand
 * messages, on a core the SMTP clients need too; without it, a fresh `serve` took 10-20% less
 * wall time for 10,000 messages (new connections and reused, alternating runs), while steady
 * state cost about 5% more main-thread CPU (docs/performance.md).
 *
 * JSC reads its options from the environment once, at start-up, and a compiled binary cannot
 * set them for itself, so the process replaces itself (execve: same PID, same descriptors) with
 * the option set. A BUN_JSC_useFTLJIT already in the environment is respected, which also stops
 * a second exec.
 */
const FTL_OPTION = "BUN_JSC_useFTLJIT";

/** Only the compiled binary re-executes itself: from source, argv is `bun script.ts ...`. */
function isCompiledBinary(): boolean {
  return Bun.main.startsWith("/$bunfs/");
}

export function restartWithoutFtl(): void {
  if (process.env[FTL_OPTION] !== undefined || !isCompiledBinary()) return;
  if (typeof process.execve !== "function") return;
  try {
    // process.argv is ["bun", "/$bunfs/root/...", ...args] in a compiled binary; the real argv[0]
    // is argv0.
    process.execve(process.execPath, [process.argv0, ...process.argv.slice(2)], {
      ...process.env,
      [FTL_OPTION]: "0",
    });
  } catch {
    // Only a speed-up: a binary that cannot exec itself (moved away, no permission) runs as it is.
  }
}
