/**
 * The command line of `smtpkit sendmail`, read the way sendmail, Postfix's sendmail(1) and msmtp
 * read it: getopt-style single-letter options that may be clustered (`-ti`) and take their value
 * attached or as the next word (`-fbob@b.test`, `-f bob@b.test`), `-o` options such as `-oi`,
 * and the Sendmail flags that mean nothing here accepted and ignored so that cron, PHP's mail()
 * and git send-email can call us in its place. cac cannot parse this, so the CLI routes it here
 * before cac sees it.
 */
import { UsageError } from "./exit-codes.ts";

export interface SendmailArgs {
  /** -t: recipients from the To, Cc and Bcc headers, added to those given as arguments. */
  extractRecipients: boolean;
  /** -i, -oi: a line with only "." does not end the message. */
  ignoreDots: boolean;
  /** -f or -r: the envelope sender. */
  sender?: string;
  /** -F: the display name for a From header that the message lacks. */
  fullName?: string;
  recipients: string[];
  /** -N: DSN NOTIFY, "never" or a list of success,failure,delay. */
  notify?: string;
  /** -R: DSN RET. */
  ret?: string;
  /** -V: DSN ENVID. */
  envid?: string;
  /** -v: the transcript on stderr. */
  verbose: boolean;
  help: boolean;
  /** Long options, shared with `smtpkit send`. */
  account?: string;
  server?: string;
  config?: string;
  dns?: string;
  dryRun: boolean;
}

/** Options that take a value (getopt "x:"), whatever we do with it. */
const WITH_VALUE = new Set(["A", "B", "C", "F", "L", "N", "O", "R", "V", "X", "b", "f", "h", "o", "p", "r"]);
/** Options without a value that are accepted and ignored (Postfix: -G gateway, -U initial, -m, -n). */
const IGNORED_FLAGS = new Set(["G", "U", "m", "n"]);
/** -b modes other than -bm (deliver a message) ask for a different program: a queue or an SMTP server. */
const MODE_NAMES: Record<string, string> = {
  a: "ARPANET mode",
  d: "daemon mode",
  D: "daemon mode",
  h: "the host status",
  H: "purging the host status",
  i: "initializing the alias database",
  l: "daemon mode",
  p: "listing the queue",
  P: "the queue count",
  s: "SMTP on standard input (stand-alone SMTP server mode)",
  t: "address test mode",
  v: "verifying addresses",
};
const LONG_WITH_VALUE = new Set(["account", "server", "config", "dns"]);
const LONG_FLAGS = new Set(["help", "dry-run"]);

function applyOption(args: SendmailArgs, letter: string, value: string | undefined): void {
  switch (letter) {
    case "t":
      args.extractRecipients = true;
      return;
    case "i":
      args.ignoreDots = true;
      return;
    case "v":
      args.verbose = true;
      return;
    case "f":
    case "r":
      args.sender = value;
      return;
    case "F":
      args.fullName = value;
      return;
    case "N":
      args.notify = value;
      return;
    case "R":
      args.ret = value;
      return;
    case "V":
      args.envid = value;
      return;
    case "o":
      // -oi is -i; -odi, -oem, -om, -oA..., -o7/-o8 and the rest set Sendmail options we do not have.
      if (value === "i") args.ignoreDots = true;
      return;
    case "b":
      if (value === "m") return;
      throw new UsageError(
        `sendmail -b${value}: ${MODE_NAMES[value?.[0] ?? ""] ?? "this mode"} is not supported; smtpkit sendmail only delivers a message from standard input (-bm)`,
      );
    case "I":
      throw new UsageError(`sendmail -I: ${MODE_NAMES.i} is not supported`);
    case "q":
      throw new UsageError("sendmail -q: smtpkit sendmail keeps no queue to run");
    default:
      // -A, -B (we tell 8-bit from 7-bit ourselves), -C, -h, -L, -O, -p, -X, and IGNORED_FLAGS.
      return;
  }
}

function applyLong(args: SendmailArgs, name: string, value: string | undefined): void {
  if (name === "help") args.help = true;
  else if (name === "dry-run") args.dryRun = true;
  else if (name === "account") args.account = value;
  else if (name === "server") args.server = value;
  else if (name === "config") args.config = value;
  else if (name === "dns") args.dns = value;
}

/** Parses everything after `sendmail` (or after the program name, when called as `sendmail`). */
export function parseSendmailArgs(argv: readonly string[]): SendmailArgs {
  const args: SendmailArgs = {
    extractRecipients: false,
    ignoreDots: false,
    recipients: [],
    verbose: false,
    help: false,
    dryRun: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] as string;
    if (word === "--") {
      args.recipients.push(...argv.slice(i + 1));
      break;
    }
    if (word.startsWith("--")) {
      const eq = word.indexOf("=");
      const name = word.slice(2, eq === -1 ? undefined : eq);
      if (LONG_FLAGS.has(name) && eq === -1) {
        applyLong(args, name, undefined);
        continue;
      }
      if (!LONG_WITH_VALUE.has(name)) throw new UsageError(`sendmail: unknown option ${word}`);
      const value = eq === -1 ? argv[++i] : word.slice(eq + 1);
      if (value === undefined) throw new UsageError(`sendmail: --${name} needs a value`);
      applyLong(args, name, value);
      continue;
    }
    // Like getopt, a lone "-" is an operand; sendmail takes operands as recipients anywhere.
    if (!word.startsWith("-") || word === "-") {
      args.recipients.push(word);
      continue;
    }
    for (let at = 1; at < word.length; at++) {
      const letter = word[at] as string;
      if (WITH_VALUE.has(letter)) {
        const attached = word.slice(at + 1);
        const value = attached !== "" ? attached : argv[++i];
        if (value === undefined) throw new UsageError(`sendmail: -${letter} needs a value`);
        applyOption(args, letter, value);
        break;
      }
      if (!"tivIq".includes(letter) && !IGNORED_FLAGS.has(letter)) {
        throw new UsageError(`sendmail: unknown option -${letter}`);
      }
      applyOption(args, letter, undefined);
    }
  }
  return args;
}

export const SENDMAIL_USAGE = `Usage: smtpkit sendmail [options] [--] [recipient...]
       (or a link named sendmail to the smtpkit binary)

Reads a message on standard input and delivers it, as /usr/sbin/sendmail does: through the
default account of the config file (or --account; --server alone uses no account), else to
each recipient's MX.
Adds Date, From and Message-ID headers when the message lacks them; never sends a Bcc header.

  -t               Recipients from the To, Cc and Bcc headers too (Bcc is removed)
  -i, -oi          A line with only "." does not end the message
  -f, -r ADDRESS   Envelope sender (default: the account's from, the From header, USER@host)
  -F NAME          Full name for the From header the message lacks (default: $NAME)
  -N WHEN          DSN notify: never, or a list of success,failure,delay
  -R full|hdrs     DSN return
  -V ENVID         DSN envelope ID
  -v               Print the SMTP transcript on stderr
  --account NAME   Use this account from the config file
  --server HOST[:PORT]  Send through this server
  --config PATH    Config file (default $XDG_CONFIG_HOME/smtpkit/config.toml)
  --dns HOST[:PORT]     DNS resolver for MX lookups
  --dry-run        Print the envelope and message instead of sending

Accepted and ignored: -bm -B TYPE -C FILE -G -h N -L LABEL -m -n -O OPT -o* -p PROTO -U -X FILE -A*.
Refused with exit 64: -bs -bp -bt -bd -bi -bv (and other -b modes), -I, -q.
`;
