/**
 * Character classes as tests on UTF-16 code units, for the parsing `smtpkit send` does on every
 * run. They stand in for regular expressions because, in the compiled binary, each distinct regex
 * costs about 40 µs the first time it runs (JSC compiles it) and send runs once per process: the
 * twenty-odd on its path came to most of a millisecond. Each class is exactly the regex class in
 * its comment, seen over code units as a regex without the u flag sees them; the tests compare
 * every one of the 65,536 units with that regex.
 */

/** `\d`: ASCII digits only, as in a regex without the u flag. */
export function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** `[A-Za-z0-9]` */
export function isAlphanumeric(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** `[A-Za-z0-9-]`: what domain labels and EHLO keywords are made of (RFC 5321 §4.1.2, §4.1.1.1). */
export function isLetterDigitHyphen(c: number): boolean {
  return isAlphanumeric(c) || c === 0x2d;
}

const ATEXT_SPECIALS = "!#$%&'*+-/=?^_`{|}~";

/** `[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]`: RFC 5322 §3.2.3 atext, ASCII only. */
export function isAtext(c: number): boolean {
  return isAlphanumeric(c) || (c < 0x80 && ATEXT_SPECIALS.includes(String.fromCharCode(c)));
}

/** `[\x21-\x7e]`: printable ASCII without the space. */
export function isVisibleAscii(c: number): boolean {
  return c >= 0x21 && c <= 0x7e;
}

/** `[\x21-\x39\x3b-\x7e]`: RFC 5322 §3.6.8 ftext, printable ASCII except ":". */
export function isFtext(c: number): boolean {
  return isVisibleAscii(c) && c !== 0x3a;
}

/** `[ \t]`: RFC 5322 WSP. */
export function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** What `.` does not match without the s flag: LF, CR, U+2028 and U+2029. */
export function isLineTerminator(c: number): boolean {
  return c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029;
}

/**
 * `\s`: ECMAScript's WhiteSpace and LineTerminator, the set `trim()` removes. Beyond ASCII that is
 * NBSP, the other Unicode space separators (Zs), the BOM, and U+2028/U+2029.
 */
export function isWhiteSpace(c: number): boolean {
  if (c < 0x80) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/** True when `test` holds for every code unit of `text`, so also for "". */
export function everyUnit(text: string, test: (c: number) => boolean): boolean {
  for (let i = 0; i < text.length; i++) if (!test(text.charCodeAt(i))) return false;
  return true;
}

/** True when `test` holds for some code unit of `text`. */
export function someUnit(text: string, test: (c: number) => boolean): boolean {
  return !everyUnit(text, (c) => !test(c));
}

/** True when every character is US-ASCII (RFC 20), controls included: no match for `[^\x00-\x7f]`. */
export function isAscii(text: string): boolean {
  return everyUnit(text, (c) => c <= 0x7f);
}

/**
 * What `text.split(/x+/)` gives for a class x that `isSeparator` tests, or with `keepSeparators`
 * what `text.split(/(x+)/)` gives: the pieces between runs of separators, with the runs between them.
 */
export function splitRuns(
  text: string,
  isSeparator: (c: number) => boolean,
  keepSeparators = false,
): string[] {
  const pieces: string[] = [];
  let start = 0;
  let i = 0;
  while (i < text.length) {
    if (!isSeparator(text.charCodeAt(i))) {
      i++;
      continue;
    }
    let end = i + 1;
    while (end < text.length && isSeparator(text.charCodeAt(end))) end++;
    pieces.push(text.slice(start, i));
    if (keepSeparators) pieces.push(text.slice(i, end));
    start = end;
    i = end;
  }
  pieces.push(text.slice(start));
  return pieces;
}
