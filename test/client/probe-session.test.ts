import { afterEach, expect, test } from "bun:test";
import { SmtpClientError } from "../../src/client/errors.ts";
import { ProbeSession } from "../../src/client/probe-session.ts";
import { resolveTimeouts } from "../../src/client/timeouts.ts";
import { type ScriptedServer, scriptedServer } from "./scripted-server.ts";

let server: ScriptedServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

test("STARTTLS answered, then no handshake: startTls() rejects with a timeout at stage tls", async () => {
  server = await scriptedServer(async (p) => {
    p.send("220 mx.test ESMTP\r\n");
    expect(await p.line()).toBe("EHLO probe.test");
    p.send("250-mx.test\r\n250 STARTTLS\r\n");
    expect(await p.line()).toBe("STARTTLS");
    p.send("220 go ahead\r\n");
    await p.closed();
  });
  const { value: session } = await ProbeSession.open({
    host: "127.0.0.1",
    port: server.port,
    tls: {},
    timeouts: resolveTimeouts({ command: 200 }),
  });
  await session.greeting();
  await session.hello("probe.test");
  const error = await session.startTls().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SmtpClientError);
  expect(error).toMatchObject({ kind: "timeout", stage: "tls" });
  await server.done();
});
