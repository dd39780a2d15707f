interface Closable {
  close(): Promise<void>;
}

type Started<T extends readonly (() => Promise<Closable>)[]> = { [K in keyof T]: Awaited<ReturnType<T[K]>> };

/**
 * Starts several peers at once (their start-up times overlap). If any fails to start, the others
 * are closed before the error is rethrown, so nothing is left running.
 */
export async function startAll<T extends readonly (() => Promise<Closable>)[]>(
  ...starters: T
): Promise<Started<T>> {
  const outcomes = await Promise.allSettled(starters.map((start) => start()));
  const failure = outcomes.find((outcome) => outcome.status === "rejected");
  if (failure) {
    await Promise.all(
      outcomes.map((outcome) => (outcome.status === "fulfilled" ? outcome.value.close() : undefined)),
    );
    throw failure.reason;
  }
  return outcomes.map((outcome) =>
    outcome.status === "fulfilled" ? outcome.value : undefined,
  ) as Started<T>;
}
