import { SearchQueryError } from "./types.ts";

/**
 * Mailpit's search syntax (https://mailpit.axllent.org/docs/usage/search-filters/), parsed into
 * terms that every term must match. A leading `-` or `!` negates a term; double quotes group words.
 */

export type AddressField = "from" | "to" | "cc" | "bcc" | "reply-to" | "addressed";

export type SearchTerm =
  | { kind: "address"; field: AddressField; value: string; negate: boolean }
  | { kind: "subject"; value: string; negate: boolean }
  | { kind: "message-id"; value: string; negate: boolean }
  | { kind: "text"; value: string; negate: boolean }
  | { kind: "read"; read: boolean }
  | { kind: "attachment"; present: boolean }
  | { kind: "inline"; present: boolean }
  | { kind: "tag"; value: string; negate: boolean }
  | { kind: "tagged"; negate: boolean }
  | { kind: "received"; op: "before" | "after"; at: number; negate: boolean }
  | { kind: "size"; op: "larger" | "smaller"; bytes: number; negate: boolean };

const ADDRESS_PREFIXES: readonly AddressField[] = ["from", "to", "cc", "bcc", "reply-to", "addressed"];

export function parseSearchQuery(query: string, tz?: string): SearchTerm[] {
  const terms: SearchTerm[] = [];
  for (let token of splitQuery(query)) {
    let negate = false;
    if (token.length > 1 && (token[0] === "-" || token[0] === "!")) {
      negate = true;
      token = token.slice(1);
    }
    // Mailpit ignores tokens without a letter or digit ("-", quotes, punctuation).
    if (!/[\p{L}\p{N}]/u.test(token)) continue;
    const term = parseTerm(token, negate, tz);
    if (term) terms.push(term);
  }
  return terms;
}

function parseTerm(token: string, negate: boolean, tz: string | undefined): SearchTerm | undefined {
  const lower = token.toLowerCase();
  const colon = lower.indexOf(":");
  const prefix = colon > 0 ? lower.slice(0, colon) : "";
  const value = colon > 0 ? token.slice(colon + 1).trim() : "";
  const field = ADDRESS_PREFIXES.find((name) => name === prefix);
  if (field) return value ? { kind: "address", field, value, negate } : undefined;
  switch (prefix) {
    case "subject":
      return value ? { kind: "subject", value, negate } : undefined;
    case "message-id":
      return value ? { kind: "message-id", value, negate } : undefined;
    case "tag":
      return value ? { kind: "tag", value, negate } : undefined;
    case "before":
    case "after":
      return value ? { kind: "received", op: prefix, at: parseSearchDate(value, tz), negate } : undefined;
    case "larger":
    case "smaller":
      return value ? { kind: "size", op: prefix, bytes: parseSize(value), negate } : undefined;
    case "is":
      return parseIs(lower.slice(colon + 1), negate, token);
    case "has":
      return parseHas(lower.slice(colon + 1), negate, token);
    default:
      return { kind: "text", value: token, negate };
  }
}

function parseIs(what: string, negate: boolean, token: string): SearchTerm {
  switch (what) {
    case "read":
      return { kind: "read", read: !negate };
    case "unread":
      return { kind: "read", read: negate };
    case "tagged":
      return { kind: "tagged", negate };
    default:
      throw new SearchQueryError(`unknown filter "${token}" (is:read, is:unread or is:tagged)`);
  }
}

function parseHas(what: string, negate: boolean, token: string): SearchTerm {
  switch (what) {
    case "attachment":
    case "attachments":
      return { kind: "attachment", present: !negate };
    case "inline":
    case "inlines":
      return { kind: "inline", present: !negate };
    default:
      throw new SearchQueryError(`unknown filter "${token}" (has:attachment or has:inline)`);
  }
}

/** Splits on white space outside double quotes and drops the quotes, like Mailpit's ArgsParser. */
export function splitQuery(query: string): string[] {
  const tokens: string[] = [];
  let current = "";
  let quoted = false;
  for (const char of query) {
    if (char === '"') {
      quoted = !quoted;
    } else if (!quoted && /\s/.test(char)) {
      if (current) tokens.push(current);
      current = "";
    } else {
      current += char;
    }
  }
  if (current) tokens.push(current);
  return tokens;
}

/** Mailpit's sizes: a number with an optional k/kb or m/mb unit (1024-based). */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s?(k|kb|m|mb)?$/i.exec(text.trim());
  if (!match?.[1]) throw new SearchQueryError(`bad size "${text}" (for example 512, 20k or 1.5mb)`);
  const unit = (match[2] ?? "").toLowerCase();
  const factor = unit.startsWith("m") ? 1024 * 1024 : unit.startsWith("k") ? 1024 : 1;
  return Math.floor(Number(match[1]) * factor);
}

const WALL_CLOCK = /^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$/;

/**
 * A before:/after: date. A date or date-time without an offset is a wall-clock time in `tz` (the
 * process's zone when absent), like Mailpit; anything else must carry its own zone.
 */
export function parseSearchDate(text: string, tz?: string): number {
  const match = WALL_CLOCK.exec(text.trim());
  if (match) {
    const [year, month, day, hour, minute, second] = match.slice(1).map((part) => Number(part ?? 0)) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
      throw new SearchQueryError(`bad date "${text}"`);
    }
    return tz === undefined
      ? new Date(year, month - 1, day, hour, minute, second).getTime()
      : zonedWallClockToEpoch(Date.UTC(year, month - 1, day, hour, minute, second), tz);
  }
  const ms = Date.parse(text);
  if (!Number.isFinite(ms))
    throw new SearchQueryError(`bad date "${text}" (for example 2024-05-31 or 2024-05-31T13:00:00Z)`);
  return ms;
}

/** `wallClock` is the wall-clock time written as if it were UTC; returns the instant it names in `tz`. */
function zonedWallClockToEpoch(wallClock: number, tz: string): number {
  const first = wallClock - zoneOffset(wallClock, tz);
  // Near a DST change the offset at the guess and at the answer differ; the second pass settles it.
  return wallClock - zoneOffset(first, tz);
}

const zoneFormats = new Map<string, Intl.DateTimeFormat>();

/** The zone's offset from UTC at `instant`, in ms. */
function zoneOffset(instant: number, tz: string): number {
  let format = zoneFormats.get(tz);
  if (!format) {
    try {
      format = new Intl.DateTimeFormat("en-US", {
        timeZone: tz,
        hourCycle: "h23",
        year: "numeric",
        month: "numeric",
        day: "numeric",
        hour: "numeric",
        minute: "numeric",
        second: "numeric",
      });
    } catch {
      throw new SearchQueryError(`unknown time zone "${tz}"`);
    }
    zoneFormats.set(tz, format);
  }
  const parts: Record<string, number> = {};
  for (const part of format.formatToParts(instant)) parts[part.type] = Number(part.value);
  const asUtc = Date.UTC(
    parts.year ?? 1970,
    (parts.month ?? 1) - 1,
    parts.day ?? 1,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  );
  return asUtc - Math.floor(instant / 1000) * 1000;
}

/** Terms that read body-derived columns, which the indexer fills in after the message is stored. */
export function needsBodyIndex(terms: readonly SearchTerm[]): boolean {
  return terms.some((term) => term.kind === "text" || term.kind === "attachment" || term.kind === "inline");
}
