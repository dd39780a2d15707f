/**
 * Which MAIL and RCPT parameters a transaction may carry, given what the server offered and what
 * the message needs; and whether it goes by DATA or BDAT. Pure, so every rule is unit-tested.
 *
 * Rules: SIZE= only when SIZE is offered, and a message over the advertised limit is refused
 * before MAIL (RFC 1870 §6.1); BODY=8BITMIME / BINARYMIME and SMTPUTF8 only when needed, and a
 * message that needs one the server lacks is refused here (RFC 6152 §3, RFC 3030 §3, RFC 6531
 * §3.4); DSN parameters only with DSN (RFC 3461 §4), AUTH= only with AUTH (RFC 4954 §5), else
 * dropped with a warning; BDAT when CHUNKING is offered and allowed, always for BINARYMIME.
 */

import type { Capabilities } from "../core/capabilities.ts";
import { type Envelope, envelopeNeedsUtf8 } from "../core/envelope.ts";
import type { MailParams, RcptParams } from "../core/esmtp-params.ts";
import { SmtpClientError } from "./errors.ts";

/** What the caller knows about the message. */
export interface MessageTraits {
  /** Octets with CRLF line ends (what SIZE= announces), when known. */
  size?: number;
  /** Octets above 127 in a line-oriented body: BODY=8BITMIME. */
  eightBit?: boolean;
  /** Arbitrary octets (RFC 3030 BINARYMIME): BDAT, never line-end normalisation. */
  binary?: boolean;
  /** UTF-8 in header fields (RFC 6532): SMTPUTF8 even when every address is ASCII. */
  smtpUtf8?: boolean;
}

export interface TransactionPlan {
  envelope: Envelope;
  useBdat: boolean;
  /** Things dropped on the way, for -v and JSON output. */
  warnings: string[];
}

export function planTransaction(
  caps: Capabilities,
  envelope: Envelope,
  traits: MessageTraits,
  chunkingAllowed: boolean,
): TransactionPlan {
  const warnings: string[] = [];
  const given = envelope.mailParams;
  const mail: MailParams = { other: given.other };

  if (traits.size !== undefined && caps.size !== undefined) {
    if (caps.size > 0 && traits.size > caps.size) {
      throw new SmtpClientError(
        "size-exceeded",
        "mail",
        `the message is ${traits.size} octets; the server accepts at most ${caps.size} (SIZE, RFC 1870)`,
        { temporary: false },
      );
    }
    mail.size = traits.size;
  }

  const binary = traits.binary === true || given.body === "BINARYMIME";
  const eightBit = !binary && (traits.eightBit === true || given.body === "8BITMIME");
  if (binary) {
    if (!caps.binaryMime || !caps.chunking || !chunkingAllowed) {
      throw new SmtpClientError(
        "binarymime-unsupported",
        "mail",
        chunkingAllowed
          ? "the message is binary, but the server does not offer BINARYMIME with CHUNKING (RFC 3030)"
          : "the message is binary, which needs BDAT, but CHUNKING was turned off",
        { temporary: false },
      );
    }
    mail.body = "BINARYMIME";
  } else if (eightBit) {
    if (!caps.eightBitMime) {
      throw new SmtpClientError(
        "8bitmime-unsupported",
        "mail",
        "the message has 8-bit content, but the server does not offer 8BITMIME (RFC 6152); encode it as 7-bit",
        { temporary: false },
      );
    }
    mail.body = "8BITMIME";
  } else if (given.body === "7BIT" && caps.eightBitMime) {
    mail.body = "7BIT";
  }

  if (traits.smtpUtf8 === true || given.smtpUtf8 === true || envelopeNeedsUtf8(envelope)) {
    if (!caps.smtpUtf8) {
      throw new SmtpClientError(
        "smtputf8-unsupported",
        "mail",
        "an address or header needs UTF-8, but the server does not offer SMTPUTF8 (RFC 6531)",
        { temporary: false },
      );
    }
    mail.smtpUtf8 = true;
  }

  const dsnGiven = given.ret !== undefined || given.envid !== undefined;
  if (caps.dsn) {
    if (given.ret !== undefined) mail.ret = given.ret;
    if (given.envid !== undefined) mail.envid = given.envid;
  } else if (dsnGiven) {
    warnings.push("the server does not offer DSN: RET and ENVID dropped");
  }

  if (given.auth !== undefined) {
    if (caps.auth.length > 0) mail.auth = given.auth;
    else warnings.push("the server does not offer AUTH: MAIL's AUTH= dropped");
  }

  let recipients = envelope.recipients;
  if (!caps.dsn && recipients.some((r) => r.params.notify !== undefined || r.params.orcpt !== undefined)) {
    warnings.push("the server does not offer DSN: NOTIFY and ORCPT dropped");
    recipients = recipients.map((r) => ({
      path: r.path,
      params: { other: r.params.other } satisfies RcptParams,
    }));
  }

  return {
    envelope: { from: envelope.from, mailParams: mail, recipients },
    useBdat: binary || (caps.chunking && chunkingAllowed),
    warnings,
  };
}
