/**
 * Mailpit's /view/{ID}.html and /view/{ID}.txt: a message's HTML or text body on its own, for a
 * browser or a UI test. The ID may be `latest`, as everywhere in the API.
 */
import { htmlToText, type MessagePart, parseMessage } from "../store/parse-message.ts";
import type { MessageStore } from "../store/types.ts";
import { messageSummary, rawMessage } from "./message-routes.ts";
import { HttpError, HttpStatus } from "./responses.ts";
import type { Router } from "./router.ts";

/**
 * The HTML is the sender's: it runs in a sandbox (its own origin, no script, no forms), so mail
 * cannot act on the API in the reader's browser. Images, inline parts included, still load.
 */
const HTML_HEADERS = {
  "Content-Type": "text/html; charset=utf-8",
  "Content-Security-Policy": "sandbox",
};
const TEXT_HEADERS = { "Content-Type": "text/plain; charset=utf-8" };

export function registerViewRoutes(router: Router, store: MessageStore): void {
  router.on("GET", "/view/:file", async (route) => {
    const file = route.params.file ?? "";
    const dot = file.lastIndexOf(".");
    const kind = file.slice(dot + 1);
    if (dot <= 0 || (kind !== "html" && kind !== "txt"))
      throw new HttpError(HttpStatus.notFound, "no such view: ask for /view/{ID}.html or /view/{ID}.txt");
    const summary = await messageSummary(store, { ...route, params: { id: file.slice(0, dot) } });
    const parsed = await parseMessage(await rawMessage(store, summary.id));
    if (kind === "txt") {
      // A message with only HTML reads as its text, as Mailpit's does.
      return new Response(parsed.text || htmlToText(parsed.html), { headers: TEXT_HEADERS });
    }
    if (parsed.html === "") throw new HttpError(HttpStatus.notFound, "the message has no HTML body");
    return new Response(linkInlineParts(parsed.html, summary.id, parsed.parts), { headers: HTML_HEADERS });
  });
}

/** `cid:` references (RFC 2392) become URLs of the parts they name, so inline images show. */
function linkInlineParts(html: string, id: string, parts: readonly MessagePart[]): string {
  return html.replace(/cid:([^"'\s>)]+)/gi, (reference, contentId: string) => {
    const part = parts.find((candidate) => candidate.contentId === percentDecoded(contentId));
    return part ? `/api/v1/message/${encodeURIComponent(id)}/part/${part.partId}` : reference;
  });
}

/** RFC 2392 writes a Content-ID in a URL percent-encoded; a malformed escape is taken as written. */
function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
