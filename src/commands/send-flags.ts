/**
 * The flags of `smtpkit send`, in --help order. send.ts registers them with cac; send-argv.ts
 * reads a plain command line with the same table without loading cac, which `send` would
 * otherwise pay for at start-up on every run (issue 3).
 */
export interface SendFlag {
  /** One letter: `-f`. */
  short?: string;
  /** `--from`; `no-chunking` is cac's negated form (the option `chunking`, true unless given). */
  long?: string;
  /** The value's name in --help (`<address>`); a flag with a value is repeatable and cac keeps all its values, as strings. */
  value?: string;
  help: string;
}

/** cac's spelling of a flag: `-f, --from <address>`. */
export function cacSpec(flag: SendFlag): string {
  const names = [
    flag.short === undefined ? "" : `-${flag.short}`,
    flag.long === undefined ? "" : `--${flag.long}`,
  ];
  const value = flag.value === undefined ? "" : ` <${flag.value}>`;
  return `${names.filter((name) => name !== "").join(", ")}${value}`;
}

export const SEND_FLAGS: readonly SendFlag[] = [
  // Message and envelope
  {
    short: "f",
    long: "from",
    value: "address",
    help: 'Sender, "Name <addr>" allowed; envelope and From header',
  },
  { short: "t", long: "to", value: "address", help: "Recipient (repeatable, comma-separated lists)" },
  { long: "cc", value: "address", help: "Cc recipient (repeatable)" },
  { long: "bcc", value: "address", help: "Bcc recipient: envelope only, never a header (repeatable)" },
  { long: "reply-to", value: "address", help: "Reply-To address (repeatable)" },
  { long: "subject", value: "text", help: "Subject" },
  {
    short: "H",
    long: "header",
    value: "header",
    help: '"Name: value" added, or replacing a generated one (repeatable)',
  },
  { long: "body", value: "text", help: "Text body" },
  { long: "body-file", value: "path", help: "Text body from a file" },
  { long: "html", value: "html", help: "HTML body (with a text body: multipart/alternative)" },
  { long: "html-file", value: "path", help: "HTML body from a file" },
  {
    short: "a",
    long: "attach",
    value: "path",
    help: "Attachment, PATH[;type=TYPE][;name=NAME] (repeatable)",
  },
  { long: "inline", value: "path", help: "Inline part referenced by Content-ID (repeatable)" },
  { long: "raw", value: "path", help: "Send a complete RFC 5322 message from PATH or - (stdin) unchanged" },
  { long: "dry-run", help: "Print the envelope and message that would be sent; do not connect" },
  {
    long: "queue",
    help: "Put the message in the durable queue and return with its queue ID (smtpkit queue)",
  },
  {
    long: "data-dir",
    value: "dir",
    help: "With --queue: where queue.sqlite lives (default $XDG_DATA_HOME/smtpkit)",
  },
  // Connection
  {
    short: "s",
    long: "server",
    value: "host[:port]",
    help: "Server to send through; without it, deliver to the recipients' MX",
  },
  { long: "dns", value: "host[:port]", help: "DNS resolver for MX lookups" },
  { long: "tls", help: "Implicit TLS (default on port 465)" },
  {
    long: "starttls",
    value: "mode",
    help: "auto | always | never (default auto; always when authenticating)",
  },
  { long: "insecure", help: "Do not fail when the certificate does not verify" },
  {
    long: "tls-fingerprint",
    value: "sha256",
    help: "Trust only the certificate with this SHA-256 fingerprint (as probe shows it)",
  },
  { long: "ca", value: "file", help: "CA certificates (PEM) to verify the server with" },
  { long: "client-cert", value: "file", help: "Client certificate (PEM)" },
  { long: "client-key", value: "file", help: "Client key (PEM)" },
  { long: "tls-servername", value: "name", help: "Name to verify the certificate against (and SNI)" },
  {
    long: "auth",
    value: "mechanism",
    help: "PLAIN | LOGIN | CRAM-MD5 | XOAUTH2 (default: the best offered)",
  },
  { long: "user", value: "name", help: "User name to authenticate as" },
  { long: "password-env", value: "var", help: "Read the password from this environment variable" },
  { long: "password-file", value: "file", help: "Read the password from this file" },
  { long: "password-cmd", value: "command", help: "Read the password from this command's first output line" },
  { long: "allow-plaintext-auth", help: "Allow sending a password over an unencrypted connection" },
  { long: "helo", value: "name", help: "Name to give in EHLO/HELO" },
  { long: "timeout", value: "seconds", help: "Per-reply timeout (default: RFC 5321 §4.5.3.2 values)" },
  { short: "4", help: "Connect over IPv4 only" },
  { short: "6", help: "Connect over IPv6 only" },
  { long: "no-chunking", help: "Do not use BDAT even when CHUNKING is offered" },
  { long: "notify", value: "when", help: "DSN: never, or a list of success,failure,delay" },
  { long: "ret", value: "what", help: "DSN: full | hdrs" },
  { long: "envid", value: "id", help: "DSN envelope ID" },
  // Accounts
  { long: "config", value: "path", help: "Config file (default $XDG_CONFIG_HOME/smtpkit/config.toml)" },
  {
    long: "account",
    value: "name",
    help: "Use this account from the config file (default: the default one, none with --server)",
  },
  // Output
  { short: "v", long: "verbose", help: "Print the transcript in swaks notation, with timings" },
  { long: "json", help: "Print one JSON document describing the delivery" },
  { long: "print-id", help: "Print the Message-ID on success" },
  { long: "allow-partial", help: "Exit 0 when some (not all) recipients were refused" },
  // Load mode
  { long: "repeat", value: "n", help: "Send the message N times (load mode)" },
  { long: "parallel", value: "c", help: "Over C connections, each reused (load mode)" },
];
