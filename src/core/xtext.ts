/**
 * xtext (RFC 3461 §4): printable ASCII except "+" and "=" stands for itself; any other octet is
 * "+" and two upper-case hex digits. Text is taken as UTF-8, so non-ASCII survives a round trip.
 */

const encoder = new TextEncoder();
/** Made on first use: making a fatal TextDecoder takes about 0.1 ms at start-up (compiled). */
let strictDecoder: TextDecoder | undefined;

function hex(byte: number): string {
  return byte.toString(16).toUpperCase().padStart(2, "0");
}

export function encodeXtext(s: string): string {
  let out = "";
  for (const byte of encoder.encode(s)) {
    out +=
      byte >= 0x21 && byte <= 0x7e && byte !== 0x2b && byte !== 0x3d
        ? String.fromCharCode(byte)
        : `+${hex(byte)}`;
  }
  return out;
}

/**
 * Decodes xtext; throws on a character outside xchar, a "+" without two hex digits, or octets that
 * are not UTF-8. Lower-case hex digits are accepted although RFC 3461 asks for upper case, because
 * some clients send them and the meaning is unambiguous.
 */
export function decodeXtext(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2b) {
      const pair = s.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(pair))
        throw new Error(`xtext: "+" at offset ${i} is not followed by two hex digits`);
      bytes.push(Number.parseInt(pair, 16));
      i += 2;
    } else if (c >= 0x21 && c <= 0x7e && c !== 0x3d) {
      bytes.push(c);
    } else {
      throw new Error(`xtext: character ${JSON.stringify(s[i])} at offset ${i} must be written as +XX`);
    }
  }
  try {
    strictDecoder ??= new TextDecoder("utf-8", { fatal: true });
    return strictDecoder.decode(new Uint8Array(bytes));
  } catch {
    throw new Error("xtext: the decoded octets are not UTF-8");
  }
}

/** True when `s` is well-formed xtext. */
export function isXtext(s: string): boolean {
  return /^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/.test(s);
}

/** RFC 6533 §3 QCHAR: printable ASCII except "+", "=" and "\". */
function isQchar(c: number): boolean {
  return c >= 0x21 && c <= 0x7e && c !== 0x2b && c !== 0x3d && c !== 0x5c;
}

/**
 * utf-8-addr-xtext (RFC 6533 §3), the ORCPT form for the "utf-8" address type: QCHARs stand for
 * themselves, anything else is "\x{HEX}" with its Unicode code point, so the result is ASCII.
 */
export function encodeUtf8AddrXtext(s: string): string {
  let out = "";
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    out += isQchar(cp) ? ch : `\\x{${cp.toString(16).toUpperCase().padStart(2, "0")}}`;
  }
  return out;
}

/**
 * Decodes utf-8-addr-xtext or utf-8-addr-unitext (RFC 6533 §3: the latter also carries raw UTF-8).
 * Throws on characters that must be escaped and on escapes that name no Unicode scalar value.
 */
export function decodeUtf8AddrXtext(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; ) {
    const cp = s.codePointAt(i) ?? 0;
    if (cp === 0x5c) {
      const m = /^\\x\{([0-9A-Fa-f]{1,6})\}/.exec(s.slice(i));
      const value = m === null ? Number.NaN : Number.parseInt(m[1] ?? "", 16);
      if (m === null || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) {
        throw new Error(`utf-8-addr-xtext: malformed escape at offset ${i} (expected \\x{HEX})`);
      }
      out += String.fromCodePoint(value);
      i += m[0].length;
    } else if (isQchar(cp) || (cp >= 0x80 && !(cp >= 0xd800 && cp <= 0xdfff))) {
      const ch = String.fromCodePoint(cp);
      out += ch;
      i += ch.length;
    } else {
      throw new Error(
        `utf-8-addr-xtext: character ${JSON.stringify(s[i])} at offset ${i} must be written as \\x{HEX}`,
      );
    }
  }
  return out;
}
