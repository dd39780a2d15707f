/** Pause between looks at a peer's stored messages. */
const POLL_INTERVAL_MS = 20;
export const DEFAULT_MESSAGE_WAIT_MS = 10_000;

/**
 * Re-reads a peer's stored messages until there are at least count of them: for deliveries that
 * finish after the client returns (a queue worker, a relay). Throws after timeoutMs.
 */
export async function waitForMessages<T>(
  peer: string,
  read: () => Promise<T[]>,
  count: number,
  timeoutMs: number = DEFAULT_MESSAGE_WAIT_MS,
): Promise<T[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const found = await read();
    if (found.length >= count) return found;
    if (performance.now() > deadline) {
      throw new Error(`${peer} has ${found.length} messages after ${timeoutMs} ms, expected ${count}`);
    }
    await Bun.sleep(POLL_INTERVAL_MS);
  }
}
