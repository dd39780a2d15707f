import { everyUnit, isDigit } from "../core/chars.ts";
import { UsageError } from "./exit-codes.ts";

/** cac hands over strings, numbers (mri coerces digits), booleans or arrays; these read them plainly. */
export type OptionValue = string | number | boolean | Array<string | number> | undefined;

/** Every value of a repeatable flag, with comma-separated lists split (`--to a,b --to c`). */
export function listOption(value: OptionValue, splitCommas = true): string[] {
  if (value === undefined || value === false) return [];
  const values = Array.isArray(value) ? value : [value];
  // A loop, not flatMap: flatMap's first call takes 0.3-0.5 ms in a small compiled program.
  const strings: string[] = [];
  for (const v of values) {
    if (splitCommas) strings.push(...splitAddressList(String(v)));
    else strings.push(String(v));
  }
  return strings;
}

/** The last value given for a flag that takes one. */
export function stringOption(value: OptionValue): string | undefined {
  if (value === undefined || value === false) return undefined;
  const last = Array.isArray(value) ? value[value.length - 1] : value;
  if (last === true) return undefined;
  return last === undefined ? undefined : String(last);
}

export function numberOption(value: OptionValue, flag: string, min = 0): number | undefined {
  const text = stringOption(value);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`${flag} wants a number >= ${min}, not '${text}'`);
  return n;
}

export function choiceOption<T extends string>(
  value: OptionValue,
  flag: string,
  choices: readonly T[],
): T | undefined {
  const text = stringOption(value);
  if (text === undefined) return undefined;
  const lower = text.toLowerCase();
  const found = choices.find((c) => c.toLowerCase() === lower);
  if (!found) throw new UsageError(`${flag} must be one of ${choices.join(", ")}, not '${text}'`);
  return found;
}

/** Splits at commas outside quotes and angle brackets, so `"Nguyễn, Ana" <a@b>` stays whole. */
export function splitAddressList(text: string): string[] {
  const parts: string[] = [];
  let current = "";
  let quoted = false;
  let angle = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "\\" && quoted) {
      current += ch + (text[i + 1] ?? "");
      i++;
      continue;
    }
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === "<") angle++;
    else if (!quoted && ch === ">") angle = Math.max(0, angle - 1);
    if (ch === "," && !quoted && angle === 0) {
      parts.push(current);
      current = "";
    } else current += ch;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

/**
 * A non-empty host, in brackets or without ":", "[" and "]", then ":" and digits or nothing; the
 * port is undefined when there is none, and the whole is undefined when `text` is not that.
 */
function splitHostPort(text: string): { host: string; port: string | undefined } | undefined {
  let host: string;
  let rest: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]", 1);
    if (close <= 1) return undefined;
    host = text.slice(1, close);
    rest = text.slice(close + 1);
  } else {
    let end = 0;
    while (end < text.length && !":[]".includes(text[end]!)) end++;
    if (end === 0) return undefined;
    host = text.slice(0, end);
    rest = text.slice(end);
  }
  if (rest === "") return { host, port: undefined };
  const port = rest.slice(1);
  return rest[0] === ":" && port !== "" && everyUnit(port, isDigit) ? { host, port } : undefined;
}

/** `HOST[:PORT]`, `[v6]:PORT`; the port falls back to `defaultPort`. */
export function hostPort(text: string, flag: string, defaultPort: number): { host: string; port: number } {
  // More than one ":" outside brackets is a bare IPv6 address.
  if (text.indexOf(":") !== text.lastIndexOf(":") && !text.startsWith("[")) {
    return { host: text, port: defaultPort };
  }
  const match = splitHostPort(text);
  if (match === undefined) throw new UsageError(`${flag} wants HOST[:PORT], not '${text}'`);
  const port = match.port === undefined ? defaultPort : Number(match.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new UsageError(`${flag}: port must be 1-65535 in '${text}'`);
  return { host: match.host, port };
}

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** "300", "300s", "5m", "4h", "5d", "1w", or several joined ("1h30m"); a bare number is seconds, as in Postfix. */
export function parseDuration(text: string, flag: string): number {
  const trimmed = text.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g;
  let total = 0;
  let consumed = 0;
  for (const match of trimmed.matchAll(part)) {
    if (match.index !== consumed) break;
    total += Number(match[1]) * (UNIT_MS[match[2] ?? "s"] ?? 1000);
    consumed += match[0].length;
  }
  if (consumed === 0 || consumed !== trimmed.length) {
    throw new UsageError(`${flag} wants a duration such as 300s, 5m, 4h or 5d, not '${text}'`);
  }
  return total;
}

export function durationOption(value: OptionValue, flag: string): number | undefined {
  const text = stringOption(value);
  return text === undefined ? undefined : parseDuration(text, flag);
}
