// Postfix's smtp-sink as a test server. Facts measured with Postfix 3.7.11 (see harness.test.ts):
// - as root it needs `-u USER`; the dump directory must be writable by that user;
// - each accepted message becomes one dump file: X-Client-Addr, X-Client-Proto, X-Helo-Args (when the
//   client said HELO/EHLO), X-Mail-Args, one X-Rcpt-Args per RCPT, a three-line Received header, the
//   message, then one empty line;
// - in the dump, every CRLF is LF, dot-stuffing is already undone, and bare CRs are dropped, so a
//   message is restored byte for byte only if it used CRLF line ends throughout;
// - a transaction that ends before the final dot (RSET, rejected DATA) leaves no file.

import { chown, mkdir, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { freePort, LOOPBACK } from "./ports.ts";
import { requirePeer } from "./require-peer.ts";
import { type Daemon, startDaemon } from "./run-process.ts";
import { runningAsRoot, systemUser } from "./system-user.ts";
import { makeTempDir, removeTempDir } from "./temp-dir.ts";
import { waitForBanner } from "./wait-for-banner.ts";
import { waitForMessages } from "./wait-for-messages.ts";

/** The unprivileged user smtp-sink switches to when started as root. */
const SINK_USER = "nobody";
/** smtp-sink's listen backlog argument. */
const SINK_BACKLOG = 100;
/** The name smtp-sink greets with unless -h says otherwise. */
const SINK_DEFAULT_HOSTNAME = "smtp-sink";
/** Attempts when the free port we picked was taken before smtp-sink could bind it. */
const BIND_ATTEMPTS = 3;

/** SMTP command names as smtp-sink's -f/-r/-q take them (case-insensitive; "." is the end of DATA). */
export type SinkCommand =
  | "CONNECT"
  | "HELO"
  | "EHLO"
  | "MAIL"
  | "RCPT"
  | "DATA"
  | "."
  | "RSET"
  | "NOOP"
  | "VRFY"
  | "QUIT";

export interface SmtpSinkOptions {
  /** Default: a free loopback port. Give one to restart a sink on the same port. */
  port?: number;
  /** -8: do not announce 8BITMIME. */
  no8BitMime?: boolean;
  /** -e: do not announce ESMTP (EHLO is refused). */
  noEsmtp?: boolean;
  /** -p: do not announce PIPELINING. */
  noPipelining?: boolean;
  /** -f: answer these commands with 5xx ("500 5.3.0 Error: command failed"). Implies -p. */
  hardReject?: SinkCommand[];
  /** -r: answer these commands with 4xx ("450 4.3.0 Error: command failed"). Implies -p. */
  softReject?: SinkCommand[];
  /** -q: hang up without replying after these commands. */
  disconnectAfter?: SinkCommand[];
  /** -c: print counters (they go to output()). */
  counters?: boolean;
  /** -d: keep every accepted message as a file for messages(). Default true. */
  dump?: boolean;
  /** More smtp-sink flags, as on its command line (e.g. ["-h", "mx.test", "-E"]). */
  args?: string[];
}

export interface SinkMessage {
  /** The dump file it came from. */
  file: string;
  clientAddr: string;
  clientProto: string;
  /** The HELO/EHLO argument, when the client sent one. */
  heloArgs: string | null;
  /** The MAIL FROM argument as sent: address in brackets plus parameters. */
  mailArgs: string;
  /** The reverse-path without brackets ("" for <>). */
  mailFrom: string;
  mailParams: string[];
  /** Each RCPT TO argument as sent. */
  rcptArgs: string[];
  rcptTos: string[];
  /** The message as the client meant it: CRLF line ends restored, no transparency dots. */
  raw: Uint8Array;
}

export interface SmtpSink {
  host: string;
  port: number;
  /** The server process (e.g. to SIGKILL it in the middle of a delivery). */
  pid: number;
  /** The 220 greeting read while waiting for readiness. */
  greeting: string;
  /** The dump directory (null with dump: false). */
  dumpDir: string | null;
  /** Every message accepted so far, oldest first. */
  messages(): Promise<SinkMessage[]>;
  /** Waits until at least count messages were dumped (throws after timeoutMs, default 10 s). */
  waitForMessages(count: number, timeoutMs?: number): Promise<SinkMessage[]>;
  /** What smtp-sink printed (counters with -c, fatal errors). */
  output(): string;
  isRunning(): boolean;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function commandList(commands: SinkCommand[]): string {
  return commands.join(",");
}

function sinkArgs(options: SmtpSinkOptions, dumpDir: string | null): string[] {
  const args: string[] = [];
  if (runningAsRoot()) args.push("-u", SINK_USER);
  if (options.no8BitMime) args.push("-8");
  if (options.noEsmtp) args.push("-e");
  if (options.noPipelining) args.push("-p");
  if (options.hardReject?.length) args.push("-f", commandList(options.hardReject));
  if (options.softReject?.length) args.push("-r", commandList(options.softReject));
  if (options.disconnectAfter?.length) args.push("-q", commandList(options.disconnectAfter));
  if (options.counters) args.push("-c");
  // strftime template plus smtp-sink's random suffix: unique per message.
  if (dumpDir !== null) args.push("-d", join(dumpDir, "%Y%m%d%H%M%S."));
  args.push(...(options.args ?? []));
  return args;
}

/** Starts smtp-sink on loopback and waits for its greeting. */
export async function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const executable = requirePeer("smtp-sink");
  const workDir = await makeTempDir("smtp-sink");
  let daemon: Daemon | undefined;
  try {
    const wantDump = options.dump ?? true;
    const dumpDir = wantDump ? join(workDir, "dumps") : null;
    if (dumpDir !== null) {
      await mkdir(dumpDir);
      if (runningAsRoot()) {
        const { uid, gid } = await systemUser(SINK_USER);
        await chown(dumpDir, uid, gid);
      }
    }
    const customHostname = (options.args ?? []).includes("-h");
    let port = 0;
    let greeting = "";
    for (let attempt = 1; ; attempt++) {
      port = options.port ?? (await freePort());
      const running = startDaemon([
        executable,
        ...sinkArgs(options, dumpDir),
        `${LOOPBACK}:${port}`,
        `${SINK_BACKLOG}`,
      ]);
      daemon = running;
      try {
        greeting = await waitForBanner({
          host: LOOPBACK,
          port,
          isAlive: running.isRunning,
          describe: () => `smtp-sink (${running.output().trim()})`,
          accept: (text) => customHostname || text.includes(SINK_DEFAULT_HOSTNAME),
        });
        break;
      } catch (error) {
        await running.stop();
        daemon = undefined;
        const portTaken = /address already in use/i.test(running.output());
        if (!portTaken || options.port !== undefined || attempt >= BIND_ATTEMPTS) throw error;
      }
    }
    const started = daemon;
    const messages = (): Promise<SinkMessage[]> => {
      if (dumpDir === null) throw new Error("this smtp-sink was started with dump: false");
      return readDumps(dumpDir);
    };
    const close = async (): Promise<void> => {
      await started.stop();
      await removeTempDir(workDir);
    };
    return {
      host: LOOPBACK,
      port,
      pid: started.pid,
      greeting,
      dumpDir,
      messages,
      waitForMessages: (count, timeoutMs) => waitForMessages("smtp-sink", messages, count, timeoutMs),
      output: () => started.output(),
      isRunning: () => started.isRunning(),
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await daemon?.stop();
    await removeTempDir(workDir);
    throw error;
  }
}

async function readDumps(dumpDir: string): Promise<SinkMessage[]> {
  const names = await readdir(dumpDir);
  const files = await Promise.all(
    names.map(async (name) => {
      const path = join(dumpDir, name);
      const info = await stat(path, { bigint: true });
      return { path, mtime: info.mtimeNs };
    }),
  );
  // File names carry a random suffix, so arrival order comes from the modification time.
  files.sort((a, b) => (a.mtime < b.mtime ? -1 : a.mtime > b.mtime ? 1 : a.path.localeCompare(b.path)));
  const parsed = await Promise.all(
    files.map(async ({ path, mtime }) => {
      try {
        return parseSinkDump(new Uint8Array(await readFile(path)), path);
      } catch (error) {
        // smtp-sink writes a dump while the message arrives: a fresh file that does not parse yet
        // is a message still in flight, not a malformed dump. An old one is a real problem.
        if (Date.now() - Number(mtime / 1_000_000n) < IN_FLIGHT_DUMP_MS) return undefined;
        throw error;
      }
    }),
  );
  return parsed.filter((message): message is SinkMessage => message !== undefined);
}

/** How long a dump that does not parse yet is taken to be still in the making. */
const IN_FLIGHT_DUMP_MS = 5_000;

const LF = 0x0a;
const TAB = 0x09;
/** Lines of smtp-sink's own Received header (manual page, DUMP FILE FORMAT). */
const RECEIVED_LINES = 3;

/** Splits "<addr> PARAM=x" as smtp-sink recorded it (what the client sent after "MAIL FROM:"). */
export function splitPathArgs(args: string): { address: string; params: string[] } {
  const bracketed = /^<((?:"(?:[^"\\]|\\.)*"|[^>"])*)>\s*(.*)$/.exec(args);
  const [address, rest] = bracketed ? [bracketed[1] ?? "", bracketed[2] ?? ""] : splitFirstWord(args);
  return { address, params: rest.split(/\s+/).filter((word) => word.length > 0) };
}

function splitFirstWord(text: string): [string, string] {
  const space = text.search(/\s/);
  return space < 0 ? [text, ""] : [text.slice(0, space), text.slice(space + 1)];
}

/** Parses one smtp-sink dump file (format described at the top of this file). */
export function parseSinkDump(dump: Uint8Array, file = "(dump)"): SinkMessage {
  const fields: { name: string; value: string }[] = [];
  let offset = 0;
  const nextLine = (): string => {
    const end = dump.indexOf(LF, offset);
    if (end < 0) throw new Error(`${file}: smtp-sink dump ends inside its own headers`);
    const line = Buffer.from(dump.subarray(offset, end)).toString("latin1");
    offset = end + 1;
    return line;
  };
  for (;;) {
    const line = nextLine();
    const colon = line.indexOf(": ");
    if (colon < 0)
      throw new Error(`${file}: unexpected line in smtp-sink dump header: ${JSON.stringify(line)}`);
    const name = line.slice(0, colon);
    if (name === "Received") break;
    fields.push({ name, value: line.slice(colon + 2) });
  }
  for (let i = 1; i < RECEIVED_LINES; i++) {
    if (dump[offset] !== TAB)
      throw new Error(`${file}: smtp-sink Received header is not ${RECEIVED_LINES} lines`);
    nextLine();
  }
  // smtp-sink ends each dump with one empty line of its own.
  const end = dump.length > offset && dump[dump.length - 1] === LF ? dump.length - 1 : dump.length;
  const raw = restoreCrlf(dump.subarray(offset, end));

  const one = (name: string): string | null => fields.find((field) => field.name === name)?.value ?? null;
  const mailArgs = one("X-Mail-Args");
  if (mailArgs === null) throw new Error(`${file}: smtp-sink dump has no X-Mail-Args`);
  const rcptArgs = fields.filter((field) => field.name === "X-Rcpt-Args").map((field) => field.value);
  const mail = splitPathArgs(mailArgs);
  return {
    file,
    clientAddr: one("X-Client-Addr") ?? "",
    clientProto: one("X-Client-Proto") ?? "",
    heloArgs: one("X-Helo-Args"),
    mailArgs,
    mailFrom: mail.address,
    mailParams: mail.params,
    rcptArgs,
    rcptTos: rcptArgs.map((args) => splitPathArgs(args).address),
    raw,
  };
}

function restoreCrlf(body: Uint8Array): Uint8Array {
  let lines = 0;
  for (const byte of body) if (byte === LF) lines++;
  const out = new Uint8Array(body.length + lines);
  let at = 0;
  for (const byte of body) {
    if (byte === LF) out[at++] = 0x0d;
    out[at++] = byte;
  }
  return out;
}
