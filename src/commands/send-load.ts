/**
 * `send --repeat N --parallel C`: the message N times over C connections, each reused with RSET
 * only when needed. How we compare ourselves with Postfix's smtp-source.
 */
import { SmtpClientError } from "../client/errors.ts";
import type { PreparedMessage } from "../client/prepared-message.ts";
import { type ClientOptions, type DeliveryResult, SmtpClient } from "../client/smtp-client.ts";
import type { Envelope } from "../core/envelope.ts";
import { ExitCode } from "./exit-codes.ts";

interface Tally {
  sent: number;
  failed: number;
  /** Failures keyed by reply code, or by the client error kind when there was no reply. */
  failures: Map<string, number>;
}

function countFailure(tally: Tally, key: string): void {
  tally.failed++;
  tally.failures.set(key, (tally.failures.get(key) ?? 0) + 1);
}

function tallyResult(tally: Tally, outcome: DeliveryResult | Error): void {
  if (outcome instanceof Error) {
    countFailure(
      tally,
      outcome instanceof SmtpClientError
        ? outcome.reply
          ? String(outcome.reply.code)
          : outcome.kind
        : "error",
    );
  } else if (outcome.ok && !outcome.failedReply) tally.sent++;
  else countFailure(tally, String(outcome.failedReply?.code ?? outcome.final?.code ?? "refused"));
}

/**
 * One connection's share: a few transactions in flight at once (SmtpClient.sendMany), so with
 * PIPELINING each message costs one round trip. A broken connection is opened again.
 */
async function worker(
  options: ClientOptions,
  envelope: Envelope,
  message: PreparedMessage,
  claim: () => boolean,
  tally: Tally,
): Promise<void> {
  const job = { envelope, message };
  function* jobs(counter: { claimed: number }) {
    while (claim()) {
      counter.claimed++;
      yield job;
    }
  }
  for (;;) {
    const counter = { claimed: 0 };
    let answered = 0;
    let client: SmtpClient | undefined;
    try {
      client = await SmtpClient.connect(options);
      await client.sendMany(jobs(counter), (_job, outcome) => {
        answered++;
        tallyResult(tally, outcome);
      });
      await client.quit().catch(() => undefined);
      return;
    } catch (error) {
      if (!(error instanceof SmtpClientError)) throw error;
      if (!client) {
        // The connection itself failed: one message is charged with it, so the counts add up.
        if (claim()) tallyResult(tally, error);
        // A server that refuses connections outright would make this loop spin; stop this worker.
        if (error.kind === "network") return;
        continue;
      }
      client.close();
      // Claimed but never answered: lost with the connection.
      for (let i = answered; i < counter.claimed; i++) tallyResult(tally, error);
    }
  }
}

export async function runLoad(
  options: ClientOptions,
  envelope: Envelope,
  message: PreparedMessage,
  repeat: number,
  parallel: number,
  json: boolean,
): Promise<ExitCode> {
  const tally: Tally = { sent: 0, failed: 0, failures: new Map() };
  let claimed = 0;
  const claim = () => {
    if (claimed >= repeat) return false;
    claimed++;
    return true;
  };
  const started = performance.now();
  const progress = process.stderr.isTTY
    ? setInterval(
        () => process.stderr.write(`\r${tally.sent + tally.failed}/${repeat} sent, ${tally.failed} failed`),
        250,
      )
    : undefined;
  try {
    await Promise.all(
      Array.from({ length: Math.min(parallel, repeat) }, () =>
        worker(options, envelope, message, claim, tally),
      ),
    );
  } finally {
    if (progress) {
      clearInterval(progress);
      process.stderr.write("\n");
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const notAttempted = repeat - tally.sent - tally.failed;
  const summary = {
    messages: repeat,
    delivered: tally.sent,
    failed: tally.failed,
    notAttempted,
    seconds: Math.round(seconds * 1000) / 1000,
    messagesPerSecond: Math.round(tally.sent / seconds),
    failures: Object.fromEntries(tally.failures),
  };
  if (json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  else {
    const failures = [...tally.failures].map(([k, n]) => `${k}: ${n}`).join(", ");
    process.stderr.write(
      `${tally.sent} of ${repeat} delivered in ${summary.seconds} s (${summary.messagesPerSecond} messages/s)` +
        `${tally.failed ? `; failures by reply: ${failures}` : ""}${notAttempted ? `; ${notAttempted} not attempted` : ""}\n`,
    );
  }
  if (tally.sent === repeat) return ExitCode.ok;
  const permanent = [...tally.failures.keys()].some((k) => k.startsWith("5"));
  return permanent ? ExitCode.unavailable : ExitCode.tempFail;
}
