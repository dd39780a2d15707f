// Postfix's smtp-source as a load-generating client: it is also our yardstick in benchmarks.

import { LOOPBACK } from "./ports.ts";
import { requirePeer } from "./require-peer.ts";
import { type ProcessResult, type RunningProcess, runProcess, startProcess } from "./run-process.ts";

export interface SmtpSourceOptions {
  port: number;
  host?: string;
  /** -s: parallel sessions. */
  sessions?: number;
  /** -m: messages in total. */
  messages?: number;
  /** -l: message body length in octets. */
  messageSize?: number;
  /** -d: keep each connection for many messages instead of one connection per message. */
  reuseConnections?: boolean;
  /** -f: envelope sender (smtp-source's default is foo@<this host's name>). */
  from?: string;
  /** -t: envelope recipient. */
  to?: string;
  /** -r: recipients per message. */
  recipients?: number;
  /** -F: send this pre-formatted message file instead of generated text. */
  messageFile?: string;
  /** More smtp-source flags, as on its command line. */
  args?: string[];
  /** Kill it (SIGKILL) after this long. */
  timeoutMs?: number;
}

function sourceCommand(executable: string, options: SmtpSourceOptions): string[] {
  const args: string[] = [];
  if (options.sessions !== undefined) args.push("-s", String(options.sessions));
  if (options.messages !== undefined) args.push("-m", String(options.messages));
  if (options.messageSize !== undefined) args.push("-l", String(options.messageSize));
  if (options.reuseConnections) args.push("-d");
  if (options.from !== undefined) args.push("-f", options.from);
  if (options.to !== undefined) args.push("-t", options.to);
  if (options.recipients !== undefined) args.push("-r", String(options.recipients));
  if (options.messageFile !== undefined) args.push("-F", options.messageFile);
  args.push(...(options.args ?? []));
  return [executable, ...args, `${options.host ?? LOOPBACK}:${options.port}`];
}

/** Runs smtp-source to completion. exitCode 0 means every message went through; elapsedMs is wall time. */
export function runSmtpSource(options: SmtpSourceOptions): Promise<ProcessResult> {
  return runProcess(sourceCommand(requirePeer("smtp-source"), options), { timeoutMs: options.timeoutMs });
}

/** Starts smtp-source without waiting, e.g. to SIGKILL the server (or it) in the middle of a run. */
export function startSmtpSource(options: SmtpSourceOptions): RunningProcess {
  return startProcess(sourceCommand(requirePeer("smtp-source"), options), { timeoutMs: options.timeoutMs });
}
