/**
 * The two ways mail leaves the queue:
 * - runWorker: the long-running delivery worker (`queue run`, and inside `serve --relay`). It
 *   wakes when mail is queued in this process, when a connection frees up, when the next retry
 *   is due, and every poll interval (mail queued by other processes, leases of dead workers).
 * - flushQueue: `queue flush`: everything selected is made due now and tried once in this
 *   process; it returns when each message was delivered, deferred or failed. Messages another
 *   worker holds are left to it and waited for, so the two never deliver the same lease.
 */
import {
  type AttemptReport,
  DEFAULT_POLL_MS,
  DeliveryEngine,
  type EngineOptions,
} from "./delivery-engine.ts";
import { Signal, sleep } from "./signal.ts";
import type { Queue, QueueId } from "./types.ts";

export interface WorkerOptions extends EngineOptions {
  /** A scheduling pass failed (the database was locked too long...); the worker goes on. */
  onError?: (error: unknown) => void;
}

export interface Worker {
  /** The lease owner name this worker uses. */
  readonly owner: string;
  /** Look for due mail now (the worker also wakes by itself on enqueue in this process). */
  wake(): void;
  /** Finishes the messages in hand, gives back other leases, says QUIT; resolves when done. */
  stop(): Promise<void>;
  /** Resolves when the worker has stopped. */
  readonly done: Promise<void>;
}

/** Shortest wait between passes while connections are busy, so a full worker does not spin. */
const MIN_PASS_INTERVAL_MS = 20;

export function runWorker(queue: Queue, options: WorkerOptions = {}): Worker {
  const now = options.now ?? Date.now;
  const poll = options.pollIntervalMs ?? DEFAULT_POLL_MS;
  const engine = new DeliveryEngine(queue, options);
  const wakeUp = new Signal();
  let stopping = false;
  const unsubscribe = queue.onEnqueued(() => wakeUp.fire());

  const loop = async (): Promise<void> => {
    let lastRecovery = Number.NEGATIVE_INFINITY;
    while (!stopping) {
      let delay = poll;
      try {
        if (performance.now() - lastRecovery >= poll) {
          await engine.recover();
          lastRecovery = performance.now();
        }
        await engine.schedule();
        const next = await engine.nextDue();
        if (next !== undefined) delay = Math.min(poll, Math.max(MIN_PASS_INTERVAL_MS, next - now()));
      } catch (error) {
        options.onError?.(error);
      }
      const failure = engine.takeFailure();
      if (failure !== undefined) options.onError?.(failure);
      const timer = sleep(delay);
      await Promise.race([timer.done, wakeUp.wait(), engine.changes.wait()]);
      timer.cancel();
    }
  };

  const done = loop().finally(async () => {
    unsubscribe();
    await engine.stop();
  });
  return {
    owner: engine.owner,
    wake: () => wakeUp.fire(),
    stop: async () => {
      stopping = true;
      wakeUp.fire();
      await done;
    },
    done,
  };
}

export interface FlushOptions extends EngineOptions {
  /** Only these messages; all of them when left out. */
  ids?: readonly QueueId[];
}

export interface FlushResult {
  /** Every attempt made in this flush, notifications included, in the order they settled. */
  attempts: AttemptReport[];
  /** Messages that were leased by another worker when the flush began and were waited for. */
  waited: boolean;
}

/** How often a flush looks again at messages another worker is delivering. */
const LEASE_WAIT_MS = 100;

export async function flushQueue(queue: Queue, options: FlushOptions = {}): Promise<FlushResult> {
  const now = options.now ?? Date.now;
  const selection = options.ids === undefined ? undefined : { ids: options.ids };
  const attempts: AttemptReport[] = [];
  const engine = new DeliveryEngine(
    queue,
    {
      ...options,
      onAttempt: (report) => {
        attempts.push(report);
        options.onAttempt?.(report);
      },
    },
    selection,
  );
  let waited = false;
  try {
    await queue.makeDue(now(), selection);
    for (;;) {
      await engine.recover();
      await engine.schedule();
      if (engine.active > 0) {
        await engine.changes.wait();
        continue;
      }
      if (engine.failure !== undefined) throw engine.failure;
      // Nothing due is left (notifications the flush caused were due at once and went too).
      if ((await engine.leasedElsewhere()) === 0) break;
      waited = true;
      await sleep(LEASE_WAIT_MS).done;
    }
  } finally {
    await engine.stop();
  }
  return { attempts, waited };
}
