import { type Path, pathNeedsUtf8 } from "./address.ts";
import type { MailParams, RcptParams } from "./esmtp-params.ts";

/** One accepted RCPT TO: the forward-path and its parameters. */
export interface Recipient {
  path: Path;
  params: RcptParams;
}

/** A mail transaction's envelope (RFC 5321 §2.3.1): reverse-path, MAIL parameters, recipients. */
export interface Envelope {
  from: Path;
  mailParams: MailParams;
  recipients: Recipient[];
}

/** True when some address in the envelope can only travel with SMTPUTF8 (RFC 6531). */
export function envelopeNeedsUtf8(envelope: Envelope): boolean {
  return pathNeedsUtf8(envelope.from) || envelope.recipients.some((r) => pathNeedsUtf8(r.path));
}
