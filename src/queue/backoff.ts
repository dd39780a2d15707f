/** Postfix's minimal_backoff_time: the first retry comes this long after the first failure. */
export const DEFAULT_BACKOFF_MIN_MS = 300_000;
/** Postfix's maximal_backoff_time: retries are never further apart than this. */
export const DEFAULT_BACKOFF_MAX_MS = 4_000_000;
/** Postfix's maximal_queue_lifetime: a recipient still deferred after this long fails. */
export const DEFAULT_MAX_AGE_MS = 5 * 86_400_000;

/**
 * How long after the `attempts`-th failed attempt the next one comes: `min`, doubling with each
 * attempt, at most `max` (attempts 1, 2, 3... give 300 s, 600 s, 1200 s... up to 4000 s).
 */
export function retryDelay(attempts: number, minMs: number, maxMs: number): number {
  if (attempts <= 1) return Math.min(minMs, maxMs);
  // 2^30 times any sensible minimum is far past any maximum: stop doubling there.
  const doublings = Math.min(attempts - 1, 30);
  return Math.min(maxMs, minMs * 2 ** doublings);
}

/** True when a recipient that arrived (or was retried) at `since` has been queued for `maxAgeMs` by `now`. */
export function expired(since: number, now: number, maxAgeMs: number): boolean {
  return now - since >= maxAgeMs;
}
