import { everyUnit, isAscii, isAtext, isDigit, isLetterDigitHyphen } from "./chars.ts";
import { MAX_DOMAIN, MAX_DOMAIN_LABEL, MAX_LOCAL_PART, MAX_PATH, octetLength } from "./limits.ts";

/** Why an address was refused; a server maps "utf8" to 553 5.6.7 (RFC 6531 §3.7.4.1), the rest to 501. */
export type AddressErrorReason = "syntax" | "length" | "utf8";

/** A local problem with an address; the message names the rule or limit that was broken. */
export class AddressError extends Error {
  override name = "AddressError";
  constructor(
    message: string,
    readonly reason: AddressErrorReason = "syntax",
  ) {
    super(message);
  }
}

/** A mailbox as written on the wire: a quoted local part keeps its quotes and backslashes. */
export interface Mailbox {
  local: string;
  domain: string;
}

/** A reverse- or forward-path; `mailbox: null` is the null path "<>". */
export interface Path {
  mailbox: Mailbox | null;
  /** The obsolete source route "@a,@b:" (RFC 5321 §4.1.2, appendix C), kept only for reporting. */
  route?: string[];
}

export interface AddressOptions {
  /** Allow UTF-8 in local parts and domains (SMTPUTF8, RFC 6531 §3.3). */
  utf8?: boolean;
}

function describeChar(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
  return cp < 0x20 || cp === 0x7f ? hex : `"${ch}" (${hex})`;
}

/** RFC 5322 §3.2.3 atext, which RFC 5321 §4.1.2 Atom uses, or under SMTPUTF8 any non-ASCII character. */
function isAtextChar(ch: string, utf8: boolean): boolean {
  const c = ch.charCodeAt(0);
  return isAtext(c) || (utf8 && c >= 0x80);
}

function rejectControls(text: string, what: string): void {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) {
      throw new AddressError(`control character ${describeChar(text[i] ?? "")} at offset ${i} in ${what}`);
    }
  }
}

/** Scans a local part starting at `text[0]`; returns the offset where it ends. */
function scanLocalPart(text: string): number {
  if (text.startsWith('"')) {
    // RFC 5321 §4.1.2 Quoted-string: qtextSMTP is %d32-33 / %d35-91 / %d93-126, quoted-pairSMTP "\" %d32-126.
    let i = 1;
    while (i < text.length) {
      const ch = text[i] ?? "";
      const c = ch.charCodeAt(0);
      if (ch === '"') return i + 1;
      if (ch === "\\") {
        const next = text.charCodeAt(i + 1);
        if (!(next >= 32 && next <= 126)) {
          throw new AddressError(
            Number.isNaN(next)
              ? "unbalanced quote in the local part"
              : `backslash before ${describeChar(text[i + 1] ?? "")} in a quoted local part (only printable ASCII may be escaped)`,
          );
        }
        i += 2;
        continue;
      }
      if (c < 32 || c === 127) throw new AddressError(`${describeChar(ch)} in a quoted local part`);
      // Non-ASCII is allowed here and rejected by the caller unless SMTPUTF8 applies (RFC 6531 §3.3).
      i += ch.length;
    }
    throw new AddressError("unbalanced quote in the local part");
  }
  // Dot-string: Atom *("." Atom)
  let i = 0;
  let atomLength = 0;
  for (; i < text.length; i++) {
    const ch = text[i] ?? "";
    if (ch === "@") break;
    if (ch === ".") {
      if (atomLength === 0)
        throw new AddressError("empty atom in the local part (a leading, trailing or doubled dot)");
      atomLength = 0;
      continue;
    }
    if (!isAtextChar(ch, true)) {
      if (ch === '"') throw new AddressError("a quote inside an unquoted local part");
      throw new AddressError(`${describeChar(ch)} is not allowed in an unquoted local part`);
    }
    atomLength++;
  }
  if (i === 0) throw new AddressError("empty local part");
  if (atomLength === 0)
    throw new AddressError("empty atom in the local part (a leading, trailing or doubled dot)");
  return i;
}

/** RFC 5321 §4.1.3: Snum = 1*3DIGIT representing a decimal integer value in the range 0 through 255. */
export function isIpv4(text: string): boolean {
  const parts = text.split(".");
  return (
    parts.length === 4 &&
    parts.every((p) => p.length >= 1 && p.length <= 3 && everyUnit(p, isDigit) && Number(p) <= 255)
  );
}

/** RFC 5321 §4.1.3 IPv6-addr: full, "::"-compressed, and both with a trailing IPv4 address. */
export function isIpv6(text: string): boolean {
  let hexPart = text;
  let groupsForV4 = 0;
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    if (!isIpv4(tail)) return false;
    // "::1.2.3.4" keeps its "::"; "a:b:...:1.2.3.4" loses only the trailing separator.
    hexPart = text.slice(0, text.endsWith(`::${tail}`) ? lastColon + 1 : lastColon);
    groupsForV4 = 2;
  }
  const hex = /^[0-9A-Fa-f]{1,4}$/;
  const halves = hexPart.split("::");
  if (halves.length > 2) return false;
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  if (halves.length === 1) {
    const all = groups(hexPart);
    return all.length + groupsForV4 === 8 && all.every((g) => hex.test(g));
  }
  const left = groups(halves[0] ?? "");
  const right = groups(halves[1] ?? "");
  // The "::" stands for at least two groups of zeros; no more than 6 others may be present.
  return left.length + right.length + groupsForV4 <= 6 && [...left, ...right].every((g) => hex.test(g));
}

/** Checks an address literal "[...]"; throws AddressError when it is malformed. */
export function parseAddressLiteral(text: string): string {
  if (!text.startsWith("[") || !text.endsWith("]") || text.length < 3) {
    throw new AddressError(`malformed address literal ${JSON.stringify(text)}`);
  }
  const inner = text.slice(1, -1);
  if (isIpv4(inner)) return text;
  const colon = inner.indexOf(":");
  if (colon > 0) {
    const tag = inner.slice(0, colon);
    const value = inner.slice(colon + 1);
    if (tag.toLowerCase() === "ipv6") {
      if (isIpv6(value)) return text;
      throw new AddressError(`malformed IPv6 address literal ${text}`);
    }
    // General-address-literal (Standardized-tag ":" 1*dcontent) is grammar only: its tag must be
    // registered with IANA and only "IPv6" is, so "[2001:db8::1]" gets a pointed message instead.
    throw new AddressError(
      `unknown address literal tag ${JSON.stringify(tag)} in ${text} (only IPv6 is registered)`,
    );
  }
  throw new AddressError(`malformed address literal ${text} (expected [1.2.3.4] or [IPv6:...])`);
}

/**
 * Checks a domain name (RFC 5321 §4.1.2 Domain: LDH labels, or U-labels under SMTPUTF8); returns it.
 * Address literals are not domains; see {@link parseDomainOrLiteral}.
 */
export function parseDomain(text: string, opts: AddressOptions = {}): string {
  const utf8 = opts.utf8 === true;
  if (text === "") throw new AddressError("empty domain");
  rejectControls(text, "the domain");
  const length = octetLength(text);
  if (length > MAX_DOMAIN) {
    throw new AddressError(
      `domain is ${length} octets, the limit is ${MAX_DOMAIN} (RFC 5321 §4.5.3.1.2)`,
      "length",
    );
  }
  for (const label of text.split(".")) {
    if (label === "") throw new AddressError(`empty label in the domain ${JSON.stringify(text)}`);
    // By code unit, not for-of: the string iterator's first use takes 0.05-0.2 ms (compiled), and
    // only ASCII (one unit) is ever described.
    for (let i = 0; i < label.length; i++) {
      const c = label.charCodeAt(i);
      if (isLetterDigitHyphen(c) || (utf8 && c >= 0x80)) continue;
      if (c === 0x40) throw new AddressError("more than one @ outside a quoted local part");
      if (c >= 0x80) throw new AddressError("a non-ASCII domain needs SMTPUTF8 (RFC 6531)", "utf8");
      throw new AddressError(`${describeChar(label[i] ?? "")} is not allowed in a domain`);
    }
    if (label.startsWith("-") || label.endsWith("-")) {
      throw new AddressError(`domain label ${JSON.stringify(label)} starts or ends with a hyphen`);
    }
    if (isAscii(label) && label.length > MAX_DOMAIN_LABEL) {
      throw new AddressError(
        `domain label is ${label.length} octets, the limit is ${MAX_DOMAIN_LABEL} (RFC 1035 §2.3.4)`,
        "length",
      );
    }
  }
  return text;
}

/** A domain name or an address literal, as allowed after the "@" of a mailbox or in EHLO. */
export function parseDomainOrLiteral(text: string, opts: AddressOptions = {}): string {
  if (text.startsWith("[")) {
    rejectControls(text, "the address literal");
    return parseAddressLiteral(text);
  }
  return parseDomain(text, opts);
}

/** Parses "local@domain" (no angle brackets). */
export function parseMailbox(text: string, opts: AddressOptions = {}): Mailbox {
  const utf8 = opts.utf8 === true;
  rejectControls(text, "the address");
  if (text === "") throw new AddressError("empty address");
  const end = scanLocalPart(text);
  const local = text.slice(0, end);
  if (end >= text.length) throw new AddressError(`missing "@domain" after ${JSON.stringify(local)}`);
  if (text[end] !== "@") {
    throw new AddressError(`${describeChar(text[end] ?? "")} after the quoted local part (expected "@")`);
  }
  const localLength = octetLength(local);
  if (localLength > MAX_LOCAL_PART) {
    throw new AddressError(
      `local part is ${localLength} octets, the limit is ${MAX_LOCAL_PART} (RFC 5321 §4.5.3.1.1)`,
      "length",
    );
  }
  const domain = parseDomainOrLiteral(text.slice(end + 1), { utf8: true });
  if (!utf8 && !isAscii(text)) {
    throw new AddressError("a non-ASCII address needs SMTPUTF8 (RFC 6531)", "utf8");
  }
  return { local, domain };
}

/**
 * Parses a path in angle brackets: "<u@d>", the null path "<>", or one with an obsolete source
 * route "<@a,@b:u@d>" (whose route is kept but must be ignored, RFC 5321 §3.3).
 */
export function parsePath(text: string, opts: AddressOptions = {}): Path {
  const length = octetLength(text);
  if (length > MAX_PATH) {
    throw new AddressError(
      `path is ${length} octets, the limit is ${MAX_PATH} (RFC 5321 §4.5.3.1.3)`,
      "length",
    );
  }
  rejectControls(text, "the path");
  if (!text.startsWith("<") || !text.endsWith(">") || text.length < 2) {
    throw new AddressError(`the path ${JSON.stringify(text)} must be enclosed in angle brackets`);
  }
  let inner = text.slice(1, -1);
  if (inner === "") return { mailbox: null };
  let route: string[] | undefined;
  if (inner.startsWith("@")) {
    // A-d-l = At-domain *( "," At-domain ); Domain only, so the first ":" ends it.
    const colon = inner.indexOf(":");
    if (colon < 0) throw new AddressError('source route without ":" before the mailbox');
    route = inner
      .slice(0, colon)
      .split(",")
      .map((hop) => {
        if (!hop.startsWith("@"))
          throw new AddressError(`source route hop ${JSON.stringify(hop)} lacks its "@"`);
        return parseDomain(hop.slice(1), opts);
      });
    inner = inner.slice(colon + 1);
  }
  const mailbox = parseMailbox(inner, opts);
  return route === undefined ? { mailbox } : { mailbox, route };
}

export function formatMailbox(m: Mailbox): string {
  // A domain-less mailbox is the special "<Postmaster>" recipient (RFC 5321 §4.1.1.3).
  return m.domain === "" ? m.local : `${m.local}@${m.domain}`;
}

export function formatPath(p: Path): string {
  if (p.mailbox === null) return "<>";
  const route =
    p.route !== undefined && p.route.length > 0 ? `${p.route.map((d) => `@${d}`).join(",")}:` : "";
  return `<${route}${formatMailbox(p.mailbox)}>`;
}

/** True when the mailbox can only be sent with SMTPUTF8 (RFC 6531). */
export function mailboxNeedsUtf8(m: Mailbox): boolean {
  return !isAscii(m.local) || !isAscii(m.domain);
}

/** True when the path's mailbox needs SMTPUTF8. */
export function pathNeedsUtf8(p: Path): boolean {
  return p.mailbox !== null && mailboxNeedsUtf8(p.mailbox);
}

/** The local part's value: quotes removed and quoted pairs resolved ("\"a\\\"b\"" gives 'a"b'). */
export function unquoteLocalPart(local: string): string {
  if (!local.startsWith('"') || !local.endsWith('"') || local.length < 2) return local;
  return local.slice(1, -1).replace(/\\([\s\S])/g, "$1");
}

/** The wire form of a local-part value: a Dot-string when it is one, else a Quoted-string. */
export function quoteLocalPart(value: string): string {
  if (
    /^[^."\\\s@]+(\.[^."\\\s@]+)*$/.test(value) &&
    [...value].every((ch) => ch === "." || isAtextChar(ch, true))
  ) {
    return value;
  }
  return `"${value.replace(/(["\\])/g, "\\$1")}"`;
}

/** Compares two mailboxes as RFC 5321 §2.4 allows: domain case-insensitively, local part exactly. */
export function sameMailbox(a: Mailbox, b: Mailbox): boolean {
  return a.local === b.local && a.domain.toLowerCase() === b.domain.toLowerCase();
}
