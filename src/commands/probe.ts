import type { CAC } from "cac";

const many = { type: [String] };

/** Registers `smtpkit probe`; the work is in probe-run.ts so this file stays the flag table. */
export function registerProbe(cli: CAC): void {
  cli
    .command("probe <target>", "Ask a server what it says: banner, extensions, TLS, recipients")
    .usage("probe HOST[:PORT] [options]  (with --mx: probe --mx DOMAIN[:PORT] [options])")
    // Where
    .option("--mx", "TARGET is a domain: probe each of its MX hosts in preference order")
    .option("--dns <host[:port]>", "DNS resolver to ask (MX and address lookups)", many)
    .option("-4", "Connect over IPv4 only")
    .option("-6", "Connect over IPv6 only")
    .option(
      "--timeout <seconds>",
      "Wait this long for a connection and for each reply (default 30 / 60)",
      many,
    )
    .option("--helo <name>", "Name to give in EHLO/HELO (default: this host's FQDN or address literal)", many)
    // TLS
    .option("--tls", "Implicit TLS from the first byte (default port 465)")
    .option("--starttls <mode>", "auto | always | never (default auto: when offered)", many)
    .option("--insecure", "Report a certificate that does not verify, then go on")
    .option("--ca <file>", "CA certificates (PEM) to verify the server with, instead of the system's", many)
    .option("--tls-servername <name>", "Name the certificate must be valid for (and SNI)", many)
    // AUTH
    .option("--user <name>", "Try AUTH as this user", many)
    .option("--auth <mechanism>", "PLAIN | LOGIN | CRAM-MD5 | XOAUTH2 (default: the best offered)", many)
    .option("--password-env <var>", "Read the password from this environment variable", many)
    .option("--password-file <file>", "Read the password from this file", many)
    .option("--password-cmd <command>", "Read the password from this command's first output line", many)
    .option("--allow-plaintext-auth", "Allow sending the password over an unencrypted connection")
    // Envelope and relay
    .option("--from <address>", "MAIL FROM for the envelope test (default <> when --rcpt is given)", many)
    .option("--rcpt <address>", "RCPT TO to test (repeatable); MAIL and RCPT, then RSET, never DATA", many)
    .option("--relay-check", "Try the usual open-relay patterns and say which were accepted")
    // Control
    .option(
      "--quit-after <stage>",
      "connect | banner | ehlo | tls (with the EHLO after it) | auth | mail | rcpt",
      many,
    )
    .option(
      "--expect <stage=code>",
      "Exit 1 unless every reply at STAGE matches CODE (250, 2xx, 25x, 5; a,b for either); " +
        "stages banner ehlo helo starttls auth mail rcpt rset quit (repeatable)",
      many,
    )
    .option("-i, --interactive", "Type SMTP commands yourself, with TLS, AUTH and DATA help")
    // Output
    .option("-v, --verbose", "Print the transcript in swaks notation as well (stderr with --json)")
    .option("--json", "Print one JSON document (field names in the README)")
    .example("  smtpkit probe mx.example.com")
    .example("  smtpkit probe --mx example.com --rcpt postmaster@example.com --expect rcpt=250")
    .example("  smtpkit probe smtp.example.com:587 --user me --password-env PASS --json")
    .example("  smtpkit probe smtp.example.com:587 -i")
    .example("Exit codes: 0 probe ran and every --expect held, 1 an --expect failed, 64 usage, 68 DNS,")
    .example("  75 refused/closed/timed out, 76 TLS or protocol failure, 77 certificate did not verify")
    .action(async (target: string | undefined, options: Record<string, unknown>) => {
      const { runProbeCommand } = await import("./probe-run.ts");
      await runProbeCommand(target, options);
    });
}
