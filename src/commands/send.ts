import type { CAC } from "cac";
import { CliError, ExitCode } from "./exit-codes.ts";

export function registerSend(cli: CAC): void {
  cli
    .command("send", "Send a message (like swaks, msmtp, mailx)")
    .option("-s, --server <host[:port]>", "Server to send through")
    .option("-f, --from <address>", "Envelope and header sender")
    .option("-t, --to <address>", "Recipient (repeatable)")
    .action(() => {
      throw new CliError("send is not built yet (issue 3)", ExitCode.usage);
    });
}
