/**
 * Telling a sendmail invocation apart, for the CLI's first look at its arguments. The parser and
 * usage text (sendmail-args.ts) load only when it is one: this file loads with every command.
 */
import type { CAC } from "cac";
import { baseName } from "./base-name.ts";

/**
 * The sendmail arguments when this process was started as sendmail: through a link named
 * `sendmail` (a compiled binary sees that name in process.argv0), or as `smtpkit sendmail`.
 * Undefined otherwise.
 */
export function sendmailInvocation(argv: readonly string[], argv0: string): string[] | undefined {
  if (baseName(argv0) === "sendmail") return argv.slice(2);
  if (argv[2] === "sendmail") return argv.slice(3);
  return undefined;
}

/**
 * Lists `sendmail` in `smtpkit --help`. The CLI routes the command before cac parses anything
 * (see sendmailInvocation), so this entry is only ever shown, never run.
 */
export function registerSendmail(cli: CAC): void {
  cli
    .command("sendmail [...recipients]", "Read a message on stdin and deliver it, as /usr/sbin/sendmail does")
    .usage("sendmail [-t] [-i] [-f FROM] [-F NAME] [RECIPIENT...]  (see smtpkit sendmail --help)")
    .allowUnknownOptions();
}
