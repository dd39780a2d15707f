import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openQueue } from "../../src/queue/open-queue.ts";

const dir = mkdtempSync(join(tmpdir(), "smtpkit-queue-durability-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("SIGKILL while queueing: every acknowledged message is in the queue afterwards", async () => {
  const path = join(dir, "queue.sqlite");
  const child = Bun.spawn([process.execPath, join(import.meta.dir, "fixtures", "enqueue-forever.ts"), path], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const acknowledged: string[] = [];
  const decoder = new TextDecoder();
  let partial = "";
  for await (const chunk of child.stdout) {
    partial += decoder.decode(chunk, { stream: true });
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    acknowledged.push(...lines.filter((line) => line !== ""));
    if (acknowledged.length >= 600) {
      child.kill("SIGKILL");
      break;
    }
  }
  await child.exited;
  expect(child.signalCode).toBe("SIGKILL");
  const queue = openQueue({ path });
  try {
    const stored = new Set((await queue.list()).map((entry) => entry.id));
    const lost = acknowledged.filter((id) => !stored.has(id));
    expect(lost).toEqual([]);
    expect(stored.size).toBeGreaterThanOrEqual(acknowledged.length);
  } finally {
    await queue.close();
  }
});
