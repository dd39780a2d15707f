import { isIpv4, isIpv6 } from "../core/address.ts";

/**
 * 4 or 6 when `host` is an IP address (an IPv6 one may carry a zone, "fe80::1%eth0"), else 0.
 * Written here rather than taken from node:net, whose loading costs a one-message `send` about
 * 7 ms of start-up (measured in the compiled binary).
 */
export function ipVersion(host: string): 0 | 4 | 6 {
  if (isIpv4(host)) return 4;
  const zone = host.indexOf("%");
  return host.includes(":") && isIpv6(zone === -1 ? host : host.slice(0, zone)) ? 6 : 0;
}

/** "host:port" for messages and transcripts; an IPv6 address in brackets ("[::1]:25") keeps the port apart. */
export function formatEndpoint(host: string, port: number): string {
  return ipVersion(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
