import { describe, expect, test } from "bun:test";
import { HttpError } from "../../src/http/responses.ts";
import { Router } from "../../src/http/router.ts";

function router() {
  return new Router()
    .on("GET", "/api/v1/message/:id", ({ params }) => new Response(`get ${params.id}`))
    .on(
      "GET",
      "/api/v1/message/:id/part/:partId",
      ({ params }) => new Response(`${params.id}/${params.partId}`),
    )
    .on("DELETE", "/api/v1/messages", () => new Response("deleted"))
    .on("GET", "/api/v1/messages", () => new Response("list"));
}

const call = async (method: string, path: string) =>
  (await router().handle(new Request(`http://localhost${path}`, { method }))).text();

function thrown(method: string, path: string): HttpError {
  try {
    router().handle(new Request(`http://localhost${path}`, { method }));
  } catch (error) {
    if (error instanceof HttpError) return error;
  }
  throw new Error("expected an HttpError");
}

describe("Router", () => {
  test("matches literal segments and decodes parameters", async () => {
    expect(await call("GET", "/api/v1/message/abc")).toBe("get abc");
    expect(await call("GET", "/api/v1/message/a%20b/part/1.2")).toBe("a b/1.2");
    expect(await call("GET", "/api/v1/messages/")).toBe("list");
    expect(await call("HEAD", "/api/v1/messages")).toBe("list");
  });

  test("an unknown path is 404", () => {
    expect(thrown("GET", "/api/v1/message").status).toBe(404);
    expect(thrown("GET", "/api/v1/message/a/b").status).toBe(404);
    expect(thrown("GET", "/api/v1/message/%E0%A4%A").status).toBe(404);
  });

  test("a known path with another method is 405 with Allow", () => {
    const error = thrown("PATCH", "/api/v1/messages");
    expect(error.status).toBe(405);
    expect(error.headers).toEqual({ Allow: "DELETE, GET" });
  });
});
