import type { CAC } from "cac";
import { cacSpec, SEND_FLAGS } from "./send-flags.ts";
import { runSend } from "./send-run.ts";

const many = { type: [String] };

/** Registers `smtpkit send`; the flags are in send-flags.ts and the work is in send-run.ts. */
export function registerSend(cli: CAC): void {
  const command = cli
    .command("send", "Send a message (what swaks, msmtp, mailx and curl do)")
    .usage("send -f FROM -t TO [options]");
  for (const flag of SEND_FLAGS) command.option(cacSpec(flag), flag.help, flag.value ? many : undefined);
  command.action((options: Record<string, unknown>) => runSend(options));
}
