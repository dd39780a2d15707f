/**
 * The trace field a server prepends (RFC 5321 §4.4), with the protocol names of RFC 3848
 * (ESMTP, ESMTPS, ESMTPA, ESMTPSA) and RFC 6531 §3.7.3 (UTF8SMTP...).
 */
import { formatDate } from "../mime/date.ts";

export interface ReceivedFacts {
  heloName?: string;
  remoteAddress: string;
  hostname: string;
  esmtp: boolean;
  tls: boolean;
  authenticated: boolean;
  utf8: boolean;
  id: string;
  /** The single recipient, when there is exactly one (more would leak Bcc recipients to each other). */
  recipient?: string;
  date: Date;
}

export function protocolName(facts: Pick<ReceivedFacts, "esmtp" | "tls" | "authenticated" | "utf8">): string {
  if (!facts.esmtp) return "SMTP";
  return `${facts.utf8 ? "UTF8SMTP" : "ESMTP"}${facts.tls ? "S" : ""}${facts.authenticated ? "A" : ""}`;
}

function addressLiteral(address: string): string {
  const plain = address.replace(/^::ffff:/, "");
  return plain.includes(":") ? `[IPv6:${plain}]` : `[${plain}]`;
}

export function receivedHeader(facts: ReceivedFacts): string {
  const helo = (facts.heloName ?? "unknown").replace(/[^\x21-\x7e]/g, "?");
  const lines = [
    `Received: from ${helo} (${addressLiteral(facts.remoteAddress)})`,
    `\tby ${facts.hostname} (smtpkit) with ${protocolName(facts)} id ${facts.id}`,
  ];
  if (facts.recipient !== undefined) lines.push(`\tfor <${facts.recipient}>`);
  lines[lines.length - 1] += `; ${formatDate(facts.date)}`;
  return `${lines.join("\r\n")}\r\n`;
}
