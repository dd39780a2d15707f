import { decodeEncodedWords, encodeWords } from "./encoded-word.ts";
import { MAX_HEADER_LINE } from "./header-fold.ts";
import { codePointOctets, decodeCharset, utf8Decode, utf8Encode } from "./utf8.ts";

/**
 * The longest parameter written on one line: the folder puts each parameter on a line of its own
 * after one space, with the ";" that separates it from the next, within RFC 5322's 78.
 */
export const MAX_PARAMETER_LENGTH = MAX_HEADER_LINE - 2;

const HEX = "0123456789ABCDEF";
const PRINTABLE_OR_SPACE = /^[\x20-\x7e]*$/;
/** RFC 2231 §7 attribute-char: US-ASCII except space, controls, "*", "'", "%" and RFC 2045 tspecials. */
const ATTRIBUTE_CHAR = /^[A-Za-z0-9!#$&+\-.^_`{|}~]$/;

function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, "\\$&")}"`;
}

/** A quoted value fits on a line and means the same to every client: plain ASCII that decodes as itself. */
function plainParameter(name: string, value: string): string | undefined {
  if (!PRINTABLE_OR_SPACE.test(value) || value.includes("=?")) return undefined;
  const plain = `${name}=${quote(value)}`;
  return plain.length <= MAX_PARAMETER_LENGTH ? plain : undefined;
}

function percentPieces(value: string): string[] {
  const pieces: string[] = [];
  for (const ch of value) {
    if (ATTRIBUTE_CHAR.test(ch)) pieces.push(ch);
    else
      pieces.push(
        codePointOctets(ch.codePointAt(0)!)
          .map((b) => `%${HEX[b >> 4]}${HEX[b & 0x0f]}`)
          .join(""),
      );
  }
  return pieces;
}

/**
 * A MIME parameter such as a filename, ready to join with "; ". Short printable ASCII gives
 * `name="value"`; anything else uses RFC 2231 §4 `name*=UTF-8''%..`, split into continuations
 * `name*0*=`, `name*1*=`, ... (§3) that each fit {@link MAX_PARAMETER_LENGTH} and never split a
 * character's octets, for decoders that decode each segment alone.
 */
export function encodeParameter(name: string, value: string): string[] {
  const plain = plainParameter(name, value);
  if (plain !== undefined) return [plain];
  const pieces = percentPieces(value);
  const single = `${name}*=UTF-8''${pieces.join("")}`;
  if (single.length <= MAX_PARAMETER_LENGTH) return [single];
  const segments: string[] = [];
  let current = `${name}*0*=UTF-8''`;
  let hasText = false;
  for (const piece of pieces) {
    if (hasText && current.length + piece.length > MAX_PARAMETER_LENGTH) {
      segments.push(current);
      current = `${name}*${segments.length}*=`;
      hasText = false;
    }
    current += piece;
    hasText = true;
  }
  segments.push(current);
  return segments;
}

/**
 * The same parameter for clients that predate RFC 2231 (old Outlook, some webmail): encoded-words
 * inside a quoted string. RFC 2047 §5 does not allow that, but those clients read nothing else,
 * and RFC 2231-aware ones prefer the filename* parameter next to it.
 */
export function encodeLegacyParameter(name: string, value: string): string {
  return plainParameter(name, value) ?? `${name}=${quote(encodeWords(value, "phrase").join(" "))}`;
}

/** A header value with its parameters, names lower-cased, continuations joined and decoded. */
export interface ParameterizedValue {
  value: string;
  parameters: Map<string, string>;
}

interface RawParameter {
  name: string;
  index: number;
  extended: boolean;
  value: string;
}

function percentDecode(text: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      out.push(Number.parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(...utf8Encode(text[i]!));
  }
  return new Uint8Array(out);
}

/** Splits `type/subtype; a=1; b="two"` (unfolded) at semicolons outside quoted strings. */
function readParameters(text: string): { value: string; raw: RawParameter[] } {
  const raw: RawParameter[] = [];
  let i = text.indexOf(";");
  const value = (i === -1 ? text : text.slice(0, i)).trim();
  if (i === -1) return { value, raw };
  while (i < text.length) {
    while (i < text.length && /[;\s]/.test(text[i]!)) i++;
    const eq = text.indexOf("=", i);
    if (eq === -1) break;
    const key = text.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    while (i < text.length && /\s/.test(text[i]!)) i++;
    let v = "";
    if (text[i] === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === "\\" && i + 1 < text.length) i++;
        v += text[i];
      }
      i++;
    } else {
      const end = text.indexOf(";", i);
      v = text.slice(i, end === -1 ? text.length : end).trim();
      i = end === -1 ? text.length : end;
    }
    const m = /^(.*?)(?:\*(\d+))?(\*)?$/.exec(key)!;
    raw.push({
      name: m[1]!,
      index: m[2] === undefined ? -1 : Number(m[2]),
      extended: m[3] === "*",
      value: v,
    });
  }
  return { value, raw };
}

/**
 * Parses a parameterized header value such as Content-Type or Content-Disposition, joining RFC
 * 2231 continuations and decoding `*=charset'lang'%XX` values. Plain values have RFC 2047
 * encoded-words decoded, the way the legacy `name=` parameter is written.
 */
export function parseParameterizedValue(text: string): ParameterizedValue {
  const { value, raw } = readParameters(text);
  const parameters = new Map<string, string>();
  const names = [...new Set(raw.map((p) => p.name))];
  for (const name of names) {
    const parts = raw.filter((p) => p.name === name).sort((a, b) => a.index - b.index);
    if (parts.every((p) => !p.extended)) {
      parameters.set(name, decodeEncodedWords(parts.map((p) => p.value).join("")));
      continue;
    }
    let charset = "utf-8";
    const bytes: number[] = [];
    parts.forEach((p, n) => {
      let v = p.value;
      if (p.extended && n === 0) {
        const m = /^([^']*)'[^']*'(.*)$/s.exec(v);
        if (m) {
          charset = m[1]!;
          v = m[2]!;
        }
      }
      bytes.push(...(p.extended ? percentDecode(v) : utf8Encode(v)));
    });
    parameters.set(
      name,
      decodeCharset(charset || "utf-8", new Uint8Array(bytes)) ?? utf8Decode(new Uint8Array(bytes)),
    );
  }
  return { value, parameters };
}
