import {
  everyUnit,
  isAlphanumeric,
  isDigit,
  isLetterDigitHyphen,
  isLineTerminator,
  isWhiteSpace,
  someUnit,
  splitRuns,
} from "./chars.ts";
import type { Reply } from "./reply.ts";

/** What a server advertised in its EHLO reply (RFC 5321 §4.1.1.1), typed. */
export interface Capabilities {
  /** RFC 1870: undefined when SIZE is not advertised; 0 when it is, without a fixed limit. */
  size?: number;
  /** RFC 2920 */
  pipelining: boolean;
  /** RFC 6152 */
  eightBitMime: boolean;
  /** RFC 6531 */
  smtpUtf8: boolean;
  /** RFC 3207 */
  startTls: boolean;
  /** RFC 4954: SASL mechanisms, upper-cased, in the server's order, without duplicates. */
  auth: string[];
  /** RFC 3030 */
  chunking: boolean;
  /** RFC 3030 */
  binaryMime: boolean;
  /** RFC 3461 */
  dsn: boolean;
  /** RFC 2034 */
  enhancedStatusCodes: boolean;
  /** Extensions not known here, keyword upper-cased, parameters as sent. */
  unknown: { keyword: string; params: string }[];
}

export function emptyCapabilities(): Capabilities {
  return {
    pipelining: false,
    eightBitMime: false,
    smtpUtf8: false,
    startTls: false,
    auth: [],
    chunking: false,
    binaryMime: false,
    dsn: false,
    enhancedStatusCodes: false,
    unknown: [],
  };
}

/**
 * An extension line's keyword (RFC 5321 §4.1.1.1: ehlo-keyword = (ALPHA / DIGIT)
 * *(ALPHA / DIGIT / "-")) and what follows its space (or "=", the old AUTH form); undefined when
 * the line is not one, including when that rest holds a line terminator (CR, LF, U+2028, U+2029).
 */
function extensionLine(line: string): { keyword: string; params: string } | undefined {
  if (!isAlphanumeric(line.charCodeAt(0))) return undefined;
  let end = 1;
  while (isLetterDigitHyphen(line.charCodeAt(end))) end++;
  if (end === line.length) return { keyword: line, params: "" };
  if (line[end] !== " " && line[end] !== "=") return undefined;
  const params = line.slice(end + 1);
  return someUnit(params, isLineTerminator) ? undefined : { keyword: line.slice(0, end), params };
}

function addMechanisms(caps: Capabilities, text: string): void {
  for (const mech of splitRuns(text.trim(), isWhiteSpace)) {
    const upper = mech.toUpperCase();
    if (upper !== "" && !caps.auth.includes(upper)) caps.auth.push(upper);
  }
}

/**
 * Reads an EHLO reply: the first line is "domain [greeting]", each further line an extension.
 * The pre-standard "AUTH=LOGIN PLAIN" form some servers still send is merged into `auth`.
 * Lines that are not extension keywords are ignored rather than failing the session.
 */
export function parseEhloReply(reply: Reply): {
  domain: string;
  greeting: string;
  capabilities: Capabilities;
} {
  const [first = "", ...rest] = reply.lines;
  const trimmed = first.trim();
  const space = trimmed.indexOf(" ");
  const domain = space < 0 ? trimmed : trimmed.slice(0, space);
  const greeting = space < 0 ? "" : trimmed.slice(space + 1).trim();
  const caps = emptyCapabilities();
  for (const line of rest) {
    const extension = extensionLine(line.trim());
    if (extension === undefined) continue;
    const keyword = extension.keyword.toUpperCase();
    const params = extension.params.trim();
    const oldAuthForm = line.trim()[keyword.length] === "=";
    if (oldAuthForm && keyword !== "AUTH") {
      caps.unknown.push({ keyword, params });
      continue;
    }
    switch (keyword) {
      case "SIZE": {
        const n = params !== "" && everyUnit(params, isDigit) ? Number(params) : 0;
        caps.size = Number.isSafeInteger(n) ? n : 0;
        break;
      }
      case "PIPELINING":
        caps.pipelining = true;
        break;
      case "8BITMIME":
        caps.eightBitMime = true;
        break;
      case "SMTPUTF8":
        caps.smtpUtf8 = true;
        break;
      case "STARTTLS":
        caps.startTls = true;
        break;
      case "AUTH":
        addMechanisms(caps, params);
        break;
      case "CHUNKING":
        caps.chunking = true;
        break;
      case "BINARYMIME":
        caps.binaryMime = true;
        break;
      case "DSN":
        caps.dsn = true;
        break;
      case "ENHANCEDSTATUSCODES":
        caps.enhancedStatusCodes = true;
        break;
      default:
        caps.unknown.push({ keyword, params });
    }
  }
  return { domain, greeting, capabilities: caps };
}

/** The text lines of an EHLO reply, for formatReply(250, undefined, lines). */
export function formatEhloLines(domain: string, greeting: string, caps: Capabilities): string[] {
  const lines = [greeting === "" ? domain : `${domain} ${greeting}`];
  if (caps.size !== undefined) lines.push(caps.size > 0 ? `SIZE ${caps.size}` : "SIZE");
  if (caps.pipelining) lines.push("PIPELINING");
  if (caps.eightBitMime) lines.push("8BITMIME");
  if (caps.smtpUtf8) lines.push("SMTPUTF8");
  if (caps.startTls) lines.push("STARTTLS");
  if (caps.auth.length > 0) lines.push(`AUTH ${caps.auth.join(" ")}`);
  if (caps.chunking) lines.push("CHUNKING");
  if (caps.binaryMime) lines.push("BINARYMIME");
  if (caps.dsn) lines.push("DSN");
  if (caps.enhancedStatusCodes) lines.push("ENHANCEDSTATUSCODES");
  for (const u of caps.unknown) lines.push(u.params === "" ? u.keyword : `${u.keyword} ${u.params}`);
  return lines;
}
