import type { CAC } from "cac";
import { restartWithoutFtl } from "../jit-tiers.ts";

const many = { type: [String] };

/** Registers `smtpkit serve`; the work is in serve-run.ts. */
export function registerServe(cli: CAC): void {
  cli
    .command("serve", "Run a local SMTP server that catches mail (what Mailpit and MailHog do)")
    .option("--listen <addr:port>", "SMTP listen address (repeatable; default 127.0.0.1:1025)", many)
    .option("--smtps <addr:port>", "Implicit-TLS SMTP listen address (repeatable)", many)
    .option("--http <addr:port|off>", "Mailpit/MailHog API address (default 127.0.0.1:8025), or off", many)
    .option(
      "--http-auth-file <file>",
      "Require HTTP Basic auth for the API: htpasswd users (bcrypt, apr1, SHA)",
      many,
    )
    .option("--http-tls", "Serve the API over HTTPS, with the --tls-cert certificate or the self-signed one")
    .option("--hostname <name>", "Name in the banner, EHLO and Received (default: this host's)", many)
    .option(
      "--data-dir <dir>",
      "Where the mailbox and certificate live (default $XDG_DATA_HOME/smtpkit)",
      many,
    )
    .option("--memory", "Keep nothing on disk")
    .option(
      "--max-messages <n>",
      "Keep at most N messages, pruning the oldest (default 5000; 0 = no limit)",
      many,
    )
    .option("--max-age <duration>", "Prune messages older than this (e.g. 7d, 12h, 30m)", many)
    .option("--max-size <bytes>", "Largest message accepted, SIZE (default 25 MiB; k/M suffix allowed)", many)
    .option("--max-recipients <n>", "Recipients per message (default 1000)", many)
    .option("--max-connections <n>", "Connections at once (default 100)", many)
    .option("--max-connections-per-ip <n>", "Connections at once from one address (default: no limit)", many)
    .option("--tls-cert <file>", "Certificate (PEM) for STARTTLS and --smtps; default: self-signed", many)
    .option("--tls-key <file>", "Private key (PEM) for --tls-cert", many)
    .option("--no-starttls", "Do not offer STARTTLS")
    .option("--auth-users <file>", "Check AUTH against user:password lines (default: accept any)", many)
    .option("--require-auth", "Refuse MAIL until the client has authenticated")
    .option("--require-tls", "Refuse MAIL (and AUTH) until the client has used TLS")
    .option(
      "--allow-insecure-auth",
      "Allow passwords without TLS from non-loopback clients (SMTP AUTH, and --http-auth-file without --http-tls)",
    )
    .option(
      "--fail <stage:code[:p]>",
      "Fault injection: answer CODE at STAGE (connect, helo, auth, mail, rcpt, data, dot), p percent of the time (default 100)",
      many,
    )
    .option("--delay <stage:ms>", "Fault injection: wait MS before answering at STAGE", many)
    .option(
      "--relay <target>",
      "Queue mail for onward delivery: smtp://[user@]host[:port], smtps://..., or mx",
      many,
    )
    .option("--relay-and-keep", "With --relay, also keep every message in the catcher")
    .option(
      "--relay-domains <list>",
      "Domains unauthenticated clients may relay to (comma-separated, repeatable)",
      many,
    )
    .option(
      "--relay-to <list>",
      "Addresses unauthenticated clients may relay to (comma-separated, repeatable)",
      many,
    )
    .option("--relay-password-env <var>", "The relay user's password from this environment variable", many)
    .option("--relay-password-file <file>", "The relay user's password from this file", many)
    .option(
      "--relay-password-cmd <command>",
      "The relay user's password from this command's first line",
      many,
    )
    .option("--relay-ca <file>", "CA certificates (PEM) to verify the relay target with", many)
    .option("--relay-insecure", "Do not fail when the relay target's certificate does not verify")
    .option(
      "--relay-tls-fingerprint <sha256>",
      "Trust only the relay target certificate with this SHA-256 fingerprint",
      many,
    )
    .option("--dns <host[:port]>", "DNS resolver for --relay mx", many)
    .option(
      "--webhook-url <url>",
      "POST each new message's summary (JSON) to this http(s) URL, as Mailpit does",
      many,
    )
    .option("--webhook-limit <n>", "Webhook requests per second at most (default 5; 0 = no limit)", many)
    .option("--quiet", "Do not print a line per message")
    .option("--log-json", "Print one JSON object per message instead of a text line")
    .action(async (options: Record<string, unknown>) => {
      restartWithoutFtl();
      const { runServe } = await import("./serve-run.ts");
      await runServe(options);
    });
}
