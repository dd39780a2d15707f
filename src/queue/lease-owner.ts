import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

/**
 * A lease owner names one worker: "host:pid:token". The token tells apart two workers in one
 * process (`serve --relay`'s worker and a flush from its API) and a pid the system reused.
 */
export function newLeaseOwner(host: string = hostname()): string {
  const owner = `${host}:${process.pid}:${randomBytes(6).toString("hex")}`;
  ownersHere.add(owner);
  return owner;
}

/** Owners created by this process and not yet retired. */
const ownersHere = new Set<string>();

/** The worker is done: a lease still under its name is then as dead as a crashed process's. */
export function retireLeaseOwner(owner: string): void {
  ownersHere.delete(owner);
}

/**
 * Whether the worker that took a lease may still be running. On this host a lease whose process
 * is gone is given back at once, so a restarted worker retries a crashed one's messages without
 * waiting for the lease to run out; leases from other hosts (a queue on a shared disk) are
 * trusted until they run out.
 */
export function leaseOwnerAlive(owner: string, host: string = hostname()): boolean {
  const last = owner.lastIndexOf(":");
  const middle = owner.lastIndexOf(":", last - 1);
  if (last < 0 || middle < 0) return true;
  if (owner.slice(0, middle) !== host) return true;
  const pid = Number(owner.slice(middle + 1, last));
  if (!Number.isInteger(pid) || pid <= 0) return true;
  // Our own pid: one of our workers, or an earlier process that had the same pid.
  if (pid === process.pid) return ownersHere.has(owner);
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
