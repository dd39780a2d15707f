/**
 * A complete message given as it is (`send --raw`, `sendmail`). Loaded only for those: a `send`
 * that builds its message does not carry it (nor headers.ts).
 */
import { parseAddressList } from "../mime/address-header.ts";
import { headerValues, removeHeaders, splitMessage } from "../mime/headers.ts";
import { UsageError } from "./exit-codes.ts";
import { badData, type Composition, envelopePath } from "./send-compose.ts";

/** How sendmail departs from `send --raw` when taking the envelope from a raw message. */
export interface RawEnvelopeOptions {
  /** sendmail -t: the To/Cc/Bcc recipients are added to the given ones (and Bcc removed). */
  headerRecipients?: boolean;
  /** Remove Bcc even when the recipients were given, as Postfix's sendmail does. */
  alwaysRemoveBcc?: boolean;
}

/**
 * A complete message sent as it is (only dot-stuffed on the wire). The envelope comes from the
 * flags, or else from the From/To/Cc/Bcc headers, in which case Bcc is removed (as sendmail -t does).
 */
export function composeRaw(
  raw: Uint8Array,
  envelopeFrom: string | undefined,
  envelopeTo: string[],
  options: RawEnvelopeOptions = {},
): Composition {
  const parsed = splitMessage(raw);
  if (parsed.fields.length === 0)
    throw badData("the raw message has no header fields; is it an RFC 5322 message?");
  const listOf = (name: string) =>
    headerValues(parsed, name).flatMap((value) => {
      try {
        return parseAddressList(value).map((a) => a.address);
      } catch (error) {
        throw badData(`${name} header: ${(error as Error).message}`);
      }
    });
  let message = raw;
  let recipients = envelopeTo;
  if (recipients.length === 0 || options.headerRecipients === true) {
    recipients = [...envelopeTo, ...listOf("To"), ...listOf("Cc"), ...listOf("Bcc")];
    message = removeHeaders(parsed, "Bcc");
  } else if (options.alwaysRemoveBcc === true) {
    message = removeHeaders(parsed, "Bcc");
  }
  const sender = envelopeFrom ?? listOf("Sender")[0] ?? listOf("From")[0];
  if (sender === undefined) throw new UsageError("no sender: give --from, or a From header in the message");
  if (recipients.length === 0)
    throw new UsageError("no recipient: give --to, or To/Cc/Bcc headers in the message");
  const messageId = headerValues(parsed, "Message-ID")[0];
  return {
    from: envelopePath(sender, "--from"),
    recipients: recipients.map((r) => envelopePath(r, "--to")),
    message,
    messageId,
    eightBit: message.some((byte) => byte >= 0x80),
  };
}
