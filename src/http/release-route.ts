/**
 * Mailpit's `POST /api/v1/message/{ID}/release` ({"To": [...]}): send a caught message on to
 * the given recipients. In smtpkit it goes through the durable queue of `serve --relay`, so an
 * upstream that is down delays the mail instead of losing it. The message goes as stored, our
 * Received line included (it is a trace field of the hop that caught it).
 */
import type { MessageStore } from "../store/types.ts";
import { HttpError, HttpStatus, ok, readJson } from "./responses.ts";
import type { Router } from "./router.ts";

/**
 * Queues `raw` from `mailFrom` (the envelope sender it arrived with) to `to`; throws
 * ReleaseRefused with a message for the client when an address is unusable.
 */
export type ReleaseHook = (raw: Uint8Array, mailFrom: string, to: string[]) => Promise<string>;

export class ReleaseRefused extends Error {
  override name = "ReleaseRefused";
}

export function registerReleaseRoute(
  router: Router,
  store: MessageStore,
  release: ReleaseHook | undefined,
): void {
  router.on("POST", "/api/v1/message/:id/release", async ({ request, params }) => {
    if (!release) {
      throw new HttpError(HttpStatus.badRequest, "releasing needs a relay: start serve with --relay TARGET");
    }
    const body = await readJson(request);
    const to = (body as { To?: unknown } | null)?.To;
    if (!Array.isArray(to) || to.length === 0 || !to.every((t) => typeof t === "string" && t.trim() !== "")) {
      throw new HttpError(HttpStatus.badRequest, 'the body must be {"To": ["address", ...]}');
    }
    const id = params.id ?? "";
    // `latest` as the other message routes take it: the newest message.
    const summary = id === "latest" ? await store.latest() : await store.get(id);
    const raw = summary ? await store.raw(summary.id) : undefined;
    if (!summary || !raw) throw new HttpError(HttpStatus.notFound, "message not found");
    try {
      await release(
        raw,
        summary.envelope.mailFrom,
        to.map((t) => t.trim()),
      );
    } catch (error) {
      if (error instanceof ReleaseRefused) throw new HttpError(HttpStatus.badRequest, error.message);
      throw error;
    }
    return ok();
  });
}
