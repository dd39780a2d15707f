// --webhook-url: swaks delivers over SMTP to a running `serve`, and each message's summary
// arrives at a loopback HTTP endpoint, as Mailpit's webhook sends it.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { LOOPBACK } from "./peers/ports.ts";
import { runSwaks } from "./peers/swaks.ts";
import { queuedIds, type ServeProcess, startServe } from "./serve-process.ts";

interface Announced {
  ID: string;
  Subject: string;
  From: { Address: string };
}

const announced: Announced[] = [];
let endpoint: ReturnType<typeof Bun.serve>;
let serve: ServeProcess;

beforeAll(async () => {
  endpoint = Bun.serve({
    hostname: LOOPBACK,
    port: 0,
    async fetch(request) {
      announced.push((await request.json()) as Announced);
      return new Response("");
    },
  });
  serve = await startServe({
    memory: true,
    args: ["--webhook-url", `http://${LOOPBACK}:${endpoint.port}/mail`, "--webhook-limit", "0"],
  });
});

afterAll(async () => {
  await serve?.close();
  endpoint?.stop(true);
});

test("each message swaks sends is announced with its ID, subject and sender", async () => {
  const ids: string[] = [];
  for (const subject of ["Build 1 failed", "Build 2 passed"]) {
    const sent = await runSwaks([
      "--server",
      `${LOOPBACK}:${serve.port}`,
      "--from",
      "ci@example.com",
      "--to",
      "team@example.com",
      "--header",
      `Subject: ${subject}`,
    ]);
    expect(sent.exitCode).toBe(0);
    ids.push(...queuedIds(sent.transcript));
  }
  for (let waited = 0; announced.length < 2 && waited < 5_000; waited += 20) await Bun.sleep(20);
  expect(announced.map((entry) => [entry.ID, entry.Subject, entry.From.Address])).toEqual([
    [ids[0] ?? "", "Build 1 failed", "ci@example.com"],
    [ids[1] ?? "", "Build 2 passed", "ci@example.com"],
  ]);
});
