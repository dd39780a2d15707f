// swaks, the SMTP Swiss army knife, as a client. It prints its transcript on stdout in the notation
// our own -v copies: "<- " received, " -> " sent, "<~ "/" ~> " over TLS, "=== " info, "*** " errors.

import { requirePeer } from "./require-peer.ts";
import { type ProcessResult, runProcess } from "./run-process.ts";

/** Long enough for a multi-megabyte message over loopback; a hung peer fails the test instead of hanging it. */
const DEFAULT_TIMEOUT_MS = 30_000;

export interface SwaksResult extends ProcessResult {
  /** The SMTP transcript (swaks' stdout). */
  transcript: string;
}

export interface SwaksOptions {
  /** Fed to swaks' stdin, e.g. the message with `--data -`. */
  input?: Uint8Array | string;
  timeoutMs?: number;
}

/**
 * Runs swaks with these arguments, e.g.
 * ["--server", `127.0.0.1:${port}`, "--from", "a@x.test", "--to", "b@y.test,c@y.test", "--data", "-"].
 * Several recipients go comma-separated in one --to: a second --to replaces the first.
 * swaks' exit code is 0 on success, non-zero when any step failed (see `swaks --help`, "EXIT CODES").
 */
export async function runSwaks(args: string[], options: SwaksOptions = {}): Promise<SwaksResult> {
  const swaks = requirePeer("swaks");
  const result = await runProcess([swaks, ...args], {
    stdin: options.input,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  });
  return { ...result, transcript: result.stdout };
}
