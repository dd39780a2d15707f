/** The one line `serve` prints per message: time, from, to, subject, size (or a JSON object). */
import { decodeEncodedWords } from "../mime/encoded-word.ts";
import { headerValue, splitMessage } from "../mime/headers.ts";
import type { StagedMessage, StoredEnvelope } from "../store/types.ts";

function humanSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * A subject is the sender's to choose, and encoded-words can carry any character: CR/LF would
 * forge log lines and ESC would drive the operator's terminal. Whitespace controls become spaces,
 * other C0/C1 controls and DEL "?".
 */
function printable(text: string): string {
  return text.replace(/[\t\r\n]/g, " ").replace(/[\u0000-\u001f\u007f-\u009f]/g, "?");
}

/** `raw` is the message, or for one kept on disk its size and header section. */
export function messageLogLine(
  id: string,
  raw: Uint8Array | StagedMessage,
  envelope: StoredEnvelope,
  at: Date,
  json: boolean,
): string {
  const header = raw instanceof Uint8Array ? raw : raw.header;
  const size = raw instanceof Uint8Array ? raw.length : raw.size;
  const subject = decodeEncodedWords(headerValue(splitMessage(header), "Subject") ?? "");
  if (json) {
    // JSON escapes C0 controls itself; DEL and C1 are escaped too, so the value stays exact.
    return JSON.stringify({
      time: at.toISOString(),
      id,
      from: envelope.mailFrom,
      to: envelope.rcptTo,
      subject,
      size,
      client: envelope.clientAddress,
    }).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  }
  const time = at.toISOString().replace("T", " ").slice(0, 19);
  const from = printable(envelope.mailFrom) || "<>";
  const to = printable(envelope.rcptTo.join(", "));
  return `${time}  ${from} -> ${to}  "${printable(subject)}"  ${humanSize(size)}  ${id}`;
}
