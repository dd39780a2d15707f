import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { ReleaseRefused } from "../../src/http/release-route.ts";
import { type HttpApi, startHttpApi } from "../../src/http/start-http-api.ts";
import { openStore } from "../../src/store/open-store.ts";
import type { MessageStore, StoredEnvelope } from "../../src/store/types.ts";

const RAW = new TextEncoder().encode(
  "Received: from client.test by serve.test\r\nFrom: ann@a.test\r\nTo: bob@b.test\r\nSubject: caught\r\n\r\nhello\r\n",
);

function envelope(mailFrom: string): StoredEnvelope {
  return { mailFrom, rcptTo: ["bob@b.test"], mailParams: {}, rcptParams: [{}], clientAddress: "127.0.0.1" };
}

interface Released {
  raw: string;
  mailFrom: string;
  to: string[];
}

let store: MessageStore;
let apis: HttpApi[];
let released: Released[];
let messageId: string;

beforeEach(async () => {
  store = openStore({ path: ":memory:" });
  apis = [];
  released = [];
  messageId = await store.add(RAW, envelope("ann@a.test"));
});
afterEach(async () => {
  await Promise.all(apis.map((api) => api.close()));
  store.close();
});

/** The API with a hook that records what it is asked to release (or refuses, or fails). */
async function api(
  hook: "record" | "none" | { refuse: string } | { fail: string } = "record",
): Promise<(id: string, body: string | undefined) => Promise<Response>> {
  const started = await startHttpApi({
    port: 0,
    host: "127.0.0.1",
    store,
    version: "test",
    ...(hook === "none"
      ? {}
      : {
          onRelease: async (raw: Uint8Array, mailFrom: string, to: string[]) => {
            if (typeof hook === "object" && "refuse" in hook) throw new ReleaseRefused(hook.refuse);
            if (typeof hook === "object" && "fail" in hook) throw new Error(hook.fail);
            released.push({ raw: new TextDecoder().decode(raw), mailFrom, to });
            return "QUEUEID";
          },
        }),
  });
  apis.push(started);
  return (id, body) =>
    fetch(new URL(`api/v1/message/${encodeURIComponent(id)}/release`, started.url), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      ...(body === undefined ? {} : { body }),
    });
}

async function errorOf(response: Response): Promise<{ status: number; error: string }> {
  expect(response.headers.get("content-type")).toBe("application/json");
  return { status: response.status, error: ((await response.json()) as { Error: string }).Error };
}

describe("POST /api/v1/message/{ID}/release", () => {
  test("hands the stored message, its envelope sender and the trimmed recipients to the hook; answers ok", async () => {
    const release = await api();
    const response = await release(
      messageId,
      JSON.stringify({ To: [" x@example.com ", "Y <y@example.com>"] }),
    );
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("ok");
    expect(released).toEqual([
      {
        raw: new TextDecoder().decode(RAW),
        mailFrom: "ann@a.test",
        to: ["x@example.com", "Y <y@example.com>"],
      },
    ]);
  });

  test("the null sender is passed as an empty string", async () => {
    const bounce = await store.add(RAW, envelope(""));
    const response = await (await api())(bounce, JSON.stringify({ To: ["x@example.com"] }));
    expect(response.status).toBe(200);
    expect(released.map((r) => r.mailFrom)).toEqual([""]);
  });

  test("latest names the newest message", async () => {
    const newer = new TextEncoder().encode("Subject: newer\r\n\r\nx\r\n");
    await store.add(newer, envelope("carl@c.test"));
    const response = await (await api())("latest", JSON.stringify({ To: ["x@example.com"] }));
    expect(response.status).toBe(200);
    expect(released.map((r) => [r.mailFrom, r.raw])).toEqual([
      ["carl@c.test", "Subject: newer\r\n\r\nx\r\n"],
    ]);
  });

  test("without a relay: 400, and nothing is read from the body", async () => {
    const release = await api("none");
    expect(await errorOf(await release(messageId, JSON.stringify({ To: ["x@example.com"] })))).toEqual({
      status: 400,
      error: "releasing needs a relay: start serve with --relay TARGET",
    });
    expect((await errorOf(await release(messageId, "not json"))).status).toBe(400);
  });

  test("an unknown message: 404", async () => {
    const response = await (await api())("nope", JSON.stringify({ To: ["x@example.com"] }));
    expect(await errorOf(response)).toEqual({ status: 404, error: "message not found" });
    expect(released).toEqual([]);
  });

  test.each([
    ["no body", undefined],
    ["an empty body", ""],
    ["JSON null", "null"],
    ["a string", '"x@example.com"'],
    ["a bare list", '["x@example.com"]'],
    ["no To", '{"Cc": ["x@example.com"]}'],
    ["To as a string", '{"To": "x@example.com"}'],
    ["an empty To", '{"To": []}'],
    ["a number in To", '{"To": ["x@example.com", 5]}'],
    ["a blank address", '{"To": ["x@example.com", "  "]}'],
    ["lower-case to", '{"to": ["x@example.com"]}'],
  ])("%s: 400 with the expected shape", async (_, body) => {
    const response = await (await api())(messageId, body);
    expect(await errorOf(response)).toEqual({
      status: 400,
      error: 'the body must be {"To": ["address", ...]}',
    });
    expect(released).toEqual([]);
  });

  test("malformed JSON: 400", async () => {
    const response = await (await api())(messageId, '{"To": [');
    expect(await errorOf(response)).toEqual({ status: 400, error: "the request body is not valid JSON" });
  });

  test("a refusal by the relay (address, policy) is a 400 with its reason", async () => {
    const release = await api({
      refuse: "may not relay to <y@other.org>: not in --relay-domains or --relay-to",
    });
    const response = await release(messageId, JSON.stringify({ To: ["y@other.org"] }));
    expect(await errorOf(response)).toEqual({
      status: 400,
      error: "may not relay to <y@other.org>: not in --relay-domains or --relay-to",
    });
  });

  test("any other failure (the queue is gone) is a 500, not a silent ok", async () => {
    const release = await api({ fail: "the queue is closed" });
    const response = await release(messageId, JSON.stringify({ To: ["x@example.com"] }));
    expect(await errorOf(response)).toEqual({ status: 500, error: "the queue is closed" });
  });

  test("only POST: GET is 405 with Allow", async () => {
    const release = await api();
    const url = (await release(messageId, undefined)).url;
    const response = await fetch(url);
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("POST");
  });
});
