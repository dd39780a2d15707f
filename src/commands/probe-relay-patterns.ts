/**
 * The usual open-relay tests (the ones relay testers have run since the late 1990s): a foreign
 * sender to a foreign recipient, then the address tricks that fooled old mailers into relaying
 * while the recipient looked local: the percent hack, source routes, UUCP bang paths and quoted
 * local parts. The paths are written raw on purpose (several are not valid RFC 5321 paths), so
 * they go out as typed command lines, never through the address grammar.
 *
 * Only RFC 2606 reserved domains are used as "foreign", and the probe never sends DATA, so even
 * an open relay is never made to relay anything.
 */

import { isIPv6 } from "node:net";

/** RFC 2606 §3: reserved second-level domains, never anyone's real mail. */
export const FOREIGN_SENDER = "relay-check@example.com";
export const FOREIGN_DOMAIN = "example.net";
const FOREIGN_LOCAL = "relay-check";
const FOREIGN_RECIPIENT = `${FOREIGN_LOCAL}@${FOREIGN_DOMAIN}`;

export interface RelayPattern {
  /** Stable identifier, for JSON and scripts. */
  name: string;
  description: string;
  /** The reverse-path, angle brackets included. */
  mailFrom: string;
  /** The forward-path, angle brackets included. */
  rcptTo: string;
}

export interface RelayTarget {
  /** The server's own domain: the one a trick address pretends to be local to. */
  localDomain: string;
  /** The server's IP address, for the address-literal form of the percent hack. */
  address?: string;
}

/** RFC 5321 §4.1.3: "[192.0.2.1]" or "[IPv6:2001:db8::1]". */
export function addressLiteral(address: string): string {
  return isIPv6(address) ? `[IPv6:${address}]` : `[${address}]`;
}

export function relayPatterns(target: RelayTarget): RelayPattern[] {
  const local = target.localDomain;
  const sender = `<${FOREIGN_SENDER}>`;
  const patterns: RelayPattern[] = [
    {
      name: "foreign-to-foreign",
      description: "foreign sender to foreign recipient",
      mailFrom: sender,
      rcptTo: `<${FOREIGN_RECIPIENT}>`,
    },
    {
      name: "null-sender",
      description: "null sender (as bounces use) to foreign recipient",
      mailFrom: "<>",
      rcptTo: `<${FOREIGN_RECIPIENT}>`,
    },
    {
      name: "local-sender",
      description: "sender in the server's own domain to foreign recipient",
      mailFrom: `<postmaster@${local}>`,
      rcptTo: `<${FOREIGN_RECIPIENT}>`,
    },
    {
      name: "percent-hack",
      description: "percent hack: user%foreign@local",
      mailFrom: sender,
      rcptTo: `<${FOREIGN_LOCAL}%${FOREIGN_DOMAIN}@${local}>`,
    },
    {
      name: "source-route",
      description: "source route through the server: @local:user@foreign (RFC 5321 appendix C)",
      mailFrom: sender,
      rcptTo: `<@${local}:${FOREIGN_RECIPIENT}>`,
    },
    {
      name: "bang-path",
      description: "UUCP bang path: foreign!user@local",
      mailFrom: sender,
      rcptTo: `<${FOREIGN_DOMAIN}!${FOREIGN_LOCAL}@${local}>`,
    },
    {
      name: "quoted",
      description: 'quoted address without a domain: "user@foreign"',
      mailFrom: sender,
      rcptTo: `<"${FOREIGN_RECIPIENT}">`,
    },
    {
      name: "quoted-local",
      description: 'quoted foreign address at the local domain: "user@foreign"@local',
      mailFrom: sender,
      rcptTo: `<"${FOREIGN_RECIPIENT}"@${local}>`,
    },
  ];
  if (target.address !== undefined && target.address !== "") {
    patterns.push({
      name: "percent-hack-literal",
      description: "percent hack at the server's address literal: user%foreign@[address]",
      mailFrom: sender,
      rcptTo: `<${FOREIGN_LOCAL}%${FOREIGN_DOMAIN}@${addressLiteral(target.address)}>`,
    });
  }
  return patterns;
}
