import { everyUnit, isBlank, isFtext, splitRuns } from "../core/chars.ts";
import { MAX_TEXT_LINE, octetLength } from "../core/limits.ts";

/** RFC 5322 §2.1.1: a line SHOULD be at most 78 characters, CRLF not counted. */
export const MAX_HEADER_LINE = 78;
/** RFC 5322 §2.1.1: a line MUST be at most 998 octets, CRLF not counted. */
export const MAX_HEADER_LINE_HARD = MAX_TEXT_LINE - 2;

/** RFC 5322 §3.6.8 field-name = 1*ftext, ftext being printable ASCII except ":". */
export function isFieldName(name: string): boolean {
  return name !== "" && everyUnit(name, isFtext);
}

/** A header field that cannot be written as asked: a bad name, a line break in the value, a line too long. */
export class HeaderError extends Error {
  override name = "HeaderError";
}

/**
 * Writes `Name: value`, folded (RFC 5322 §2.2.3) by putting CRLF before white space that is
 * already in the value, so that unfolding gives back the value exactly. Lines are kept within
 * `maxLine` octets wherever a space allows it; a word too long for that gets a line of its own. No
 * CRLF after the last line. Throws HeaderError when some line would still exceed 998 octets.
 */
export function foldHeader(name: string, value: string, maxLine: number = MAX_HEADER_LINE): string {
  if (!isFieldName(name)) throw new HeaderError(`invalid header field name ${JSON.stringify(name)}`);
  if (value.includes("\r") || value.includes("\n"))
    throw new HeaderError(`the ${name} header value contains a line break`);
  // Text and white space alternate, as a split with a capture group gives them; the leading "" is the name's slot.
  const parts = splitRuns(` ${value}`, isBlank, true);
  let out = `${name}:`;
  let line = out.length;
  let longest = line;
  for (let i = 1; i < parts.length; i += 2) {
    const space = parts[i]!;
    const word = parts[i + 1] ?? "";
    const width = octetLength(space) + octetLength(word);
    // A line may not be white space only (§3.2.2), so trailing white space is never folded off.
    if (word !== "" && line + width > maxLine) {
      out += "\r\n";
      line = 0;
    }
    out += space + word;
    line += width;
    longest = Math.max(longest, line);
  }
  if (longest > MAX_HEADER_LINE_HARD) {
    throw new HeaderError(
      `the ${name} header has a word too long to fold within ${MAX_HEADER_LINE_HARD} octets`,
    );
  }
  return out;
}

/** Undoes folding (RFC 5322 §2.2.3): removes each CRLF (or bare LF) that precedes white space. */
export function unfoldHeader(text: string): string {
  return text.replace(/\r?\n(?=[ \t])/g, "");
}
