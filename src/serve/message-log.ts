/** The one line `serve` prints per message: time, from, to, subject, size (or a JSON object). */
import { decodeEncodedWords } from "../mime/encoded-word.ts";
import { headerValue, splitMessage } from "../mime/headers.ts";
import type { StoredEnvelope } from "../store/types.ts";

function humanSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function messageLogLine(
  id: string,
  raw: Uint8Array,
  envelope: StoredEnvelope,
  at: Date,
  json: boolean,
): string {
  const subject = decodeEncodedWords(headerValue(splitMessage(raw), "Subject") ?? "");
  if (json) {
    return JSON.stringify({
      time: at.toISOString(),
      id,
      from: envelope.mailFrom,
      to: envelope.rcptTo,
      subject,
      size: raw.length,
      client: envelope.clientAddress,
    });
  }
  const time = at.toISOString().replace("T", " ").slice(0, 19);
  return `${time}  ${envelope.mailFrom || "<>"} -> ${envelope.rcptTo.join(", ")}  "${subject}"  ${humanSize(raw.length)}  ${id}`;
}
