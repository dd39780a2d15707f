/**
 * What `smtpkit probe` found, stage by stage. The same objects feed the terminal report and,
 * unchanged, the `--json` document, so every field name here is part of the documented interface
 * (README, smtpkit probe): add fields freely, never rename or remove one.
 */

import type { Capabilities } from "../core/capabilities.ts";

/** One reply, with what its codes mean (RFC 5321 §4.2, RFC 3463). */
export interface ReplyReport {
  code: number;
  /** The RFC 3463 enhanced status code, or null when the server sent none. */
  enhanced: string | null;
  /** Text lines after the code (and the enhanced code), as sent. */
  lines: string[];
  /** The basic code's meaning from the reply-code table. */
  meaning: string;
  /** The enhanced code's meaning, or null. */
  enhancedMeaning: string | null;
}

export interface ErrorReport {
  /** The stage that failed: connect, banner, ehlo, tls, auth, mail, rcpt, rset, relay, quit. */
  stage: string;
  /** refused, timeout, reset, unreachable, dns, tls-handshake, tls-verify, closed, protocol, tls-unavailable. */
  kind: string;
  message: string;
}

export interface ConnectReport {
  /** The address connected to (after DNS). */
  address: string;
  port: number;
  family: 4 | 6;
  localAddress: string;
  localPort: number;
  ms: number;
}

export interface BannerReport {
  reply: ReplyReport;
  ms: number;
}

export interface HelloReport {
  /** What the session continued with: EHLO, or HELO after EHLO was refused. */
  command: "EHLO" | "HELO";
  reply: ReplyReport;
  ms: number;
  /** The refused EHLO reply, when HELO was tried after it. */
  ehloReply: ReplyReport | null;
  /** The server's name from the first line of the EHLO reply. */
  domain: string | null;
  /** Extension lines as sent (after the first line), e.g. "SIZE 10240000", "AUTH PLAIN LOGIN". */
  extensions: string[];
  /** The same, parsed by the core (sizes as numbers, AUTH mechanisms as a list, unknown ones kept). */
  capabilities: Capabilities;
}

export interface ExtensionChanges {
  /** Extension lines present only after TLS. */
  added: string[];
  /** Extension lines present only before TLS. */
  removed: string[];
}

export interface CertificateReport {
  subject: string;
  issuer: string;
  subjectAltNames: string[];
  /** ISO 8601. */
  notBefore: string;
  notAfter: string;
  /** floor((notAfter - now) / 1 day): 0 on the last day, -1 in the first day after expiry. */
  daysLeft: number;
  fingerprintSha256: string;
  serialNumber: string;
}

export interface TlsReport {
  /** starttls, implicit, or none (not offered, refused, or --starttls never). */
  mode: "starttls" | "implicit" | "none";
  /** The server advertised STARTTLS in its first EHLO. */
  offered: boolean;
  /** The reply to STARTTLS (absent for implicit TLS and when it was not sent). */
  starttls: ReplyReport | null;
  /** STARTTLS and the handshake together; for implicit TLS the handshake is part of connect. */
  ms: number | null;
  /** A TLS session was established. */
  established: boolean;
  protocol: string | null;
  cipher: string | null;
  /** The name the certificate was checked against (--tls-servername, else the host). */
  servername: string | null;
  /** The chain leads to a trusted CA and every certificate in it is currently valid. */
  chainVerified: boolean | null;
  /** The leaf certificate is valid for `servername`. */
  nameMatches: boolean | null;
  /** chainVerified and nameMatches. */
  verified: boolean | null;
  /** Why verification failed. */
  verifyError: string | null;
  /** Why STARTTLS or the handshake failed. */
  error: string | null;
  /** Leaf first. */
  certificates: CertificateReport[];
}

export interface AuthReport {
  mechanism: string | null;
  /** Mechanisms the server offered at the time. */
  offered: string[];
  ok: boolean;
  reply: ReplyReport | null;
  ms: number | null;
  /** Why AUTH was not attempted or could not finish, when it was not the server's reply. */
  error: string | null;
}

export interface CommandReport {
  /** The command line as sent. */
  command: string;
  reply: ReplyReport;
  ms: number;
}

export interface RecipientReport {
  address: string;
  /** Null when the RCPT was not sent (MAIL was refused). */
  command: string | null;
  reply: ReplyReport | null;
  ms: number | null;
  accepted: boolean;
}

export interface EnvelopeReport {
  mail: CommandReport;
  /** The server took MAIL. */
  mailAccepted: boolean;
  recipients: RecipientReport[];
  rset: CommandReport | null;
}

export interface RelayTestReport {
  name: string;
  description: string;
  mailFrom: string;
  rcptTo: string;
  mail: ReplyReport | null;
  rcpt: ReplyReport | null;
  /** MAIL and RCPT both got 2xx: the server would have taken the message. */
  accepted: boolean;
}

export interface RelayCheckReport {
  /** Some pattern was accepted. */
  open: boolean;
  /** The session had authenticated, so relaying may be allowed on purpose. */
  authenticated: boolean;
  /** The domain used as "the server's own" in the patterns. */
  localDomain: string;
  tests: RelayTestReport[];
}

export interface ExpectationReport {
  /** As given, e.g. "rcpt=2xx". */
  expectation: string;
  stage: string;
  ok: boolean;
  /** Reply codes seen at that stage, in order. */
  actual: number[];
  /** Why it failed, or "" when it held. */
  reason: string;
}

export interface HostReport {
  /** The host name or address probed. */
  host: string;
  port: number;
  /** MX preference, with --mx. */
  preference: number | null;
  connect: ConnectReport | null;
  banner: BannerReport | null;
  ehlo: HelloReport | null;
  tls: TlsReport | null;
  /** EHLO again after TLS, and what changed. */
  ehloAfterTls: (HelloReport & { changes: ExtensionChanges }) | null;
  auth: AuthReport | null;
  envelope: EnvelopeReport | null;
  relayCheck: RelayCheckReport | null;
  quit: CommandReport | null;
  /** The --quit-after stage the probe stopped after, or null when it was not given. */
  quitAfter: string | null;
  /** What stopped the probe early, or null when it ran to the end. */
  error: ErrorReport | null;
  expectations: ExpectationReport[];
  /** This host's exit code (see the README, smtpkit probe). */
  exitCode: number;
  /** The transcript in swaks notation, secrets masked. */
  transcript: string[];
}

export interface ProbeReport {
  /** As given on the command line. */
  target: string;
  /** TARGET was a domain whose MX hosts were probed. */
  mx: boolean;
  hosts: HostReport[];
  /** A failure before any host was probed (DNS), or null. */
  error: ErrorReport | null;
  exitCode: number;
}
