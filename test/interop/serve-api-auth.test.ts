// --http-auth-file with a file made by Apache's htpasswd (bcrypt and Apache MD5 users), and
// --http-tls with the test CA's certificate: swaks delivers over SMTP, mailpit-api reads over
// HTTPS with a user of the file, and a request without credentials gets 401.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { MailpitClient } from "mailpit-api";
import { createTestPki, type PemFiles, type TestPki, writePemFiles } from "../helpers/certs.ts";
import { LOOPBACK } from "./peers/ports.ts";
import { requirePeer } from "./peers/require-peer.ts";
import { runSwaks } from "./peers/swaks.ts";
import { queuedIds, type ServeProcess, startServe } from "./serve-process.ts";

let pki: TestPki;
let pem: PemFiles;
let serve: ServeProcess;

function htpasswd(...args: string[]): void {
  const run = Bun.spawnSync([requirePeer("htpasswd"), ...args], { stderr: "pipe" });
  if (run.exitCode !== 0) throw new Error(`htpasswd ${args[0]} failed: ${run.stderr.toString()}`);
}

beforeAll(async () => {
  pki = await createTestPki();
  pem = await writePemFiles({ "server.pem": pki.server.cert, "server-key.pem": pki.server.key });
  const users = join(pem.dir, "api.htpasswd");
  htpasswd("-cbB", users, "ann", "Ann's pw");
  htpasswd("-bm", users, "bob", "bob pw ✓");
  serve = await startServe({
    memory: true,
    args: [
      ["--tls-cert", pem.paths["server.pem"] ?? ""],
      ["--tls-key", pem.paths["server-key.pem"] ?? ""],
      ["--http-tls", "--http-auth-file", users],
    ].flat(),
  });
});

afterAll(async () => {
  await serve?.close();
  await pem?.remove();
});

test("the API is HTTPS and asks for a user of the htpasswd file", async () => {
  const apiUrl = serve.apiUrl ?? "";
  expect(apiUrl).toStartWith("https://");
  const sent = await runSwaks(["--server", `${LOOPBACK}:${serve.port}`, "--to", "ops@example.com"]);
  expect(sent.exitCode).toBe(0);
  const [id] = queuedIds(sent.transcript);
  const fetchOptions = { tls: { ca: pki.ca.cert } };
  // Bun's fetch takes `tls`; the client passes its fetch options through but its types do not know it.
  const ann = new MailpitClient(apiUrl, {
    auth: { username: "ann", password: "Ann's pw" },
    fetchOptions: fetchOptions as RequestInit,
  });
  expect((await ann.listMessages()).messages.map((message) => message.ID)).toEqual([id ?? ""]);
  const bob = `Basic ${Buffer.from("bob:bob pw ✓").toString("base64")}`;
  const asBob = await fetch(`${apiUrl}/api/v1/message/${id}`, {
    ...fetchOptions,
    headers: { Authorization: bob },
  });
  expect(asBob.status).toBe(200);
  const anonymous = await fetch(`${apiUrl}/api/v1/messages`, fetchOptions);
  expect(anonymous.status).toBe(401);
});
