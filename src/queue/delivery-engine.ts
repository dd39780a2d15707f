/**
 * The scheduler behind `queue run` and `queue flush`: for each destination with due mail it
 * starts connection runners (at most `perDestination` each, `concurrency` in all). A runner opens
 * one session and keeps it for as long as the destination has due messages, leasing them a batch
 * at a time, so many messages share one connection. Outcomes are settled without waiting for the
 * commit (the queue batches them), which keeps the connection busy; a crash before a commit only
 * means the lease runs out and the message goes again (at least once, never lost).
 */
import { hostname as systemHostname } from "node:os";
import { SmtpClientError } from "../client/errors.ts";
import { PreparedMessage } from "../client/prepared-message.ts";
import { DEFAULT_SEND_WINDOW, type SmtpClient } from "../client/smtp-client.ts";
import { readSecret } from "../config/secret.ts";
import { createResolver, type Resolver } from "../net/dns.ts";
import { DEFAULT_BACKOFF_MAX_MS, DEFAULT_BACKOFF_MIN_MS, DEFAULT_MAX_AGE_MS } from "./backoff.ts";
import { type ConnectContext, ConnectError, connectDestination, RouteConfigError } from "./connect.ts";
import { leaseOwnerAlive, newLeaseOwner, retireLeaseOwner } from "./lease-owner.ts";
import { leavesConnectionUsable, type Verdict, verdictForError, verdictsForResult } from "./outcome.ts";
import { describeDestination, destinationDomain, type QueueRoute } from "./route.ts";
import { planSettlement, type RetryPolicy } from "./settlement-plan.ts";
import { Signal } from "./signal.ts";
import type {
  DueDestination,
  LeasedMessage,
  Queue,
  QueueId,
  RecipientOutcome,
  Selection,
  Settlement,
} from "./types.ts";

/** The defaults: 20 connections in all, 5 to one destination (Postfix: 20 per destination). */
export const DEFAULT_CONCURRENCY = 20;
export const DEFAULT_PER_DESTINATION = 5;
/** A lease lasts this long unless renewed; a live worker renews every third of it. */
export const DEFAULT_LEASE_MS = 5 * 60_000;
/** At most this many messages are leased at a time by one connection. */
export const DEFAULT_BATCH = 200;
/**
 * A connection's first lease is this small. The runners a schedule starts all lease at once, one
 * after the other on the main thread: ten leases of 200 took about 60 ms before the first message
 * went out; small first leases let every connection start sending within a few milliseconds.
 */
const FIRST_LEASE = 20;
/** How often a worker looks for mail queued by other processes and for dead workers' leases. */
export const DEFAULT_POLL_MS = 1000;
/** X.3.5: system incorrectly configured (a route's secret or file is missing). */
const CONFIG_STATUS = "4.3.5";

export interface EngineOptions {
  concurrency?: number;
  perDestination?: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  maxAgeMs?: number;
  /** Off unless set. */
  delayWarningMs?: number;
  /** For MX lookups and host names; default: the route's `dns`, else the system's. */
  resolver?: Resolver;
  now?: () => number;
  /** Our name: EHLO when the route names none, and Reporting-MTA. */
  hostname?: string;
  /** Where notifications go; default: the route of the message they are about. */
  dsnRoute?: QueueRoute;
  leaseMs?: number;
  batchSize?: number;
  pollIntervalMs?: number;
  readSecret?: ConnectContext["readSecret"];
  /** Port on MX hosts when the route names none: 25 (the CLI's SMTPKIT_MX_PORT test hook changes it). */
  mxPort?: number;
  /** One report per attempt at a message (for logs). */
  onAttempt?: (report: AttemptReport) => void;
}

export interface AttemptReport {
  id: QueueId;
  /** "host:port" or the domain. */
  destination: string;
  at: number;
  remoteMta?: string;
  recipients: { index: number; address: string; outcome: Exclude<RecipientOutcome, { state: "released" }> }[];
  /** Notifications queued about it. */
  notices: QueueId[];
}

function addressOf(message: LeasedMessage, position: number): string {
  const mailbox = message.envelope.recipients[position]?.path.mailbox;
  if (mailbox === null || mailbox === undefined) return "";
  return mailbox.domain === "" ? mailbox.local : `${mailbox.local}@${mailbox.domain}`;
}

function verdictForConnectError(error: ConnectError): Verdict {
  const reason = error.reason;
  if (reason instanceof RouteConfigError)
    return { kind: "temporary", status: CONFIG_STATUS, error: reason.message };
  return verdictForError(reason);
}

export class DeliveryEngine {
  readonly owner: string;
  readonly #queue: Queue;
  readonly #now: () => number;
  readonly #concurrency: number;
  readonly #perDestination: number;
  readonly #leaseMs: number;
  readonly #batch: number;
  readonly #policy: RetryPolicy;
  readonly #connect: ConnectContext;
  readonly #resolvers = new Map<string, Resolver>();
  readonly #resolver: Resolver | undefined;
  readonly #onAttempt: ((report: AttemptReport) => void) | undefined;
  /** Flush: only these messages (and the notifications made about them). Undefined: everything. */
  readonly #ids: Set<QueueId> | undefined;
  readonly #running = new Map<string, number>();
  #total = 0;
  #stopping = false;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  /** Fired whenever a runner ends (a connection slot is free again). */
  readonly changes = new Signal();
  readonly #runners = new Set<Promise<void>>();
  #failure: unknown;

  constructor(queue: Queue, options: EngineOptions = {}, selection?: Selection) {
    this.#queue = queue;
    this.owner = newLeaseOwner();
    this.#now = options.now ?? Date.now;
    this.#concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
    this.#perDestination = Math.max(1, options.perDestination ?? DEFAULT_PER_DESTINATION);
    this.#leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
    this.#batch = Math.max(1, options.batchSize ?? DEFAULT_BATCH);
    const hostname = options.hostname ?? systemHostname();
    this.#policy = {
      backoffMinMs: options.backoffMinMs ?? DEFAULT_BACKOFF_MIN_MS,
      backoffMaxMs: options.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS,
      maxAgeMs: options.maxAgeMs ?? DEFAULT_MAX_AGE_MS,
      reportingMta: hostname,
      ...(options.delayWarningMs === undefined ? {} : { delayWarningMs: options.delayWarningMs }),
      ...(options.dsnRoute === undefined ? {} : { noticeRoute: options.dsnRoute }),
    };
    this.#resolver = options.resolver;
    this.#connect = {
      resolver: options.resolver ?? createResolver(),
      hostname,
      readSecret: options.readSecret ?? readSecret,
      ...(options.mxPort === undefined ? {} : { mxPort: options.mxPort }),
    };
    this.#onAttempt = options.onAttempt;
    this.#ids = selection?.ids === undefined ? undefined : new Set(selection.ids);
    this.#heartbeat = setInterval(() => this.#renew(), Math.max(1000, Math.floor(this.#leaseMs / 3)));
    this.#heartbeat.unref();
  }

  /** Connections open (or opening) now. */
  get active(): number {
    return this.#total;
  }

  /** The first error that stopped a runner (a database failure), if any. */
  get failure(): unknown {
    return this.#failure;
  }

  /** The failure, once: a long-running worker reports it and goes on. */
  takeFailure(): unknown {
    const failure = this.#failure;
    this.#failure = undefined;
    return failure;
  }

  #selection(): Selection | undefined {
    return this.#ids === undefined ? undefined : { ids: [...this.#ids] };
  }

  /** Gives back leases of workers that died (on this host at once, elsewhere when they run out). */
  recover(): Promise<number> {
    return this.#queue.recoverLeases(this.#now(), (owner) => owner === this.owner || leaseOwnerAlive(owner));
  }

  /** Starts runners for what is due, within the limits; returns how many it started. */
  async schedule(): Promise<number> {
    if (this.#stopping) return 0;
    let started = 0;
    const due = await this.#queue.dueDestinations(this.#now(), this.#selection());
    if (this.#stopping) return 0;
    for (const destination of due) {
      let running = this.#running.get(destination.destination) ?? 0;
      const wanted = Math.min(this.#perDestination, destination.messages);
      // Each new connection leases its share, so the due mail spreads over all of them.
      const share = Math.min(this.#batch, Math.max(1, Math.ceil(destination.messages / wanted)));
      while (running < wanted && this.#total < this.#concurrency) {
        running++;
        started++;
        this.#start(destination, share);
      }
    }
    return started;
  }

  /** The earliest time something in the selection is due (or a lease runs out). */
  nextDue(): Promise<number | undefined> {
    return this.#queue.nextDue(this.#selection());
  }

  /** Recipients in the selection leased by other workers right now. */
  leasedElsewhere(): Promise<number> {
    return this.#queue.countLeased(this.owner, this.#selection());
  }

  /** Stops leasing; connections finish the message in hand, give back the rest, and say QUIT. */
  async stop(): Promise<void> {
    this.#stopping = true;
    while (this.#runners.size > 0) await Promise.allSettled([...this.#runners]);
    clearInterval(this.#heartbeat);
    try {
      await this.#queue.releaseLeases(this.owner, this.#now());
    } finally {
      retireLeaseOwner(this.owner);
    }
  }

  /** Resolves when no runner is left. */
  async idle(): Promise<void> {
    while (this.#runners.size > 0) await Promise.allSettled([...this.#runners]);
  }

  #renew(): void {
    this.#queue.renewLeases(this.owner, this.#now() + this.#leaseMs).catch(() => {
      // The queue is closing; the leases run out on their own.
    });
  }

  #start(destination: DueDestination, share: number): void {
    const key = destination.destination;
    this.#running.set(key, (this.#running.get(key) ?? 0) + 1);
    this.#total++;
    const runner = this.#run(destination, share)
      .catch((error: unknown) => {
        this.#failure ??= error;
      })
      .finally(() => {
        const left = (this.#running.get(key) ?? 1) - 1;
        if (left === 0) this.#running.delete(key);
        else this.#running.set(key, left);
        this.#total--;
        this.#runners.delete(runner);
        this.changes.fire();
      });
    this.#runners.add(runner);
  }

  #resolverFor(route: QueueRoute): Resolver {
    if (this.#resolver !== undefined) return this.#resolver;
    const dns = route.kind === "mx" ? (route.dns ?? "") : "";
    let resolver = this.#resolvers.get(dns);
    if (resolver === undefined) {
      resolver = createResolver(dns === "" ? undefined : dns);
      this.#resolvers.set(dns, resolver);
    }
    return resolver;
  }

  async #run(destination: DueDestination, share: number): Promise<void> {
    const route = destination.route;
    const context: ConnectContext = { ...this.#connect, resolver: this.#resolverFor(route) };
    let client: SmtpClient | undefined;
    let remoteMta: string | undefined;
    /** After a failed connection, the rest of the destination's due mail is deferred with its reason. */
    let suspended: { verdict: Verdict; remoteMta: string | undefined } | undefined;
    const settling: Promise<unknown>[] = [];
    const inflight: Promise<void>[] = [];
    let limit = Math.min(share, FIRST_LEASE);
    try {
      while (!this.#stopping) {
        const now = this.#now();
        const batch = await this.#queue.lease(destination.destination, {
          owner: this.owner,
          limit,
          now,
          until: now + this.#leaseMs,
          ...this.#selection(),
        });
        if (batch.length === 0) break;
        limit = share;
        for (const [position, message] of batch.entries()) {
          if (this.#stopping) {
            settling.push(...batch.slice(position).map((rest) => this.#release(rest)));
            break;
          }
          if (suspended === undefined && (client === undefined || !client.usable)) {
            client?.close();
            client = undefined;
            try {
              const connected = await connectDestination(
                route,
                destinationDomain(destination.destination),
                context,
              );
              client = connected.client;
              remoteMta = connected.remoteMta;
            } catch (error) {
              if (!(error instanceof ConnectError)) throw error;
              suspended = { verdict: verdictForConnectError(error), remoteMta: error.remoteMta };
            }
          }
          if (suspended !== undefined || client === undefined) {
            const verdict = suspended?.verdict ?? {
              kind: "temporary",
              status: "4.4.1",
              error: "no connection",
            };
            const verdicts = message.envelope.recipients.map(() => verdict);
            settling.push(this.#settle(destination, message, verdicts, suspended?.remoteMta));
            continue;
          }
          // Up to SEND_WINDOW transactions in flight on the connection: with PIPELINING each
          // message goes out right behind the previous one, one round trip per message.
          const mta = remoteMta;
          inflight.push(
            this.#attempt(client, message).then((verdicts) => {
              settling.push(this.#settle(destination, message, verdicts, mta));
            }),
          );
          if (inflight.length >= DEFAULT_SEND_WINDOW) await inflight.shift();
        }
      }
    } finally {
      await Promise.all(inflight);
      // Every outcome is in: nothing more will join their batch (measured: up to 100 ms saved).
      this.#queue.commitWaiting();
      if (client?.usable) await client.quit();
      else client?.close();
      await Promise.all(settling);
    }
  }

  async #attempt(client: SmtpClient, message: LeasedMessage): Promise<Verdict[]> {
    const count = message.envelope.recipients.length;
    try {
      const prepared = new PreparedMessage(message.raw, {
        smtpUtf8: message.envelope.mailParams.smtpUtf8 === true,
        binary: message.envelope.mailParams.body === "BINARYMIME",
      });
      const result = await client.send(message.envelope, prepared);
      return verdictsForResult(result, count);
    } catch (error) {
      let verdict: Verdict;
      if (error instanceof SmtpClientError) {
        verdict = verdictForError(error);
        if (!leavesConnectionUsable(error)) client.close();
      } else {
        // A bug of ours must not lose the message or stop the worker: defer it and drop the session.
        verdict = { kind: "temporary", status: "4.3.0", error: `internal error: ${String(error)}` };
        client.close();
      }
      return Array.from({ length: count }, () => verdict);
    }
  }

  #settle(
    destination: DueDestination,
    message: LeasedMessage,
    verdicts: readonly Verdict[],
    remoteMta: string | undefined,
  ): Promise<unknown> {
    const now = this.#now();
    const settlement: Settlement = planSettlement(
      message,
      verdicts,
      remoteMta,
      this.owner,
      now,
      this.#policy,
    );
    return this.#queue.settle(settlement).then((notices) => {
      // A flush follows the notifications it caused, so `queue flush ID` delivers the bounce too.
      if (this.#ids !== undefined) for (const id of notices) this.#ids.add(id);
      this.#onAttempt?.({
        id: message.id,
        destination: describeDestination(destination.destination),
        at: now,
        ...(remoteMta === undefined ? {} : { remoteMta }),
        recipients: settlement.recipients.flatMap(({ index, outcome }, position) =>
          outcome.state === "released" ? [] : [{ index, address: addressOf(message, position), outcome }],
        ),
        notices,
      });
    });
  }

  #release(message: LeasedMessage): Promise<unknown> {
    return this.#queue.settle({
      id: message.id,
      owner: this.owner,
      at: this.#now(),
      recipients: message.recipientIndexes.map((index) => ({ index, outcome: { state: "released" } })),
    });
  }
}
