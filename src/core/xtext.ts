/**
 * xtext (RFC 3461 §4): printable ASCII except "+" and "=" stands for itself; any other octet is
 * "+" and two upper-case hex digits. Text is taken as UTF-8, so non-ASCII survives a round trip.
 */

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

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
    return strictDecoder.decode(new Uint8Array(bytes));
  } catch {
    throw new Error("xtext: the decoded octets are not UTF-8");
  }
}

/** True when `s` is well-formed xtext. */
export function isXtext(s: string): boolean {
  return /^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/.test(s);
}
