import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { MailpitClient } from "mailpit-api";
import { linksOf } from "../../src/http/link-check.ts";
import { type HttpApi, startHttpApi } from "../../src/http/start-http-api.ts";
import { openStore } from "../../src/store/open-store.ts";
import type { MessageStore } from "../../src/store/types.ts";

describe("linksOf", () => {
  test("href and src values, then URLs in the text; entities decoded, repeats and other schemes dropped", () => {
    const html = `<a href="https://example.com/a?x=1&amp;y=2">a</a> <img src='http://img.example.com/logo.png'>
      <a href="mailto:ann@example.com">mail</a> <a HREF = "https://example.com/a?x=1&amp;y=2">again</a>
      <a href="/relative">rel</a> <a href="https://example.com/q?s=&amp;lt;b&amp;gt;">escaped</a>`;
    const text = "See https://example.com/b, or (https://example.com/c). Also https://example.com/a?x=1&y=2!";
    expect(linksOf(html, text)).toEqual([
      "https://example.com/a?x=1&y=2",
      "http://img.example.com/logo.png",
      // An escaped entity stays escaped once: "&amp;lt;" is the text "&lt;", not "<".
      "https://example.com/q?s=&lt;b&gt;",
      "https://example.com/b",
      "https://example.com/c",
    ]);
  });
});

describe("GET /api/v1/message/{ID}/link-check through mailpit-api", () => {
  let target: ReturnType<typeof Bun.serve>;
  let closedPort: number;
  let store: MessageStore;
  let api: HttpApi;
  let client: MailpitClient;

  beforeAll(async () => {
    target = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(request) {
        const path = new URL(request.url).pathname;
        if (path === "/ok") return new Response("fine");
        if (path === "/moved") return Response.redirect("/ok", 301);
        if (path === "/gone") return Response.redirect("/missing", 302);
        // Refuses HEAD, as some servers do: the check must try GET.
        if (path === "/get-only")
          return request.method === "HEAD" ? new Response(null, { status: 405 }) : new Response("ok");
        return new Response("no", { status: 404 });
      },
    });
    const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
    closedPort = probe.port ?? 0;
    await probe.stop(true);
    store = openStore({ path: ":memory:" });
    api = await startHttpApi({ port: 0, store, version: "0.0.0-test" });
    client = new MailpitClient(api.url);
  });

  afterAll(async () => {
    await api.close();
    store.close();
    await target.stop(true);
  });

  test("each link's status; redirects as they are, or followed with follow=true", async () => {
    const base = `http://127.0.0.1:${target.port}`;
    const { ID } = await client.sendMessage({
      From: { Email: "app@example.com" },
      To: [{ Email: "ann@example.com" }],
      HTML: `<a href="${base}/ok">ok</a> <a href="${base}/moved">moved</a> <img src="${base}/missing.png">
        <a href="${base}/get-only">get</a> <a href="http://127.0.0.1:${closedPort}/down">down</a>`,
      Text: `Or ${base}/gone.`,
    });
    const plain = await client.linkCheck(ID);
    expect(plain.Links.map((link) => [link.URL.replace(base, ""), link.StatusCode])).toEqual([
      ["/ok", 200],
      ["/moved", 301],
      ["/missing.png", 404],
      ["/get-only", 200],
      [`http://127.0.0.1:${closedPort}/down`, 0],
      ["/gone", 302],
    ]);
    expect(plain.Links[0]?.Status).toBe("OK");
    expect(plain.Links[4]?.Status).not.toBe("");
    expect(plain.Errors).toBe(2);
    const followed = await client.linkCheck(ID, true);
    expect(followed.Links.map((link) => link.StatusCode)).toEqual([200, 200, 404, 200, 0, 404]);
    expect(followed.Errors).toBe(3);
  });
});
