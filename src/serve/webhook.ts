/**
 * Mailpit's webhook (`--webhook-url`, `--webhook-limit`): each message, once durable, is announced
 * to a URL as a POST of its summary, in the shape of one entry of `GET /api/v1/messages`, so a
 * chat bot or CI job learns of new mail without polling. Beyond the limit per second, or while
 * MAX_IN_FLIGHT requests wait for a slow endpoint, messages are not announced (the mail itself is
 * stored all the same) and a warning says how many were skipped. A failing endpoint never
 * affects SMTP.
 */
import { toMailpitSummary } from "../http/mailpit-json.ts";
import type { MessageStore } from "../store/types.ts";

/** Mailpit's default limit, in requests per second. */
export const DEFAULT_WEBHOOK_LIMIT = 5;
const REQUEST_TIMEOUT_MS = 5_000;
/**
 * Requests in flight at most, whatever the limit: with no limit, a slow endpoint and a fast
 * client would otherwise pile up a request per message.
 */
const MAX_IN_FLIGHT = 20;

export interface WebhookOptions {
  url: string;
  /** Requests per second at most; 0 for no limit. */
  limit: number;
  store: MessageStore;
  userAgent: string;
  /** One line per problem, for stderr. */
  warn(line: string): void;
}

export interface Webhook {
  /** Stops announcing and waits for the requests in flight (each ends within its timeout). */
  close(): Promise<void>;
}

/** A URL for --webhook-url, or the reason it is not one. */
export function webhookUrl(text: string): URL | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `--webhook-url wants an http:// or https:// URL, not '${text}'`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    return `--webhook-url wants an http:// or https:// URL, not '${text}'`;
  return url;
}

export function startWebhook(options: WebhookOptions): Webhook {
  const inFlight = new Set<Promise<void>>();
  const limiter = new PerSecond(options.limit);
  let skipped = 0;
  let skipReport: ReturnType<typeof setTimeout> | undefined;

  const reportSkipped = () => {
    skipReport = undefined;
    if (skipped === 0) return;
    const why = `${MAX_IN_FLIGHT} requests waiting for the endpoint`;
    options.warn(
      `smtpkit: webhook: ${skipped} new message${skipped === 1 ? "" : "s"} not announced (${options.limit === 0 ? why : `over --webhook-limit ${options.limit}/s, or ${why}`})`,
    );
    skipped = 0;
  };

  const announce = async (id: string) => {
    try {
      const summary = await options.store.get(id);
      if (!summary) return; // deleted before its turn
      const response = await fetch(options.url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "User-Agent": options.userAgent },
        body: JSON.stringify(toMailpitSummary(summary)),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      await response.body?.cancel();
      if (!response.ok) options.warn(`smtpkit: webhook ${options.url} answered ${response.status} for ${id}`);
    } catch (error) {
      options.warn(`smtpkit: webhook ${options.url} failed for ${id}: ${(error as Error).message}`);
    }
  };

  const unsubscribe = options.store.onNewMessages((ids) => {
    for (const id of ids) {
      if (inFlight.size >= MAX_IN_FLIGHT || !limiter.take()) {
        skipped++;
        skipReport ??= setTimeout(reportSkipped, 1_000);
        continue;
      }
      const request = announce(id).finally(() => inFlight.delete(request));
      inFlight.add(request);
    }
  });

  return {
    async close() {
      unsubscribe();
      clearTimeout(skipReport);
      reportSkipped();
      await Promise.all(inFlight);
    },
  };
}

/** At most `limit` takes in any one-second window (0: no limit). */
class PerSecond {
  #times: number[] = [];
  constructor(readonly limit: number) {}

  take(): boolean {
    if (this.limit === 0) return true;
    const now = performance.now();
    while (this.#times.length > 0 && now - (this.#times[0] ?? 0) >= 1_000) this.#times.shift();
    if (this.#times.length >= this.limit) return false;
    this.#times.push(now);
    return true;
  }
}
