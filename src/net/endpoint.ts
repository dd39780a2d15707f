import { isIPv6 } from "node:net";

/** "host:port" for messages and transcripts; an IPv6 address in brackets ("[::1]:25") keeps the port apart. */
export function formatEndpoint(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}
