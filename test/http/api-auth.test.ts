import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import mailhog from "mailhog";
import { MailpitClient } from "mailpit-api";
import { parseHtpasswd } from "../../src/http/htpasswd.ts";
import { type HttpApi, startHttpApi } from "../../src/http/start-http-api.ts";
import { openStore } from "../../src/store/open-store.ts";
import type { MessageStore } from "../../src/store/types.ts";
import { createTestPki, type TestPki } from "../helpers/certs.ts";

// --http-auth-file and --http-tls, with the API's real clients (mailpit-api, mailhog) as users.

const USERS = parseHtpasswd(
  [
    "ann:$2y$05$kZcbjZ.fU76Iwrt.rFJAreK3RqiuNeZ3wXX5x9ztgrN/t4brD8yd.",
    "cid:{SHA}zS0S9kqB4FMhpTawEdnivgS+plA=",
  ].join("\n"),
  "users",
);
const ANN = { username: "ann", password: "Ann pw ✓" };

let store: MessageStore;
let api: HttpApi;
let secure: HttpApi;
let pki: TestPki;

beforeAll(async () => {
  store = openStore({ path: ":memory:" });
  await store.add(new TextEncoder().encode("Subject: hello\r\n\r\nhi\r\n"), {
    mailFrom: "a@example.com",
    rcptTo: ["b@example.com"],
    mailParams: {},
    rcptParams: [{}],
    clientAddress: "127.0.0.1",
  });
  pki = await createTestPki();
  api = await startHttpApi({ port: 0, store, version: "test", users: USERS });
  secure = await startHttpApi({ port: 0, store, version: "test", users: USERS, tls: pki.server });
});

afterAll(async () => {
  await api.close();
  await secure.close();
  store.close();
});

describe("--http-auth-file", () => {
  test("without credentials: 401 with a Basic challenge and a JSON error", async () => {
    const response = await fetch(`${api.url}api/v1/messages`);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe('Basic realm="smtpkit", charset="UTF-8"');
    expect(await response.json()).toEqual({
      Error: "authentication required: give a user and password of --http-auth-file",
    });
  });

  test("health checks stay open", async () => {
    expect((await fetch(`${api.url}livez`)).status).toBe(200);
    expect((await fetch(`${api.url}readyz`)).status).toBe(200);
  });

  test("mailpit-api with a user of the file gets in; with a wrong password it gets 401", async () => {
    const client = new MailpitClient(api.url, { auth: ANN });
    expect((await client.listMessages()).messages[0]?.Subject).toBe("hello");
    const wrong = new MailpitClient(api.url, { auth: { username: "ann", password: "nope" } });
    await expect(wrong.listMessages()).rejects.toThrow(/401/);
  });

  test("the mailhog client with a user of the file gets in", async () => {
    const client = mailhog({ host: "127.0.0.1", port: api.port, auth: "cid:c1d" });
    const result = await client.messages();
    expect(result?.items[0]?.subject).toBe("hello");
  });
});

describe("--http-tls", () => {
  test("the API answers over HTTPS with the given certificate, credentials still required", async () => {
    const base = `https://localhost:${secure.port}/`;
    const fetchOptions = { tls: { ca: pki.ca.cert } };
    // Bun's fetch takes `tls`; the client passes its fetch options through but its types do not know it.
    const client = new MailpitClient(base, { auth: ANN, fetchOptions: fetchOptions as RequestInit });
    expect((await client.listMessages()).total).toBe(1);
    expect((await fetch(`${base}api/v1/messages`, fetchOptions)).status).toBe(401);
    // A client that does not trust the certificate gets no answer at all.
    await expect(fetch(`${base}livez`)).rejects.toThrow();
  });
});
