import { describe, expect, test } from "bun:test";
import { GroupCommit } from "../../src/store/group-commit.ts";

/** A hand-cranked scheduler and sync, so the tests decide when each step happens. */
function harness(
  options: { maxItems?: number; maxBytes?: number; maxSyncs?: number; withSync?: boolean } = {},
) {
  const scheduled: (() => void)[] = [];
  const batches: string[][] = [];
  const durable: string[][] = [];
  const syncs: { resolve(): void; reject(error: Error): void }[] = [];
  let failNext: Error | undefined;
  const committer = new GroupCommit<string, string>({
    commit(items) {
      if (failNext) {
        const error = failNext;
        failNext = undefined;
        throw error;
      }
      batches.push([...items]);
      return items.map((item) => `id:${item}`);
    },
    sync:
      options.withSync === false
        ? undefined
        : () =>
            new Promise<void>((resolve, reject) => {
              syncs.push({ resolve, reject });
            }),
    durable: (results) => durable.push([...results]),
    maxItems: options.maxItems ?? 100,
    maxBytes: options.maxBytes ?? 1_000_000,
    ...(options.maxSyncs === undefined ? {} : { maxSyncs: options.maxSyncs }),
    sizeOf: (item) => item.length,
    schedule: (run) => scheduled.push(run),
  });
  const runScheduled = () => {
    for (const run of scheduled.splice(0)) run();
  };
  return {
    committer,
    batches,
    durable,
    syncs,
    runScheduled,
    failCommit(error: Error) {
      failNext = error;
    },
  };
}

/** Lets settled promises run their callbacks. */
const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

function track<T>(promise: Promise<T>) {
  const state: { value?: T; error?: unknown; settled: boolean } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { value, settled: true }),
    (error: unknown) => Object.assign(state, { error, settled: true }),
  );
  return state;
}

describe("GroupCommit", () => {
  test("items submitted in the same turn share one commit", async () => {
    const { committer, batches, syncs, runScheduled } = harness();
    const results = ["a", "b", "c"].map((item) => track(committer.submit(item)));
    expect(batches).toEqual([]);
    runScheduled();
    expect(batches).toEqual([["a", "b", "c"]]);
    expect(syncs).toHaveLength(1);
    await tick();
    expect(results.every((result) => !result.settled)).toBe(true);
    syncs[0]?.resolve();
    await tick();
    expect(results.map((result) => result.value)).toEqual(["id:a", "id:b", "id:c"]);
  });

  test("nothing resolves before its commit is durable; a second batch syncs beside the first", async () => {
    const { committer, batches, syncs, runScheduled } = harness();
    const first = track(committer.submit("a"));
    runScheduled();
    const second = track(committer.submit("b"));
    const third = track(committer.submit("c"));
    runScheduled();
    // The second batch does not wait for the first sync to end before it is written and synced.
    expect(batches).toEqual([["a"], ["b", "c"]]);
    expect(syncs).toHaveLength(2);
    expect(committer.syncing).toBe(2);
    syncs[0]?.resolve();
    await tick();
    expect(first.value).toBe("id:a");
    expect(second.settled || third.settled).toBe(false);
    syncs[1]?.resolve();
    await tick();
    expect([second.value, third.value]).toEqual(["id:b", "id:c"]);
  });

  test("with the syncs in flight at their limit, later items gather and commit when one ends", async () => {
    const { committer, batches, syncs, runScheduled } = harness({ maxSyncs: 1 });
    const first = track(committer.submit("a"));
    runScheduled();
    const second = track(committer.submit("b"));
    const third = track(committer.submit("c"));
    runScheduled();
    expect(batches).toEqual([["a"]]);
    expect(committer.pending).toBe(2);
    syncs[0]?.resolve();
    await tick();
    expect(first.value).toBe("id:a");
    expect(batches).toEqual([["a"], ["b", "c"]]);
    syncs[1]?.resolve();
    await tick();
    expect([second.value, third.value]).toEqual(["id:b", "id:c"]);
  });

  test("batches settle in commit order: a later sync that ends first waits for the earlier batch", async () => {
    const { committer, durable, syncs, runScheduled } = harness();
    const first = track(committer.submit("a"));
    runScheduled();
    const second = track(committer.submit("b"));
    runScheduled();
    syncs[1]?.resolve();
    await tick();
    expect(second.settled).toBe(false);
    expect(durable).toEqual([]);
    syncs[0]?.resolve();
    await tick();
    expect([first.value, second.value]).toEqual(["id:a", "id:b"]);
    expect(durable).toEqual([["id:a"], ["id:b"]]);
  });

  test("a batch whose earlier batch failed to sync fails too: its log frames come after them", async () => {
    const { committer, durable, syncs, runScheduled } = harness();
    const first = track(committer.submit("a"));
    runScheduled();
    const second = track(committer.submit("b"));
    runScheduled();
    syncs[1]?.resolve();
    syncs[0]?.reject(new Error("EIO"));
    await tick();
    expect((first.error as Error).message).toBe("EIO");
    expect((second.error as Error).message).toContain("earlier commit");
    expect(durable).toEqual([]);
  });

  test("while held nothing commits; release commits what gathered", async () => {
    const { committer, batches, syncs, runScheduled } = harness();
    committer.hold();
    const held = track(committer.submit("a"));
    runScheduled();
    expect(batches).toEqual([]);
    committer.release();
    expect(batches).toEqual([["a"]]);
    syncs[0]?.resolve();
    await tick();
    expect(held.value).toBe("id:a");
  });

  test("the durable hook hears of a batch after its sync, before its submitters resume", async () => {
    const { committer, durable, syncs, runScheduled } = harness();
    let durableWhenResolved: string[][] = [];
    const result = committer.submit("a").then((id) => {
      durableWhenResolved = durable.map((batch) => [...batch]);
      return id;
    });
    runScheduled();
    expect(durable).toEqual([]);
    syncs[0]?.resolve();
    expect(await result).toBe("id:a");
    expect(durableWhenResolved).toEqual([["id:a"]]);
  });

  test("a batch whose sync failed is never reported durable", async () => {
    const { committer, durable, syncs, runScheduled } = harness();
    const result = committer.submit("a").catch(() => "failed");
    runScheduled();
    syncs[0]?.reject(new Error("EIO"));
    expect(await result).toBe("failed");
    expect(durable).toEqual([]);
  });

  test("a full batch commits at once", () => {
    const { committer, batches } = harness({ maxItems: 2 });
    void committer.submit("a");
    void committer.submit("b");
    expect(batches).toEqual([["a", "b"]]);
  });

  test("a batch of many octets commits at once", () => {
    const { committer, batches } = harness({ maxBytes: 5 });
    void committer.submit("abc");
    expect(batches).toEqual([]);
    void committer.submit("def");
    expect(batches).toEqual([["abc", "def"]]);
  });

  test("a failed commit rejects every item of its batch, and the next batch still commits", async () => {
    const { committer, batches, syncs, runScheduled, failCommit } = harness();
    failCommit(new Error("disk full"));
    const failed = ["a", "b"].map((item) => track(committer.submit(item)));
    runScheduled();
    await tick();
    expect(failed.map((result) => (result.error as Error).message)).toEqual(["disk full", "disk full"]);
    const next = track(committer.submit("c"));
    runScheduled();
    syncs[0]?.resolve();
    await tick();
    expect(batches).toEqual([["c"]]);
    expect(next.value).toBe("id:c");
  });

  test("a failed sync rejects its batch", async () => {
    const { committer, syncs, runScheduled } = harness();
    const result = track(committer.submit("a"));
    runScheduled();
    syncs[0]?.reject(new Error("EIO"));
    await tick();
    expect((result.error as Error).message).toBe("EIO");
  });

  test("without a sync step a batch resolves when its commit returns", async () => {
    const { committer, runScheduled } = harness({ withSync: false });
    const result = track(committer.submit("a"));
    runScheduled();
    await tick();
    expect(result.value).toBe("id:a");
  });

  test("commitForClose writes what waits, even during a sync, and settles it when told", async () => {
    const { committer, batches, syncs, runScheduled } = harness();
    const first = track(committer.submit("a"));
    runScheduled();
    const waiting = track(committer.submit("b"));
    const settle = committer.commitForClose();
    expect(batches).toEqual([["a"], ["b"]]);
    await tick();
    expect(waiting.settled).toBe(false);
    settle();
    await tick();
    expect(waiting.value).toBe("id:b");
    syncs[0]?.resolve();
    await tick();
    expect(first.value).toBe("id:a");
    expect(committer.pending).toBe(0);
  });
});
