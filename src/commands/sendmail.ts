/**
 * `smtpkit sendmail`: a stand-in for /usr/sbin/sendmail (cron, PHP's mail(), git send-email). It
 * reads one message on standard input and delivers it with send's machinery: routing from the
 * config file's default account (or --account / --server), else straight to the recipients' MX.
 */
import { hostname, userInfo } from "node:os";
import { chooseAccount } from "../config/account-choice.ts";
import { formatPath } from "../core/address.ts";
import { AddressParseError, parseAddress, parseAddressList } from "../mime/address-header.ts";
import { HeaderError } from "../mime/header-fold.ts";
import { headerValue, splitMessage } from "../mime/headers.ts";
import { CliError, ExitCode, UsageError } from "./exit-codes.ts";
import { splitAddressList } from "./option-values.ts";
import type { Composition } from "./send-compose.ts";
import { composeRaw } from "./send-raw.ts";
import {
  configureClient,
  deliverAndReport,
  dsnEnvelope,
  prepareMessage,
  printDryRun,
  resolveRoute,
} from "./send-run.ts";
import { parseSendmailArgs, SENDMAIL_USAGE, type SendmailArgs } from "./sendmail-args.ts";
import { addMissingHeaders, cutAtDotLine } from "./sendmail-message.ts";

async function readStdin(): Promise<Uint8Array> {
  return new Uint8Array(await new Response(Bun.stdin.stream()).arrayBuffer());
}

/** The bare address of `Name <addr>` (an account's from= may carry a name). */
function mailboxOf(text: string): { address: string; name?: string } {
  if (text === "" || text === "<>") return { address: "" };
  try {
    const spec = parseAddress(text);
    return spec.name === undefined ? { address: spec.address } : { address: spec.address, name: spec.name };
  } catch (error) {
    if (error instanceof AddressParseError)
      throw new CliError(`sender: ${error.message}`, ExitCode.dataError);
    throw error;
  }
}

/** Postfix's default sender when nothing names one: the login name at this host. */
function localSender(): string {
  const login = process.env.USER ?? process.env.LOGNAME ?? userInfo().username;
  return `${login}@${hostname()}`;
}

/** The message's own From address, if it has one that parses. */
function fromInMessage(message: Uint8Array): string | undefined {
  const value = headerValue(splitMessage(message), "From");
  if (value === undefined) return undefined;
  try {
    return parseAddressList(value)[0]?.address;
  } catch {
    return undefined;
  }
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf("@") + 1) || "localhost";
}

function uniqueRecipients(composition: Composition): Composition {
  const seen = new Set<string>();
  const recipients = composition.recipients.filter((path) => {
    const key = formatPath(path).toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return { ...composition, recipients };
}

/**
 * The envelope and the bytes to send. The sender is -f, else the account's from=, else the
 * message's Sender/From, else USER@host; a From header the message lacks is written from it.
 */
export function composeSendmail(
  input: Uint8Array,
  args: SendmailArgs,
  accountFrom: string | undefined,
  now: Date = new Date(),
): Composition {
  const raw = args.ignoreDots ? input : cutAtDotLine(input);
  const given = args.sender ?? accountFrom;
  const sender = given === undefined ? undefined : mailboxOf(given);
  const fromHeader = sender?.address ? sender : mailboxOf(localSender());
  const fullName = args.fullName ?? process.env.NAME;
  if (fullName !== undefined && fullName !== "") fromHeader.name = fullName;
  const domain = domainOf(sender?.address || fromInMessage(raw) || fromHeader.address);
  let message: Uint8Array;
  try {
    message = addMissingHeaders(raw, { from: fromHeader, now, messageIdDomain: domain });
  } catch (error) {
    if (error instanceof HeaderError || error instanceof AddressParseError) {
      throw new CliError(`cannot add a From header: ${error.message}`, ExitCode.dataError);
    }
    throw error;
  }
  // Without -f or an account's from=, composeRaw takes the Sender or From header (now always there).
  const envelopeFrom = sender?.address;
  const recipients = args.recipients.flatMap(splitAddressList).map((r) => mailboxOf(r).address);
  if (!args.extractRecipients && recipients.length === 0) {
    throw new UsageError("sendmail: no recipients: give them as arguments, or -t to read To, Cc and Bcc");
  }
  return uniqueRecipients(
    composeRaw(message, envelopeFrom, recipients, {
      headerRecipients: args.extractRecipients,
      alwaysRemoveBcc: true,
    }),
  );
}

/** Runs `smtpkit sendmail ARGS` and exits with the code DESIGN.md gives for what happened. */
export async function runSendmail(argv: readonly string[]): Promise<void> {
  const args = parseSendmailArgs(argv);
  if (args.help) {
    process.stdout.write(SENDMAIL_USAGE);
    return;
  }
  // The same option names as `send`, so send's route, DSN and client code read them unchanged.
  const options: Record<string, unknown> = {
    config: args.config,
    account: args.account,
    server: args.server,
    dns: args.dns,
    notify: args.notify,
    ret: args.ret,
    envid: args.envid,
    verbose: args.verbose,
  };
  const account = await chooseAccount(args);
  const composition = composeSendmail(await readStdin(), args, account?.from);
  const envelope = dsnEnvelope(options, composition);
  if (args.dryRun) return printDryRun(envelope, composition);

  const route = await resolveRoute(options, account);
  await configureClient(route, options);
  const exitCode = await deliverAndReport(
    route,
    envelope,
    composition,
    prepareMessage(composition, envelope),
    {
      json: false,
      printId: false,
      allowPartial: false,
    },
  );
  if (exitCode !== ExitCode.ok) process.exit(exitCode);
}
