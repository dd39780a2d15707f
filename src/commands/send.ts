import type { CAC } from "cac";

const many = { type: [String] };

/** Registers `smtpkit send`; the work is in send-run.ts so this file stays the flag table. */
export function registerSend(cli: CAC): void {
  cli
    .command("send", "Send a message (what swaks, msmtp, mailx and curl do)")
    .usage("send -f FROM -t TO [options]")
    // Message and envelope
    .option("-f, --from <address>", 'Sender, "Name <addr>" allowed; envelope and From header', many)
    .option("-t, --to <address>", "Recipient (repeatable, comma-separated lists)", many)
    .option("--cc <address>", "Cc recipient (repeatable)", many)
    .option("--bcc <address>", "Bcc recipient: envelope only, never a header (repeatable)", many)
    .option("--reply-to <address>", "Reply-To address (repeatable)", many)
    .option("--subject <text>", "Subject", many)
    .option("-H, --header <header>", '"Name: value" added, or replacing a generated one (repeatable)', many)
    .option("--body <text>", "Text body", many)
    .option("--body-file <path>", "Text body from a file", many)
    .option("--html <html>", "HTML body (with a text body: multipart/alternative)", many)
    .option("--html-file <path>", "HTML body from a file", many)
    .option("-a, --attach <path>", "Attachment, PATH[;type=TYPE][;name=NAME] (repeatable)", many)
    .option("--inline <path>", "Inline part referenced by Content-ID (repeatable)", many)
    .option("--raw <path>", "Send a complete RFC 5322 message from PATH or - (stdin) unchanged", many)
    .option("--dry-run", "Print the envelope and message that would be sent; do not connect")
    .option("--queue", "Put the message in the durable queue and return with its queue ID (smtpkit queue)")
    .option(
      "--data-dir <dir>",
      "With --queue: where queue.sqlite lives (default $XDG_DATA_HOME/smtpkit)",
      many,
    )
    // Connection
    .option(
      "-s, --server <host[:port]>",
      "Server to send through; without it, deliver to the recipients' MX",
      many,
    )
    .option("--dns <host[:port]>", "DNS resolver for MX lookups", many)
    .option("--tls", "Implicit TLS (default on port 465)")
    .option("--starttls <mode>", "auto | always | never (default auto; always when authenticating)", many)
    .option("--insecure", "Do not fail when the certificate does not verify")
    .option("--ca <file>", "CA certificates (PEM) to verify the server with", many)
    .option("--client-cert <file>", "Client certificate (PEM)", many)
    .option("--client-key <file>", "Client key (PEM)", many)
    .option("--tls-servername <name>", "Name to verify the certificate against (and SNI)", many)
    .option("--auth <mechanism>", "PLAIN | LOGIN | CRAM-MD5 | XOAUTH2 (default: the best offered)", many)
    .option("--user <name>", "User name to authenticate as", many)
    .option("--password-env <var>", "Read the password from this environment variable", many)
    .option("--password-file <file>", "Read the password from this file", many)
    .option("--password-cmd <command>", "Read the password from this command's first output line", many)
    .option("--allow-plaintext-auth", "Allow sending a password over an unencrypted connection")
    .option("--helo <name>", "Name to give in EHLO/HELO", many)
    .option("--timeout <seconds>", "Per-reply timeout (default: RFC 5321 §4.5.3.2 values)", many)
    .option("-4", "Connect over IPv4 only")
    .option("-6", "Connect over IPv6 only")
    .option("--no-chunking", "Do not use BDAT even when CHUNKING is offered")
    .option("--notify <when>", "DSN: never, or a list of success,failure,delay", many)
    .option("--ret <what>", "DSN: full | hdrs", many)
    .option("--envid <id>", "DSN envelope ID", many)
    // Accounts
    .option("--config <path>", "Config file (default $XDG_CONFIG_HOME/smtpkit/config.toml)", many)
    .option("--account <name>", "Use this account from the config file", many)
    // Output
    .option("-v, --verbose", "Print the transcript in swaks notation, with timings")
    .option("--json", "Print one JSON document describing the delivery")
    .option("--print-id", "Print the Message-ID on success")
    .option("--allow-partial", "Exit 0 when some (not all) recipients were refused")
    // Load mode
    .option("--repeat <n>", "Send the message N times (load mode)", many)
    .option("--parallel <c>", "Over C connections, each reused (load mode)", many)
    .action(async (options: Record<string, unknown>) => {
      const { runSend } = await import("./send-run.ts");
      await runSend(options);
    });
}
