/**
 * What interactive mode needs to know about a line a person typed, before it goes out: which
 * verb it is, whether it needs an extension the server did not advertise (RFC 5321 §2.2.1: a
 * client must not use an extension the server did not announce), and how to complete a verb.
 * Pure functions, so every rule is tested without a terminal.
 */

import type { Capabilities } from "../core/capabilities.ts";

/** Completions offered on TAB, in the order an SMTP session uses them. */
export const TYPED_VERBS = [
  "EHLO ",
  "HELO ",
  "STARTTLS",
  "AUTH PLAIN",
  "AUTH LOGIN",
  "AUTH CRAM-MD5",
  "AUTH XOAUTH2",
  "MAIL FROM:<",
  "RCPT TO:<",
  "DATA",
  "BDAT ",
  "RSET",
  "NOOP",
  "VRFY ",
  "EXPN ",
  "HELP",
  "QUIT",
] as const;

/** readline's completer: the verbs that start with what was typed (case-insensitive). */
export function completeVerb(line: string): [string[], string] {
  const upper = line.toUpperCase();
  const hits = TYPED_VERBS.filter((verb) => verb.startsWith(upper));
  return [hits.length > 0 ? [...hits] : [], line];
}

export function verbOf(line: string): string {
  return (line.trim().split(/\s+/)[0] ?? "").toUpperCase();
}

/** "AUTH PLAIN" → { mechanism: "PLAIN" }; "AUTH PLAIN dGVzdA==" also gives the initial response. */
export function parseTypedAuth(line: string): { mechanism: string; initialResponse?: string } | undefined {
  const words = line.trim().split(/\s+/);
  if ((words[0] ?? "").toUpperCase() !== "AUTH" || words[1] === undefined) return undefined;
  const mechanism = words[1].toUpperCase();
  return words[2] === undefined ? { mechanism } : { mechanism, initialResponse: words.slice(2).join(" ") };
}

/** Offset just past the path's closing ">" (quoted local parts may hold one), or the line's end. */
function endOfPath(line: string): number {
  let quoted = false;
  for (let i = line.indexOf("<") + 1; i > 0 && i < line.length; i++) {
    const ch = line[i];
    if (quoted && ch === "\\") i++;
    else if (ch === '"') quoted = !quoted;
    else if (ch === ">" && !quoted) return i + 1;
  }
  return line.length;
}

/** ESMTP parameters after the path of MAIL or RCPT, upper-cased names ("SIZE", "BODY=8BITMIME"). */
function parametersOf(line: string): string[] {
  const rest = line.slice(endOfPath(line));
  return rest
    .trim()
    .split(/\s+/)
    .filter((p) => p !== "")
    .map((p) => p.toUpperCase());
}

function hasParam(params: readonly string[], name: string): boolean {
  return params.some((p) => p === name || p.startsWith(`${name}=`));
}

/**
 * Why sending `line` would use something the server did not advertise, or undefined when it is
 * fine. `helloDone` is false before any EHLO/HELO succeeded (nothing is advertised yet).
 */
export function unadvertisedUse(line: string, caps: Capabilities, helloDone: boolean): string | undefined {
  const verb = verbOf(line);
  const needs = (extension: string, what: string) =>
    helloDone
      ? `the server did not advertise ${extension} (${what})`
      : `nothing is advertised before EHLO, so ${extension} is not offered yet (${what})`;
  switch (verb) {
    case "STARTTLS":
      return caps.startTls ? undefined : needs("STARTTLS", "RFC 3207");
    case "AUTH": {
      if (caps.auth.length === 0) return needs("AUTH", "RFC 4954");
      const mechanism = parseTypedAuth(line)?.mechanism;
      if (mechanism !== undefined && !caps.auth.includes(mechanism)) {
        return `the server offers AUTH ${caps.auth.join(" ")}, not ${mechanism}`;
      }
      return undefined;
    }
    case "BDAT":
      return caps.chunking ? undefined : needs("CHUNKING", "BDAT, RFC 3030");
    case "MAIL": {
      const params = parametersOf(line);
      if (hasParam(params, "SIZE") && caps.size === undefined) return needs("SIZE", "SIZE=, RFC 1870");
      if (params.includes("BODY=8BITMIME") && !caps.eightBitMime)
        return needs("8BITMIME", "BODY=8BITMIME, RFC 6152");
      if (params.includes("BODY=BINARYMIME") && !caps.binaryMime)
        return needs("BINARYMIME", "BODY=BINARYMIME, RFC 3030");
      if (hasParam(params, "SMTPUTF8") && !caps.smtpUtf8) return needs("SMTPUTF8", "RFC 6531");
      if ((hasParam(params, "RET") || hasParam(params, "ENVID")) && !caps.dsn)
        return needs("DSN", "RET/ENVID, RFC 3461");
      if (hasParam(params, "AUTH") && caps.auth.length === 0) return needs("AUTH", "AUTH=, RFC 4954");
      return undefined;
    }
    case "RCPT": {
      const params = parametersOf(line);
      if ((hasParam(params, "NOTIFY") || hasParam(params, "ORCPT")) && !caps.dsn)
        return needs("DSN", "NOTIFY/ORCPT, RFC 3461");
      return undefined;
    }
    default:
      return undefined;
  }
}
