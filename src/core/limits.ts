/**
 * Size limits of SMTP objects. RFC 5321 §4.5.3.1 measures them in octets; a string's length in
 * UTF-16 code units differs from that as soon as SMTPUTF8 (RFC 6531) allows non-ASCII text, so
 * compare against these with {@link octetLength}.
 */

/** RFC 5321 §4.5.3.1.1: the local part of a mailbox (before the "@"). */
export const MAX_LOCAL_PART = 64;
/** RFC 5321 §4.5.3.1.2: a domain name or address literal. */
export const MAX_DOMAIN = 255;
/** RFC 1035 §2.3.4: one label of a domain name. */
export const MAX_DOMAIN_LABEL = 63;
/** RFC 5321 §4.5.3.1.3: a reverse-path or forward-path, angle brackets and separators included. */
export const MAX_PATH = 256;
/** RFC 5321 §4.5.3.1.4: a command line, verb to CRLF inclusive. */
export const MAX_COMMAND_LINE = 512;
/** RFC 5321 §4.5.3.1.6: a line of message text, CRLF included. */
export const MAX_TEXT_LINE = 1000;
/** RFC 5321 §4.5.3.1.5: one reply line, code to CRLF inclusive. */
export const MAX_REPLY_LINE = 512;
/** RFC 5321 §4.5.3.1.8: a server must buffer at least this many recipients per transaction. */
export const MIN_RECIPIENTS = 100;

/**
 * MAIL's line limit grows with each extension's parameters (RFC 5321 §4.1.1.11 allows that):
 * SIZE +26 (RFC 1870 §3), RET and ENVID +100 (RFC 3461 §4), AUTH= +500 (RFC 4954 §5),
 * BODY and SMTPUTF8 a few octets each (RFC 6152, RFC 6531 §3.4); rounded up generously.
 */
export const MAX_MAIL_LINE = MAX_COMMAND_LINE + 26 + 100 + 500 + 64;
/** RCPT's line limit grows by 500 for NOTIFY and ORCPT (RFC 3461 §4). */
export const MAX_RCPT_LINE = MAX_COMMAND_LINE + 500;
/**
 * RFC 4954 §4: a server must take SASL response lines of at least 12288 octets. The AUTH command
 * itself should stay within 512 (a client omits a longer initial response), but XOAUTH2 clients
 * send long tokens on the AUTH line anyway, so a server accepts that much there too.
 */
export const MAX_SASL_LINE = 12288;
/** RFC 3461 §4.4: an ENVID value is at most 100 characters. */
export const MAX_ENVID = 100;
/** RFC 3461 §4.2: an ORCPT value (type, ";" and xtext) is at most 500 characters. */
export const MAX_ORCPT = 500;

/**
 * What a reply parser tolerates per line: well above MAX_REPLY_LINE, because real servers send
 * longer lines, yet bounded so a hostile peer cannot make us buffer without end.
 */
export const MAX_REPLY_LINE_LENIENT = 4096;

/** Length of `s` in UTF-8 octets, without encoding it. Lone surrogates count as U+FFFD (3). */
export function octetLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
