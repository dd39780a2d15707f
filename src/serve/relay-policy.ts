/**
 * Who may relay through `serve --relay` (no open relay, RFC 5321 §3.6.2 / RFC 2505): an
 * unauthenticated client only to the listed domains (--relay-domains) and addresses (--relay-to);
 * a client that authenticated with checked credentials (--auth-users) anywhere. Without
 * --auth-users any credentials are accepted, so authenticating grants nothing then.
 */
import type { Path } from "../core/address.ts";
import { SmtpError } from "../core/errors.ts";

export const RELAY_DENIED = new SmtpError(
  550,
  "5.7.1",
  "Relaying denied: recipient not in the relay domains",
);

export interface RelayPolicy {
  domains: readonly string[];
  addresses: readonly string[];
  /** Authenticated sessions may relay anywhere (only when credentials are really checked). */
  trustAuthenticated: boolean;
}

function normalise(text: string): string {
  return text.trim().toLowerCase();
}

export function relayPolicy(
  domains: readonly string[],
  addresses: readonly string[],
  checkedAuth: boolean,
): RelayPolicy {
  return {
    domains: domains.map(normalise),
    addresses: addresses.map(normalise),
    trustAuthenticated: checkedAuth,
  };
}

/** Domains match exactly or as a parent (`example.com` covers `mail.example.com`), as Postfix's relay_domains. */
export function mayRelay(policy: RelayPolicy, to: Path, authenticated: boolean): boolean {
  if (authenticated && policy.trustAuthenticated) return true;
  const mailbox = to.mailbox;
  if (!mailbox) return false;
  const domain = mailbox.domain.toLowerCase();
  const address = `${mailbox.local}@${mailbox.domain}`.toLowerCase();
  if (policy.addresses.includes(address)) return true;
  return policy.domains.some((d) => domain === d || domain.endsWith(`.${d}`));
}
