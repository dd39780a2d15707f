/**
 * Mailpit's tag endpoints: GET /api/v1/tags (every tag in use), PUT /api/v1/tags (set the tags of
 * messages), PUT /api/v1/tags/{Tag} (rename) and DELETE /api/v1/tags/{Tag} (take it off every
 * message). Names are cleaned as Mailpit cleans them (src/store/tags.ts).
 */
import { cleanTag } from "../store/tags.ts";
import type { MessageStore } from "../store/types.ts";
import { idsOf, objectBody, stringList } from "./message-routes.ts";
import { badRequest, HttpError, HttpStatus, json, ok, readJson } from "./responses.ts";
import type { Router } from "./router.ts";

export function registerTagRoutes(router: Router, store: MessageStore): void {
  router
    .on("GET", "/api/v1/tags", async () => json((await store.tags()).map((count) => count.tag)))
    .on("PUT", "/api/v1/tags", async ({ request }) => {
      const body = objectBody(await readJson(request));
      const ids = idsOf(body) ?? [];
      await store.setTags(ids, stringList(body?.Tags, "Tags") ?? []);
      return ok();
    })
    .on("PUT", "/api/v1/tags/:tag", async ({ request, params }) => {
      const name = objectBody(await readJson(request))?.Name;
      if (typeof name !== "string") throw badRequest('the body must be {"Name": "new name"}');
      const cleaned = cleanTag(name);
      if (cleaned === "") throw badRequest("the new name has no letter, digit, '-', '.', '_' or space");
      if ((await store.renameTag(params.tag ?? "", cleaned)) === 0) throw noSuchTag(params.tag);
      return ok();
    })
    .on("DELETE", "/api/v1/tags/:tag", async ({ params }) => {
      if ((await store.deleteTag(params.tag ?? "")) === 0) throw noSuchTag(params.tag);
      return ok();
    });
}

function noSuchTag(tag: string | undefined): HttpError {
  return new HttpError(HttpStatus.notFound, `no message is tagged ${JSON.stringify(tag ?? "")}`);
}
