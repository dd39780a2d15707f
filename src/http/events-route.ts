import { parseSearchQuery } from "../store/search-query.ts";
import type { MessageStore } from "../store/types.ts";
import { toMailpitSummary } from "./mailpit-json.ts";
import { searching } from "./message-routes.ts";
import type { Router } from "./router.ts";
import type { LongRequestHooks } from "./wait-route.ts";

/** A comment line this often keeps proxies and clients from deciding the stream is dead. */
export const HEARTBEAT_MS = 15_000;
/** A client this many events behind is dropped rather than buffered without bound. */
export const MAX_QUEUED_EVENTS = 10_000;
/** The store accepts this many IDs per search. */
const IDS_PER_LOOKUP = 500;

const encoder = new TextEncoder();

/**
 * GET /api/v1/events[?query=...]: Server-Sent Events, one `new` event per arriving message (its
 * Mailpit MessageSummary as data), optionally only messages that match a search query.
 */
export function registerEventsRoute(router: Router, store: MessageStore, hooks: LongRequestHooks): void {
  router.on("GET", "/api/v1/events", async ({ request, url }) => {
    const query = (url.searchParams.get("query") ?? "").trim();
    const tz = url.searchParams.get("tz") ?? undefined;
    await searching(async () => parseSearchQuery(query, tz));
    hooks.keepOpen(request);

    let stop = (): void => {};
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        let stopped = false;
        let sending: Promise<void> = Promise.resolve();
        const send = (text: string): void => {
          if (stopped) return;
          if ((controller.desiredSize ?? 0) < -MAX_QUEUED_EVENTS) {
            stop();
            return;
          }
          controller.enqueue(encoder.encode(text));
        };
        const unsubscribe = store.onNewMessages((ids) => {
          sending = sending.then(async () => {
            for (let index = 0; index < ids.length && !stopped; index += IDS_PER_LOOKUP) {
              const chunk = ids.slice(index, index + IDS_PER_LOOKUP);
              try {
                const page = await store.search(query, { tz, onlyIds: chunk, start: 0, limit: chunk.length });
                // Search lists newest first; events go out in arrival order.
                for (const summary of page.messages.reverse()) {
                  send(`event: new\ndata: ${JSON.stringify(toMailpitSummary(summary))}\n\n`);
                }
              } catch {
                // The store closed or the messages went away: nothing to announce.
              }
            }
          });
        });
        const heartbeat = setInterval(() => send(": keep-alive\n\n"), HEARTBEAT_MS);
        stop = () => {
          if (stopped) return;
          stopped = true;
          unsubscribe();
          clearInterval(heartbeat);
          request.signal.removeEventListener("abort", stop);
          hooks.closing.removeEventListener("abort", stop);
          try {
            controller.close();
          } catch {
            // Already closed by the client going away.
          }
        };
        request.signal.addEventListener("abort", stop);
        hooks.closing.addEventListener("abort", stop);
        // Sent at once so the client sees the stream open before any message arrives.
        send(": smtpkit events\n\n");
      },
      cancel() {
        stop();
      },
    });
    return new Response(stream, {
      headers: {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        Connection: "keep-alive",
      },
    });
  });
}
