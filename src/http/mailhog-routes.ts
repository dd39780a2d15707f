/**
 * MailHog's API beside Mailpit's: v2 listing and search, and the v1 routes for one message, so
 * that test suites written against MailHog move to `serve` unchanged. Where the two APIs share a
 * path (`/api/v1/messages`), Mailpit's answer stands; see message-routes.ts for DELETE.
 */
import type { MessagePage, MessageStore } from "../store/types.ts";
import { type MailHogPage, toMailHogMessage } from "./mailhog-json.ts";
import { messageSummary, paging, rawMessage, searching } from "./message-routes.ts";
import { badRequest, json } from "./responses.ts";
import type { Router } from "./router.ts";

/** MailHog's search kinds, as Mailpit search terms. */
const SEARCH_PREFIX = new Map([
  ["from", "from:"],
  ["to", "to:"],
  ["containing", ""],
]);

export function registerMailHogRoutes(router: Router, store: MessageStore): void {
  router
    .on("GET", "/api/v2/messages", async ({ url }) => {
      return json(await mailHogPage(store, await store.list(paging(url))));
    })
    .on("GET", "/api/v2/search", async ({ url }) => {
      const kind = url.searchParams.get("kind") ?? "";
      const prefix = SEARCH_PREFIX.get(kind);
      if (prefix === undefined) throw badRequest("kind must be from, to or containing");
      // Quotes keep the words together as one term; the value itself cannot hold one.
      const value = (url.searchParams.get("query") ?? "").replaceAll('"', "").trim();
      if (value === "") throw badRequest("Error: no search query");
      const page = await searching(() => store.search(`${prefix}"${value}"`, paging(url)));
      return json(await mailHogPage(store, page));
    })
    .on("GET", "/api/v1/messages/:id", async (route) => {
      const summary = await messageSummary(store, route);
      return json(toMailHogMessage(summary, await rawMessage(store, summary.id)));
    })
    .on("DELETE", "/api/v1/messages/:id", async (route) => {
      const summary = await messageSummary(store, route);
      await store.delete({ ids: [summary.id] });
      // MailHog answers with no body.
      return new Response(null);
    })
    .on("GET", "/api/v1/messages/:id/download", async (route) => {
      const summary = await messageSummary(store, route);
      return new Response(await rawMessage(store, summary.id), {
        headers: {
          "Content-Type": "message/rfc822",
          "Content-Disposition": `attachment; filename="${summary.id}.eml"`,
        },
      });
    });
}

async function mailHogPage(store: MessageStore, page: MessagePage): Promise<MailHogPage> {
  const items = [];
  for (const summary of page.messages) {
    // A message deleted since the page was read is left out rather than failing the page.
    const raw = await store.raw(summary.id);
    if (raw) items.push(toMailHogMessage(summary, raw));
  }
  return { total: page.matched, count: items.length, start: page.start, items };
}
