import { Resolver as DnsResolver } from "node:dns/promises";
import { domainToASCII } from "node:url";
import { ipVersion } from "./endpoint.ts";
import { errorCode, NetError } from "./net-error.ts";

export interface MailExchanger {
  /** Host name, without the trailing dot. */
  exchange: string;
  priority: number;
  /** No MX records: the domain itself, RFC 5321 §5.1 implicit MX. */
  implicit?: boolean;
}

export interface Resolver {
  /**
   * MX records as published (unsorted); a null MX has exchange "". [] when the domain exists but
   * has none; Bun 1.4 cannot tell that from NXDOMAIN (it reports both as ENOTFOUND, oven-sh/bun#21370),
   * so there this rejects with code ENOTFOUND and mailHostsFor looks for addresses instead.
   */
  resolveMx(domain: string): Promise<MailExchanger[]>;
  /** A then AAAA records (only one of them when `family` is given); an IP literal resolves to itself. */
  resolveAddresses(host: string, family?: 4 | 6): Promise<string[]>;
}

/** Per query; the system resolver's default (5 s, 2 tries) is far too long when resolv.conf points nowhere. */
export const DEFAULT_DNS_TIMEOUT_MS = 5_000;

/** RFC 7505 §3: an MX whose exchange is "." says the domain accepts no mail. */
const NULL_MX_EXCHANGES = new Set(["", "."]);

/** The name as DNS sees it: A-labels, no trailing dot. */
function queryName(name: string): string {
  const trimmed = name.endsWith(".") ? name.slice(0, -1) : name;
  if (/^[\x00-\x7f]*$/.test(trimmed)) return trimmed;
  const ascii = domainToASCII(trimmed);
  return ascii === "" ? trimmed : ascii;
}

function dnsError(error: unknown, name: string, type: string, server: string): NetError {
  const code = errorCode(error);
  switch (code) {
    case "ENOTFOUND":
      // Node means NXDOMAIN; Bun 1.4 also says this for "the name exists, but has no such record".
      return new NetError("dns", `${name}: no ${type} record (no such domain?)`, code, false);
    case "ETIMEOUT":
    case "ETIMEDOUT":
      return new NetError("timeout", `DNS ${type} lookup of ${name} at ${server} timed out`, code);
    case "ESERVFAIL":
      return new NetError("dns", `DNS ${type} lookup of ${name} failed at ${server} (SERVFAIL)`, code, true);
    case "ECONNREFUSED":
    case "EREFUSED":
      return new NetError("dns", `DNS server ${server} refused the ${type} lookup of ${name}`, code, true);
    default: {
      const text = error instanceof Error ? error.message : String(error);
      return new NetError("dns", `DNS ${type} lookup of ${name} at ${server} failed: ${text}`, code, true);
    }
  }
}

/** "HOST[:PORT]" list, comma-separated; IPv6 with a port in brackets ("[::1]:5353"), as node:dns takes it. */
function serverList(server: string): string[] {
  return server
    .split(",")
    .map((one) => one.trim())
    .filter((one) => one !== "");
}

/**
 * A resolver with its own timeout, pointed at `server` ("127.0.0.1:5353") or, without one, at the
 * servers of /etc/resolv.conf. Throws a TypeError for a server that is not an IP address.
 */
export function createResolver(server?: string, timeoutMs: number = DEFAULT_DNS_TIMEOUT_MS): Resolver {
  const resolver = new DnsResolver({ timeout: timeoutMs, tries: 1 });
  if (server !== undefined) {
    try {
      resolver.setServers(serverList(server));
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      throw new TypeError(`DNS server "${server}" is not IP[:PORT]: ${text}`);
    }
  }
  const label = server ?? "the system resolver";

  // ENOTFOUND counts as "none" here: for Bun it may mean NODATA, and the caller reports "no address" either way.
  const lookup = async (host: string, family: 4 | 6): Promise<string[]> => {
    try {
      return family === 4 ? await resolver.resolve4(host) : await resolver.resolve6(host);
    } catch (error) {
      const code = errorCode(error);
      if (code === "ENODATA" || code === "ENOTFOUND") return [];
      throw dnsError(error, host, family === 4 ? "A" : "AAAA", label);
    }
  };

  return {
    async resolveMx(domain: string): Promise<MailExchanger[]> {
      const name = queryName(domain);
      try {
        const records = await resolver.resolveMx(name);
        return records.map((record) => ({ exchange: queryName(record.exchange), priority: record.priority }));
      } catch (error) {
        if (errorCode(error) === "ENODATA") return [];
        throw dnsError(error, name, "MX", label);
      }
    },

    async resolveAddresses(host: string, family?: 4 | 6): Promise<string[]> {
      if (ipVersion(host) !== 0) return [host];
      const name = queryName(host);
      const [v4, v6] = await Promise.all([
        family === 6 ? [] : lookup(name, 4),
        family === 4 ? [] : lookup(name, 6),
      ]);
      const addresses = [...v4, ...v6];
      if (addresses.length === 0) {
        const type = family === undefined ? "A or AAAA" : family === 4 ? "A" : "AAAA";
        throw new NetError("dns", `${name}: no such host (no ${type} record)`, "ENOTFOUND", false);
      }
      return addresses;
    },
  };
}

/** Fisher-Yates within runs of equal priority; `random` is injectable for tests. */
function shuffleEqualPriorities(sorted: MailExchanger[], random: () => number): void {
  let start = 0;
  while (start < sorted.length) {
    let end = start + 1;
    while (end < sorted.length && sorted[end]?.priority === sorted[start]?.priority) end++;
    for (let i = end - 1; i > start; i--) {
      const j = start + Math.floor(random() * (i - start + 1));
      const a = sorted[i];
      const b = sorted[j];
      if (a !== undefined && b !== undefined) {
        sorted[i] = b;
        sorted[j] = a;
      }
    }
    start = end;
  }
}

/**
 * The hosts to try for mail to `domain`, most preferred first (RFC 5321 §5.1): MX records by
 * priority, equal priorities in random order; the domain itself when it has no MX but an
 * address; an error (NetError, kind "dns") for NXDOMAIN, no MX and no address, or a null MX (RFC 7505).
 */
export async function mailHostsFor(
  domain: string,
  resolver: Resolver,
  random: () => number = Math.random,
): Promise<MailExchanger[]> {
  const name = queryName(domain);
  let records: MailExchanger[];
  try {
    records = await resolver.resolveMx(name);
  } catch (error) {
    if (!(error instanceof NetError) || error.code !== "ENOTFOUND") throw error;
    records = [];
  }
  if (records.length === 0) {
    // Implicit MX only for a name that has an address; otherwise there is nowhere to deliver.
    try {
      await resolver.resolveAddresses(name);
    } catch (error) {
      if (!(error instanceof NetError) || error.code !== "ENOTFOUND") throw error;
      throw new NetError("dns", `${name}: no such domain, or no MX, A or AAAA record`, "ENOTFOUND", false);
    }
    return [{ exchange: name, priority: 0, implicit: true }];
  }
  // A null MX mixed with real ones is a misconfiguration (RFC 7505 §3 forbids it); the real ones still work.
  const usable = records.filter((record) => !NULL_MX_EXCHANGES.has(record.exchange));
  if (usable.length === 0) {
    throw new NetError("dns", `${name} accepts no mail (null MX, RFC 7505)`, "ENULLMX", false);
  }
  const sorted = [...usable].sort((a, b) => a.priority - b.priority);
  shuffleEqualPriorities(sorted, random);
  return sorted;
}
