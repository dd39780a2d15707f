import { parseSearchQuery } from "../store/search-query.ts";
import type { MessageStore, MessageSummary } from "../store/types.ts";
import { mailpitMessageOf, searching } from "./message-routes.ts";
import { errorResponse, HttpError, HttpStatus, json } from "./responses.ts";
import type { Router } from "./router.ts";

/** How long GET /api/v1/wait holds a request when `timeout` is not given. */
export const DEFAULT_WAIT_SECONDS = 30;
/** The longest a request may ask to be held. */
export const MAX_WAIT_SECONDS = 600;

export interface LongRequestHooks {
  /** Lifts the server's idle timeout for a request that is held open on purpose. */
  keepOpen(request: Request): void;
  /** Aborted when the API shuts down, so held requests end first. */
  closing: AbortSignal;
}

/**
 * GET /api/v1/wait?query=...&timeout=SECONDS[&since=TIME]: answers with the newest message matching
 * the query (Mailpit search syntax; empty matches any) as GET /api/v1/message/{ID} would, without
 * marking it read. A message already stored counts, so a test cannot miss one that arrived before
 * it asked; `since` (ms since the epoch or an ISO 8601 time) ignores older ones. If none arrives
 * in time: 408.
 */
export function registerWaitRoute(router: Router, store: MessageStore, hooks: LongRequestHooks): void {
  router.on("GET", "/api/v1/wait", async ({ request, url }) => {
    const query = (url.searchParams.get("query") ?? "").trim();
    const tz = url.searchParams.get("tz") ?? undefined;
    const timeoutMs = waitSeconds(url) * 1000;
    const since = sinceOf(url);
    await searching(async () => parseSearchQuery(query, tz));
    hooks.keepOpen(request);

    return new Promise<Response>((resolve) => {
      let finished = false;
      let checks: Promise<void> = Promise.resolve();
      const finish = (response: Response): void => {
        if (finished) return;
        finished = true;
        unsubscribe();
        clearTimeout(timer);
        request.signal.removeEventListener("abort", onAbort);
        hooks.closing.removeEventListener("abort", onClosing);
        resolve(response);
      };
      const check = (onlyIds?: readonly string[]): void => {
        checks = checks
          .then(async () => {
            if (finished) return;
            const page = await store.search(query, { tz, onlyIds, start: 0, limit: 1 });
            const summary: MessageSummary | undefined = page.messages[0];
            if (summary && summary.created >= since) finish(json(await mailpitMessageOf(store, summary)));
          })
          .catch((error: unknown) => {
            if (error instanceof HttpError && error.status === HttpStatus.notFound) return; // deleted meanwhile
            finish(
              errorResponse(HttpStatus.internalError, error instanceof Error ? error.message : String(error)),
            );
          });
      };
      const onAbort = () => finish(new Response(null, { status: HttpStatus.requestTimeout }));
      const onClosing = () => finish(errorResponse(HttpStatus.unavailable, "the server is shutting down"));
      // Subscribe before looking at what is stored, so nothing arriving in between is missed.
      const unsubscribe = store.onNewMessages((ids) => check(ids));
      const timer = setTimeout(
        () => finish(errorResponse(HttpStatus.requestTimeout, "no matching message arrived in time")),
        timeoutMs,
      );
      request.signal.addEventListener("abort", onAbort);
      hooks.closing.addEventListener("abort", onClosing);
      check();
    });
  });
}

function waitSeconds(url: URL): number {
  const text = url.searchParams.get("timeout");
  if (text === null || text === "") return DEFAULT_WAIT_SECONDS;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > MAX_WAIT_SECONDS) {
    throw new HttpError(
      HttpStatus.badRequest,
      `timeout must be seconds, more than 0 and at most ${MAX_WAIT_SECONDS}`,
    );
  }
  return seconds;
}

function sinceOf(url: URL): number {
  const text = url.searchParams.get("since");
  if (text === null || text === "") return Number.NEGATIVE_INFINITY;
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms))
    throw new HttpError(HttpStatus.badRequest, "since must be ms since the epoch or an ISO 8601 time");
  return ms;
}
