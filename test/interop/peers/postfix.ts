// A real Postfix smtpd on a loopback port, as its own instance: config, queue and data directories
// under a temp dir, started with `postfix -c DIR start` and stopped with `postfix -c DIR stop`.
// It listens, answers and decides relaying like any Postfix; mail it accepts is discarded (the
// transports point at discard:), so it never tries DNS or the outside world. Needs root.
//
// Measured here (Postfix 3.7.11): `postfix start` fails silently (exit 1, nothing printed) when
// maillog_file is outside maillog_file_prefixes; the prefixes are set to the instance's directory.

import { readFileSync } from "node:fs";
import { chmod, chown, mkdir, readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { freePort, LOOPBACK } from "./ports.ts";
import { reapOnExit } from "./reaper.ts";
import { requirePeer } from "./require-peer.ts";
import { runProcess } from "./run-process.ts";
import { runningAsRoot, systemGroup, systemUser } from "./system-user.ts";
import { isPemText, makeTempDir, removeTempDir } from "./temp-dir.ts";
import { waitForBanner } from "./wait-for-banner.ts";

const POSTFIX_USER = "postfix";
const DEFAULT_HOSTNAME = "postfix.test";
/** How long to wait for a killed master to disappear. */
const STOP_GRACE_MS = 5000;
const STOP_POLL_MS = 20;
/** How far back configuration files are dated (see writeConfig). */
const CONFIG_AGE_MS = 60_000;

export interface PostfixOptions {
  /** Default: a free loopback port. */
  port?: number;
  /** Greeting and EHLO name. Default "postfix.test". */
  myhostname?: string;
  /**
   * Clients allowed to relay (main.cf mynetworks). Default none, so Postfix is a closed relay even for
   * 127.0.0.1; pass ["127.0.0.0/8"] to make it an open relay for the test's client.
   */
  mynetworks?: string[];
  /** Offer STARTTLS with this certificate (PEM text or file paths; cert may hold the chain). */
  tls?: { cert: string; key: string };
  /** More main.cf settings; they override the defaults here (e.g. { relay_domains: "relay.test" }). */
  mainCf?: Record<string, string>;
}

export interface PostfixServer {
  host: string;
  port: number;
  greeting: string;
  /** The instance's main.cf/master.cf directory (for `postconf -c` or `postfix -c`). */
  configDir: string;
  queueDir: string;
  /** Postfix's log for this instance (smtpd connects, rejects, TLS). */
  log(): Promise<string>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function mainCf(
  dir: string,
  options: PostfixOptions,
  tlsFiles: { cert: string; key: string } | null,
): string {
  const hostname = options.myhostname ?? DEFAULT_HOSTNAME;
  const settings: Record<string, string> = {
    compatibility_level: "3.6",
    queue_directory: join(dir, "queue"),
    data_directory: join(dir, "data"),
    maillog_file: join(dir, "maillog"),
    maillog_file_prefixes: dir,
    mail_owner: POSTFIX_USER,
    setgid_group: "postdrop",
    myhostname: hostname,
    mydomain: hostname,
    myorigin: hostname,
    mydestination: hostname,
    inet_interfaces: LOOPBACK,
    inet_protocols: "ipv4",
    mynetworks: (options.mynetworks ?? []).join(", "),
    // Relay decisions must come out as 5xx, not the 4xx "defer_unauth_destination" of level 3.6.
    smtpd_relay_restrictions: "permit_mynetworks, reject_unauth_destination",
    local_recipient_maps: "",
    alias_maps: "",
    alias_database: "",
    // This machine's resolver answers nothing: no lookups at all.
    smtpd_peername_lookup: "no",
    disable_dns_lookups: "yes",
    smtp_dns_support_level: "disabled",
    default_transport: "discard",
    local_transport: "discard",
    relay_transport: "discard",
    virtual_transport: "discard",
    ...(tlsFiles
      ? {
          smtpd_tls_security_level: "may",
          smtpd_tls_chain_files: `${tlsFiles.key}, ${tlsFiles.cert}`,
          smtpd_tls_loglevel: "1",
        }
      : {}),
    ...options.mainCf,
  };
  return `${Object.entries(settings)
    .map(([name, value]) => `${name} = ${value}`)
    .join("\n")}\n`;
}

/** Only the daemons an smtpd needs, none chrooted (the chroot would lack /etc files and libraries). */
function masterCf(port: number): string {
  return `${[
    `${LOOPBACK}:${port} inet n - n - - smtpd`,
    "pickup unix n - n 60 1 pickup",
    "cleanup unix n - n - 0 cleanup",
    "qmgr unix n - n 300 1 qmgr",
    "tlsmgr unix - - n 1000? 1 tlsmgr",
    "rewrite unix - - n - - trivial-rewrite",
    "bounce unix - - n - 0 bounce",
    "defer unix - - n - 0 bounce",
    "trace unix - - n - 0 bounce",
    "verify unix - - n - 1 verify",
    "flush unix n - n 1000? 0 flush",
    "proxymap unix - - n - - proxymap",
    "anvil unix - - n - 1 anvil",
    "scache unix - - n - 1 scache",
    "discard unix - - n - - discard",
    "error unix - - n - - error",
    "retry unix - - n - - error",
    "postlog unix-dgram n - n - 1 postlogd",
  ].join("\n")}\n`;
}

/**
 * Postfix will not read a configuration file modified within the last second (it sleeps in 300 ms
 * steps until the file is older, measured: 1.5-2 s per start), so ours are dated a minute back.
 */
async function writeConfig(path: string, text: string): Promise<void> {
  await writeFile(path, text);
  const past = new Date(Date.now() - CONFIG_AGE_MS);
  await utimes(path, past, past);
}

async function placeTls(
  tls: { cert: string; key: string },
  dir: string,
): Promise<{ cert: string; key: string }> {
  const place = async (value: string, name: string): Promise<string> => {
    if (!isPemText(value)) return value;
    const path = join(dir, name);
    await writeFile(path, value, { mode: 0o600 });
    return path;
  };
  return { cert: await place(tls.cert, "smtpd-cert.pem"), key: await place(tls.key, "smtpd-key.pem") };
}

/** Is pid a live process? A zombie (killed, not yet reaped by init) counts as gone. */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/**
 * Ends the whole instance at once: master runs as a session leader, so its daemons share its process
 * group. Faster than `postfix stop` (master lingers about a second) and nothing here is worth saving.
 */
async function killInstance(masterPid: number): Promise<void> {
  try {
    process.kill(-masterPid, "SIGKILL");
  } catch {
    // Already gone.
  }
  const deadline = performance.now() + STOP_GRACE_MS;
  while (isRunning(masterPid) && performance.now() < deadline) await Bun.sleep(STOP_POLL_MS);
}

/**
 * The queue directories `post-install create-missing` would make (owners and modes as in Postfix's
 * postfix-files), plus the quick-start marker that lets `postfix start` skip that script and its
 * integrity checks: they cost 2-3 s per fresh instance, start itself a fifth of a second.
 */
async function createQueueDirectories(queueDir: string, owner: { uid: number; gid: number }): Promise<void> {
  const postdrop = (await systemGroup("postdrop")) ?? owner.gid;
  const layout: [name: string, mode: number, uid: number, gid: number][] = [
    ...[
      "active",
      "bounce",
      "corrupt",
      "defer",
      "deferred",
      "flush",
      "hold",
      "incoming",
      "private",
      "saved",
      "trace",
    ].map((name): [string, number, number, number] => [name, 0o700, owner.uid, 0]),
    ["maildrop", 0o730, owner.uid, postdrop],
    ["public", 0o710, owner.uid, postdrop],
    ["pid", 0o755, 0, 0],
  ];
  for (const [name, mode, uid, gid] of layout) {
    const path = join(queueDir, name);
    await mkdir(path);
    await chown(path, uid, gid);
    await chmod(path, mode);
  }
  await writeFile(join(queueDir, "quick-start"), "");
}

async function readMasterPid(queueDir: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(join(queueDir, "pid", "master.pid"), "utf8")).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

async function readLog(dir: string): Promise<string> {
  try {
    return await readFile(join(dir, "maillog"), "utf8");
  } catch {
    return "";
  }
}

/** Starts a private Postfix instance and waits for its greeting. */
export async function startPostfix(options: PostfixOptions = {}): Promise<PostfixServer> {
  const postfix = requirePeer("postfix");
  if (!runningAsRoot()) throw new Error("startPostfix: Postfix can only be started as root");
  const dir = await makeTempDir("postfix");
  const configDir = join(dir, "etc");
  const queueDir = join(dir, "queue");
  let started = false;
  let masterPid: number | null = null;
  let unregister = (): void => {};
  const close = async (): Promise<void> => {
    unregister();
    if (masterPid !== null) await killInstance(masterPid);
    else if (started) await runProcess([postfix, "-c", configDir, "stop"], { timeoutMs: 10_000 });
    await removeTempDir(dir);
  };
  try {
    await mkdir(configDir);
    await mkdir(queueDir);
    const dataDir = join(dir, "data");
    await mkdir(dataDir);
    const owner = await systemUser(POSTFIX_USER);
    await chown(dataDir, owner.uid, owner.gid);
    const tlsFiles = options.tls ? await placeTls(options.tls, configDir) : null;
    const port = options.port ?? (await freePort());
    await writeConfig(join(configDir, "main.cf"), mainCf(dir, options, tlsFiles));
    await writeConfig(join(configDir, "master.cf"), masterCf(port));

    await createQueueDirectories(queueDir, owner);
    const start = await runProcess([postfix, "-c", configDir, "start"], { timeoutMs: 30_000 });
    if (start.exitCode !== 0) {
      const check = await runProcess([postfix, "-c", configDir, "check"], { timeoutMs: 30_000 });
      throw new Error(
        `postfix start failed (exit ${start.exitCode}): ${start.stdout}${start.stderr}` +
          `\npostfix check: ${check.stdout}${check.stderr}\nlog:\n${await readLog(dir)}`,
      );
    }
    started = true;
    masterPid = await readMasterPid(queueDir);
    const pid = masterPid;
    if (pid !== null) unregister = reapOnExit({ group: pid });
    const hostname = options.myhostname ?? DEFAULT_HOSTNAME;
    const greeting = await waitForBanner({
      host: LOOPBACK,
      port,
      isAlive: () => pid === null || isRunning(pid),
      describe: () => "postfix",
      accept: (text) => text.includes(hostname),
    }).catch(async (error: unknown) => {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`${reason}\npostfix log:\n${await readLog(dir)}`);
    });
    return {
      host: LOOPBACK,
      port,
      greeting,
      configDir,
      queueDir,
      log: () => readLog(dir),
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
