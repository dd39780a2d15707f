/**
 * Who may relay through `serve --relay` (no open relay, RFC 5321 §3.6.2 / RFC 2505): an
 * unauthenticated client only to the listed domains (--relay-domains) and addresses (--relay-to);
 * a client that authenticated with checked credentials (--auth-users) anywhere. Without
 * --auth-users any credentials are accepted, so authenticating grants nothing then.
 */
import { domainToASCII } from "node:url";
import {
  AddressError,
  type Mailbox,
  type Path,
  parseDomainOrLiteral,
  parseMailbox,
  unquoteLocalPart,
} from "../core/address.ts";
import { SmtpError } from "../core/errors.ts";

export const RELAY_DENIED = new SmtpError(
  550,
  "5.7.1",
  "Relaying denied: recipient not in the relay domains",
);

export interface RelayPolicy {
  /** Lower-case A-labels (or address literals). */
  domains: readonly string[];
  /** Comparison keys of the allowed mailboxes (see mailboxKey). */
  addresses: readonly string[];
  /** Authenticated sessions may relay anywhere (only when credentials are really checked). */
  trustAuthenticated: boolean;
}

/** A --relay-domains or --relay-to entry that is not a domain or an address; `list` says which. */
export class RelayPolicyError extends Error {
  override name = "RelayPolicyError";
  constructor(
    readonly list: "domains" | "addresses",
    message: string,
  ) {
    super(message);
  }
}

/**
 * Domains compare case-insensitively and as A-labels, so `bücher.example` given on the command
 * line matches an SMTPUTF8 recipient and `xn--bcher-kva.example` alike.
 */
function domainKey(domain: string): string {
  if (domain.startsWith("[")) return domain.toLowerCase();
  return domainToASCII(domain) || domain.toLowerCase();
}

/**
 * Local parts compare by value (`"bob"@x` is `bob@x`) and, as Postfix's table lookups do, without
 * regard to case: an allow list that missed `Bob@x` for `bob@x` would only confuse.
 */
export function mailboxKey(mailbox: Mailbox): string {
  return `${unquoteLocalPart(mailbox.local).toLowerCase()}@${domainKey(mailbox.domain)}`;
}

function parseDomainEntry(entry: string): string {
  const text = entry.trim().replace(/\.$/, "");
  if (text.includes("@")) {
    throw new RelayPolicyError(
      "domains",
      `'${entry}' is an address, not a domain (addresses go in --relay-to)`,
    );
  }
  if (text.startsWith(".")) {
    throw new RelayPolicyError(
      "domains",
      `'${entry}': give the domain without the leading dot; it covers its subdomains`,
    );
  }
  try {
    return domainKey(parseDomainOrLiteral(text, { utf8: true }));
  } catch (error) {
    if (error instanceof AddressError)
      throw new RelayPolicyError("domains", `'${entry}' is not a domain: ${error.message}`);
    throw error;
  }
}

function parseAddressEntry(entry: string): string {
  const text = entry.trim();
  const bare = text.startsWith("<") && text.endsWith(">") ? text.slice(1, -1) : text;
  try {
    return mailboxKey(parseMailbox(bare, { utf8: true }));
  } catch (error) {
    if (error instanceof AddressError)
      throw new RelayPolicyError("addresses", `'${entry}' is not an address: ${error.message}`);
    throw error;
  }
}

/** Builds the policy from the flags' entries; throws RelayPolicyError for an unusable entry. */
export function relayPolicy(
  domains: readonly string[],
  addresses: readonly string[],
  checkedAuth: boolean,
): RelayPolicy {
  return {
    domains: domains.map(parseDomainEntry),
    addresses: addresses.map(parseAddressEntry),
    trustAuthenticated: checkedAuth,
  };
}

/** True when nobody could relay anything: no domains, no addresses, no checked credentials. */
export function relaysNothing(policy: RelayPolicy): boolean {
  return policy.domains.length === 0 && policy.addresses.length === 0 && !policy.trustAuthenticated;
}

/** Domains match exactly or as a parent (`example.com` covers `mail.example.com`), as Postfix's relay_domains. */
export function mayRelay(policy: RelayPolicy, to: Path, authenticated: boolean): boolean {
  const mailbox = to.mailbox;
  // <> is no recipient, and <Postmaster> without a domain is local: neither goes anywhere.
  if (!mailbox || mailbox.domain === "") return false;
  if (authenticated && policy.trustAuthenticated) return true;
  if (policy.addresses.includes(mailboxKey(mailbox))) return true;
  const domain = domainKey(mailbox.domain);
  return policy.domains.some((d) => domain === d || domain.endsWith(`.${d}`));
}
