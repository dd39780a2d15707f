import { parseMessage } from "../store/parse-message.ts";
import {
  type MessageSelection,
  type MessageStore,
  type MessageSummary,
  SearchQueryError,
} from "../store/types.ts";
import { checkLinks, linksOf } from "./link-check.ts";
import { type MailpitMessage, toMailpitHeaders, toMailpitMessage, toMailpitPage } from "./mailpit-json.ts";
import { badRequest, HttpError, HttpStatus, json, ok, readJson } from "./responses.ts";
import type { RouteRequest, Router } from "./router.ts";

/** Mailpit's default page size for /messages and /search. */
export const DEFAULT_PAGE_LIMIT = 50;

/** Mailpit's message endpoints: listing, search, one message, its source, headers and parts. */
export function registerMessageRoutes(router: Router, store: MessageStore): void {
  router
    .on("GET", "/api/v1/messages", async ({ url }) => {
      const { start, limit } = paging(url);
      return json(toMailpitPage(await store.list({ start, limit }), await tagNames(store)));
    })
    .on("DELETE", "/api/v1/messages", async ({ request }) => {
      const body = objectBody(await readJson(request));
      const ids = idsOf(body);
      // Mailpit: no IDs means every message.
      await store.delete(ids && ids.length > 0 ? { ids } : { all: true });
      // Mailpit answers "ok", MailHog nothing, and MailHog's clients parse what they get as JSON.
      // Theirs (Node's http, Go's net/http) send no Accept header; fetch, curl and browsers do.
      return request.headers.has("accept") ? ok() : new Response(null);
    })
    .on("PUT", "/api/v1/messages", async ({ request, url }) => {
      const body = objectBody(await readJson(request));
      const ids = idsOf(body);
      const search = body?.Search;
      const read = body?.Read ?? false;
      if (typeof read !== "boolean") throw badRequest("Read must be true or false");
      if (search !== undefined && typeof search !== "string") throw badRequest("Search must be a string");
      if (ids && ids.length > 0 && search)
        throw badRequest("You may specify either IDs or a search query, not both");
      const tz = url.searchParams.get("tz") ?? undefined;
      const selection: MessageSelection = search
        ? { query: search, tz }
        : ids && ids.length > 0
          ? { ids }
          : { all: true };
      await searching(() => store.markRead(selection, read));
      return ok();
    })
    .on("GET", "/api/v1/search", async ({ url }) => {
      const query = requiredQuery(url);
      const { start, limit } = paging(url);
      const tz = url.searchParams.get("tz") ?? undefined;
      const page = await searching(() => store.search(query, { start, limit, tz }));
      return json(toMailpitPage(page, await tagNames(store)));
    })
    .on("DELETE", "/api/v1/search", async ({ url }) => {
      const query = requiredQuery(url);
      const tz = url.searchParams.get("tz") ?? undefined;
      await searching(() => store.delete({ query, tz }));
      return ok();
    })
    .on("GET", "/api/v1/message/:id", async (route) => {
      const summary = await messageSummary(store, route);
      const message = await mailpitMessageOf(store, summary);
      // Mailpit marks a message read when its summary is fetched.
      await store.markRead({ ids: [summary.id] }, true);
      return json(message);
    })
    .on("GET", "/api/v1/message/:id/raw", async (route) => {
      const id = (await messageSummary(store, route)).id;
      const headers: Record<string, string> = { "Content-Type": "text/plain; charset=utf-8" };
      if (route.url.searchParams.get("dl") === "1")
        headers["Content-Disposition"] = `attachment; filename="${id}.eml"`;
      return new Response(await rawMessage(store, id), { headers });
    })
    .on("GET", "/api/v1/message/:id/headers", async (route) => {
      const id = (await messageSummary(store, route)).id;
      return json(toMailpitHeaders(await rawMessage(store, id)));
    })
    .on("GET", "/api/v1/message/:id/link-check", async (route) => {
      const id = (await messageSummary(store, route)).id;
      const parsed = await parseMessage(await rawMessage(store, id));
      const follow = route.url.searchParams.get("follow") === "true";
      return json(await checkLinks(linksOf(parsed.html, parsed.text), follow));
    })
    .on("GET", "/api/v1/message/:id/part/:partId", async (route) => {
      const id = (await messageSummary(store, route)).id;
      const parsed = await parseMessage(await rawMessage(store, id));
      const part = parsed.parts.find((candidate) => candidate.partId === route.params.partId);
      if (!part) throw new HttpError(HttpStatus.notFound, "part not found");
      return new Response(part.content, {
        headers: partHeaders(part.contentType, part.fileName || part.contentId),
      });
    });
}

async function tagNames(store: MessageStore): Promise<string[]> {
  return (await store.tags()).map((count) => count.tag);
}

/** The full Mailpit Message for a stored message: its MIME structure parsed now, not at arrival. */
export async function mailpitMessageOf(
  store: MessageStore,
  summary: MessageSummary,
): Promise<MailpitMessage> {
  const raw = await rawMessage(store, summary.id);
  return toMailpitMessage(summary, await parseMessage(raw), raw);
}

/**
 * Mailpit's rule: types a browser would render as a page (HTML, XML, SVG) are sent as downloads,
 * so an attachment cannot run script in the API's origin.
 */
const ACTIVE_TYPES = new Set([
  "text/html",
  "text/xml",
  "application/xhtml+xml",
  "image/svg+xml",
  "application/xml",
  "text/xsl",
]);

function partHeaders(contentType: string, fileName: string): Record<string, string> {
  const active = ACTIVE_TYPES.has((contentType.split(";")[0] ?? "").trim().toLowerCase());
  return {
    "Content-Type": active ? "application/octet-stream" : contentType,
    "Content-Disposition": `${active ? "attachment" : "inline"}; filename="${encodeURIComponent(fileName)}"`,
  };
}

/** The message the route names; `latest` is the newest, or the newest matching `?query=`. */
export async function messageSummary(store: MessageStore, { params, url }: RouteRequest) {
  const id = params.id ?? "";
  const summary =
    id === "latest"
      ? await searching(() =>
          store.latest(url.searchParams.get("query") ?? undefined, url.searchParams.get("tz") ?? undefined),
        )
      : await store.get(id);
  if (!summary) throw new HttpError(HttpStatus.notFound, "message not found");
  return summary;
}

export async function rawMessage(store: MessageStore, id: string): Promise<Uint8Array> {
  const raw = await store.raw(id);
  if (!raw) throw new HttpError(HttpStatus.notFound, "message not found");
  return raw;
}

/** `start` (default 0) and `limit` (default 50; Mailpit treats 0 as the default too). */
export function paging(url: URL): { start: number; limit: number } {
  const start = integerParam(url, "start") ?? 0;
  const limit = integerParam(url, "limit") ?? 0;
  if (start < 0) throw badRequest("start must not be negative");
  if (limit < 0) throw badRequest("limit must not be negative");
  return { start, limit: limit === 0 ? DEFAULT_PAGE_LIMIT : limit };
}

function integerParam(url: URL, name: string): number | undefined {
  const text = url.searchParams.get(name);
  if (text === null || text === "") return undefined;
  if (!/^-?\d+$/.test(text)) throw badRequest(`${name} must be a whole number`);
  return Number(text);
}

function requiredQuery(url: URL): string {
  const query = (url.searchParams.get("query") ?? "").trim();
  if (query.length === 0) throw badRequest("Error: no search query");
  return query;
}

/** Runs a store call whose query may be malformed, turning that into a 400. */
export async function searching<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof SearchQueryError) throw badRequest(error.message);
    throw error;
  }
}

export function objectBody(body: unknown): Record<string, unknown> | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body !== "object" || Array.isArray(body))
    throw badRequest("the request body must be a JSON object");
  return body as Record<string, unknown>;
}

export function idsOf(body: Record<string, unknown> | undefined): string[] | undefined {
  return stringList(body?.IDs, "IDs");
}

/** A request field that must be a list of strings; undefined when absent (or null). */
export function stringList(value: unknown, field: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((entry) => typeof entry === "string"))
    throw badRequest(`${field} must be an array of strings`);
  return value;
}
