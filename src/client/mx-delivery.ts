/**
 * Direct delivery (no smarthost): recipients grouped by domain, each domain's MX hosts tried in
 * preference order (RFC 5321 §5.1), falling to the next host on connection trouble or a 4xx
 * before the transaction. `send` without --server and the queue's `mx` route use it.
 */
import type { Envelope, Recipient } from "../core/envelope.ts";
import { type MailExchanger, mailHostsFor, type Resolver } from "../net/dns.ts";
import { NetError } from "../net/net-error.ts";
import { SmtpClientError } from "./errors.ts";
import type { PreparedMessage } from "./prepared-message.ts";
import { type ClientOptions, type DeliveryResult, SmtpClient } from "./smtp-client.ts";

/** RFC 5321 §4.5.4.1 asks clients to try at least two MX hosts; we try every one listed. */
export interface DomainDelivery {
  domain: string;
  recipients: Recipient[];
  /** The host that took (or refused) the transaction; undefined when none could be reached. */
  host?: MailExchanger;
  client?: SmtpClient;
  result?: DeliveryResult;
  /** Why each host tried before was given up, in order. */
  attempts: { host: string; error: SmtpClientError }[];
  error?: SmtpClientError;
}

export function groupByDomain(recipients: readonly Recipient[]): Map<string, Recipient[]> {
  const groups = new Map<string, Recipient[]>();
  for (const r of recipients) {
    const domain = (r.path.mailbox?.domain ?? "").toLowerCase();
    const group = groups.get(domain);
    if (group) group.push(r);
    else groups.set(domain, [r]);
  }
  return groups;
}

function dnsError(domain: string, error: unknown): SmtpClientError {
  const net = error instanceof NetError ? error : undefined;
  return new SmtpClientError(
    "network",
    "connect",
    `no mail host for ${domain}: ${(error as Error).message}`,
    {
      netKind: "dns",
      temporary: net?.temporary ?? false,
      cause: error,
    },
  );
}

/**
 * Delivers one domain's share. `optionsFor` gives the client options for a host (port 25, TLS
 * policy, HELO name); the caller quits each returned client.
 */
export async function deliverToDomain(
  domain: string,
  envelope: Envelope,
  message: PreparedMessage,
  resolver: Resolver,
  optionsFor: (host: string) => ClientOptions,
): Promise<DomainDelivery> {
  const delivery: DomainDelivery = { domain, recipients: envelope.recipients, attempts: [] };
  let hosts: MailExchanger[];
  try {
    hosts = await mailHostsFor(domain, resolver);
  } catch (error) {
    delivery.error = dnsError(domain, error);
    return delivery;
  }
  for (const host of hosts) {
    let client: SmtpClient;
    try {
      client = await SmtpClient.connect({ ...optionsFor(host.exchange), resolver });
    } catch (error) {
      if (!(error instanceof SmtpClientError)) throw error;
      delivery.attempts.push({ host: host.exchange, error });
      // A permanent refusal at greeting or EHLO still lets another MX try (RFC 5321 §5.1).
      continue;
    }
    delivery.host = host;
    delivery.client = client;
    try {
      delivery.result = await client.send(envelope, message);
    } catch (error) {
      if (!(error instanceof SmtpClientError)) throw error;
      delivery.error = error;
    }
    return delivery;
  }
  delivery.error = delivery.attempts.at(-1)?.error ?? dnsError(domain, new Error("no hosts"));
  return delivery;
}
