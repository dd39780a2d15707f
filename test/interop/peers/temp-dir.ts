import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reapOnExit } from "./reaper.ts";

/** Directories made here and not yet removed, each with the function that takes it off the reaper's list. */
const pending = new Map<string, () => void>();

/**
 * A fresh directory under the system temp dir. Mode 0755 rather than mkdtemp's 0700 because some
 * peers drop privileges (smtp-sink runs as nobody, Postfix's daemons as postfix) and must reach inside.
 */
export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `smtpkit-${prefix}-`));
  await chmod(dir, 0o755);
  pending.set(dir, reapOnExit({ dir }));
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  pending.get(dir)?.();
  pending.delete(dir);
}

/** Is this PEM text (as opposed to a path to a PEM file)? */
export function isPemText(value: string): boolean {
  return value.includes("-----BEGIN ");
}
