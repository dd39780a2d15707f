import { dlopen, FFIType, ptr } from "bun:ffi";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import type { Connection } from "../../src/net/connection.ts";
import { createResolver } from "../../src/net/dns.ts";
import { type Listener, listen } from "../../src/net/listener.ts";
import { NetError } from "../../src/net/net-error.ts";
import { type ConnectOptions, connect } from "../../src/net/tcp-client.ts";
import { createTestPki, type PemPair, type TestPki } from "../helpers/certs.ts";
import { type DnsResponder, startDnsResponder } from "../helpers/dns-responder.ts";

let pki: TestPki;
let dns: DnsResponder;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  dns = await startDnsResponder({
    "mx.local.test": { a: ["127.0.0.1"] },
    // 127.0.0.3 has nothing listening (listeners bind 127.0.0.1), so the first address is refused.
    "two.local.test": { a: ["127.0.0.3", "127.0.0.1"] },
  });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await dns.close();
});

/** A listener that answers each connection with a greeting and echoes lines. */
async function echoServer(tls?: PemPair): Promise<{ listener: Listener; accepted: Connection[] }> {
  const accepted: Connection[] = [];
  const listener = await listen({
    host: "127.0.0.1",
    port: 0,
    tls,
    onConnection: (connection) => {
      accepted.push(connection);
      connection.onData((chunk) => connection.write(chunk));
      connection.write("220 echo\r\n");
    },
  });
  cleanups.push(() => listener.close({ force: true }));
  return { listener, accepted };
}

async function open(options: ConnectOptions): Promise<Connection> {
  const connection = await connect(options);
  cleanups.push(() => connection.destroy());
  return connection;
}

async function failure(options: ConnectOptions): Promise<NetError> {
  try {
    const connection = await connect(options);
    connection.destroy();
  } catch (error) {
    if (error instanceof NetError) return error;
    throw error;
  }
  throw new Error("expected connect to fail");
}

function firstChunk(connection: Connection): Promise<string> {
  return new Promise((resolve) =>
    connection.onData((chunk) => resolve(Buffer.from(chunk).toString("latin1"))),
  );
}

/**
 * A listening socket that never accepts, with a backlog of 0: once one connection waits in the
 * accept queue, Linux drops further SYNs, so a connect times out without leaving loopback.
 * node:net always accepts, hence libc through bun:ffi.
 */
function fullBacklogListener(): { port: number; close(): void } {
  const libc = dlopen("libc.so.6", {
    socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
    listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
  });
  const AF_INET = 2;
  const SOCK_STREAM = 1;
  const fd = libc.symbols.socket(AF_INET, SOCK_STREAM, 0);
  const address = new Uint8Array(16);
  const view = new DataView(address.buffer);
  view.setUint16(0, AF_INET, true);
  address.set([127, 0, 0, 1], 4);
  const length = new Uint32Array([address.length]);
  if (
    fd < 0 ||
    libc.symbols.bind(fd, ptr(address), address.length) !== 0 ||
    libc.symbols.listen(fd, 0) !== 0 ||
    libc.symbols.getsockname(fd, ptr(address), ptr(length)) !== 0
  ) {
    throw new Error("could not open a raw listening socket");
  }
  return {
    port: view.getUint16(2, false),
    close: () => {
      libc.symbols.close(fd);
      libc.close();
    },
  };
}

describe("connect errors", () => {
  test("nothing listening: refused", async () => {
    const { listener } = await echoServer();
    const port = listener.port;
    await listener.close({ force: true });
    const error = await failure({ host: "127.0.0.1", port, timeoutMs: 5_000 });
    expect(error.kind).toBe("refused");
    expect(error.code).toBe("ECONNREFUSED");
    expect(error.temporary).toBe(true);
    expect(error.message).toBe(`connection to 127.0.0.1:${port} refused`);
  });

  test("SYNs unanswered: timeout", async () => {
    const blackhole = fullBacklogListener();
    cleanups.push(() => blackhole.close());
    const waiting: Connection[] = [];
    // Fill the accept queue; these connects complete in the kernel.
    for (let i = 0; i < 2; i++) {
      try {
        waiting.push(await connect({ host: "127.0.0.1", port: blackhole.port, timeoutMs: 300 }));
      } catch {
        // Already full: fine.
      }
    }
    cleanups.push(() => {
      for (const connection of waiting) connection.destroy();
    });
    const error = await failure({ host: "127.0.0.1", port: blackhole.port, timeoutMs: 300 });
    expect(error.kind).toBe("timeout");
    expect(error.message).toBe(`connection to 127.0.0.1:${blackhole.port} timed out after 300 ms`);
  });

  test("a server that never answers the TLS handshake: timeout", async () => {
    const silent = await listen({ host: "127.0.0.1", port: 0, onConnection: (c) => c.onData(() => {}) });
    cleanups.push(() => silent.close({ force: true }));
    const error = await failure({
      host: "127.0.0.1",
      port: silent.port,
      timeoutMs: 200,
      tls: { ca: pki.ca.cert },
    });
    expect(error.kind).toBe("timeout");
    expect(error.message).toContain("TLS handshake");
  });

  test("a plain server where TLS was expected: tls-handshake", async () => {
    const { listener } = await echoServer();
    const error = await failure({ host: "127.0.0.1", port: listener.port, timeoutMs: 5_000, tls: {} });
    expect(error.kind).toBe("tls-handshake");
  });

  test("a name the resolver does not know: dns", async () => {
    const error = await failure({
      host: "nowhere.local.test",
      port: 25,
      timeoutMs: 5_000,
      resolver: createResolver(dns.server, 2_000),
    });
    expect(error.kind).toBe("dns");
    expect(error.message).toContain("nowhere.local.test");
  });
});

describe("plain connect", () => {
  test("by address, then echo", async () => {
    const { listener } = await echoServer();
    const connection = await open({ host: "127.0.0.1", port: listener.port });
    expect(await firstChunk(connection)).toBe("220 echo\r\n");
    expect(connection.remotePort).toBe(listener.port);
    expect(connection.tls).toBeUndefined();
  });

  test("by name through the resolver, trying addresses in order", async () => {
    const { listener } = await echoServer();
    const resolver = createResolver(dns.server, 2_000);
    const connection = await open({
      host: "two.local.test",
      port: listener.port,
      timeoutMs: 5_000,
      resolver,
    });
    expect(connection.remoteAddress).toBe("127.0.0.1");
    expect(await firstChunk(connection)).toBe("220 echo\r\n");
    expect(dns.queries.some((query) => query.name === "two.local.test" && query.type === "A")).toBe(true);
  });

  test("over IPv6 loopback when the machine has it", async () => {
    let listener: Listener;
    try {
      listener = await listen({ host: "::1", port: 0, onConnection: (c) => c.write("220 six\r\n") });
    } catch {
      // No IPv6 on this machine: the IPv4 tests cover the same code.
      expect(true).toBe(true);
      return;
    }
    cleanups.push(() => listener.close({ force: true }));
    const connection = await open({ host: "::1", port: listener.port });
    expect(connection.family).toBe(6);
    expect(connection.remoteAddress).toBe("::1");
    expect(await firstChunk(connection)).toBe("220 six\r\n");
  });
});

describe("implicit TLS", () => {
  test("verifies the chain and the name, then echoes", async () => {
    const { listener, accepted } = await echoServer(pki.server);
    const connection = await open({
      host: "localhost",
      port: listener.port,
      family: 4,
      tls: { ca: pki.ca.cert },
    });
    const info = connection.tls;
    expect(info?.authorized).toBe(true);
    expect(info?.nameMatches).toBe(true);
    expect(info?.servername).toBe("localhost");
    expect(info?.chain.map((certificate) => certificate.subject)).toEqual([
      "CN=localhost",
      "CN=smtpkit test CA, O=smtpkit tests",
    ]);
    expect(await firstChunk(connection)).toBe("220 echo\r\n");
    expect(accepted[0]?.tls?.servername).toBe("localhost");
  });

  test("an IP address is checked against the IP SANs and not sent as SNI", async () => {
    const { listener, accepted } = await echoServer(pki.server);
    const connection = await open({ host: "127.0.0.1", port: listener.port, tls: { ca: pki.ca.cert } });
    expect(connection.tls?.authorized).toBe(true);
    expect(connection.tls?.servername).toBe("127.0.0.1");
    await firstChunk(connection);
    expect(accepted[0]?.tls?.servername).toBeUndefined();
  });

  test("servername overrides the host for SNI and the name check", async () => {
    const { listener, accepted } = await echoServer(pki.wrongName);
    const connection = await open({
      host: "127.0.0.1",
      port: listener.port,
      tls: { ca: pki.ca.cert, servername: "mx.other.test" },
    });
    expect(connection.tls?.authorized).toBe(true);
    await firstChunk(connection);
    expect(accepted[0]?.tls?.servername).toBe("mx.other.test");
  });

  const failures: [string, keyof TestPki, RegExp][] = [
    ["an unknown CA", "unknownCa", /unable to verify|issuer/],
    ["a wrong name", "wrongName", /localhost/],
    ["an expired certificate", "expired", /expired/],
  ];

  for (const [what, which, reason] of failures) {
    test(`${what}: tls-verify, a permanent error`, async () => {
      const certificate = pki[which];
      if (!("key" in certificate)) throw new Error("not a certificate");
      const { listener } = await echoServer(certificate);
      const error = await failure({
        host: "localhost",
        port: listener.port,
        family: 4,
        timeoutMs: 5_000,
        tls: { ca: pki.ca.cert },
      });
      expect(error.kind).toBe("tls-verify");
      expect(error.temporary).toBe(false);
      expect(error.message).toMatch(reason);
      expect(error.message).not.toContain("\n");
    });

    test(`${what} in insecure mode: connects and says why it is not authorized`, async () => {
      const certificate = pki[which];
      if (!("key" in certificate)) throw new Error("not a certificate");
      const { listener } = await echoServer(certificate);
      const connection = await open({
        host: "localhost",
        port: listener.port,
        family: 4,
        tls: { ca: pki.ca.cert, insecure: true },
      });
      expect(connection.tls?.authorized).toBe(false);
      expect(connection.tls?.authorizationError).toMatch(reason);
      expect(connection.tls?.chain.length).toBeGreaterThan(0);
      expect(await firstChunk(connection)).toBe("220 echo\r\n");
    });
  }

  test("a pinned fingerprint: that certificate is trusted, though no CA given vouches for it", async () => {
    const { listener } = await echoServer(pki.unknownCa);
    const fingerprint = new X509Certificate(pki.unknownCa.cert).fingerprint256;
    const connection = await open({
      host: "localhost",
      port: listener.port,
      family: 4,
      tls: { fingerprint },
    });
    expect(connection.tls?.pinned).toBe(true);
    expect(connection.tls?.authorized).toBe(false);
    expect(await firstChunk(connection)).toBe("220 echo\r\n");
  });

  test("a pinned fingerprint: any other certificate is refused, even one that verifies", async () => {
    const { listener } = await echoServer(pki.server);
    const other = new X509Certificate(pki.unknownCa.cert).fingerprint256;
    const error = await failure({
      host: "localhost",
      port: listener.port,
      family: 4,
      timeoutMs: 5_000,
      tls: { ca: pki.ca.cert, fingerprint: other },
    });
    expect(error.kind).toBe("tls-verify");
    expect(error.code).toBe("ERR_TLS_CERT_FINGERPRINT");
    expect(error.message).toContain(
      `the certificate is not the pinned one: its SHA-256 fingerprint is ${new X509Certificate(pki.server.cert).fingerprint256}`,
    );
  });

  test("the tls-verify code is that of the reason given: the chain's before the name's", async () => {
    const expiredWrongName = await pki.ca.issue({
      commonName: "mx.other.test",
      notBefore: new Date(Date.now() - 30 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const options = { host: "localhost", port: 0, family: 4 as const, tls: { ca: pki.ca.cert } };
    const both = await failure({ ...options, port: (await echoServer(expiredWrongName)).listener.port });
    expect(both.code).toBe("CERT_HAS_EXPIRED");
    expect(both.message).toMatch(/expired/);
    const name = await failure({ ...options, port: (await echoServer(pki.wrongName)).listener.port });
    expect(name.code).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
  });

  test("a wrong name is reported as nameMatches=false", async () => {
    const { listener } = await echoServer(pki.wrongName);
    const connection = await open({
      host: "localhost",
      port: listener.port,
      family: 4,
      tls: { ca: pki.ca.cert, insecure: true },
    });
    expect(connection.tls?.nameMatches).toBe(false);
    expect(connection.tls?.chain[0]?.subjectAltNames).toEqual(["DNS:mx.other.test"]);
  });

  test("an expired certificate's dates are in the chain", async () => {
    const { listener } = await echoServer(pki.expired);
    const connection = await open({
      host: "localhost",
      port: listener.port,
      family: 4,
      tls: { ca: pki.ca.cert, insecure: true },
    });
    const leaf = connection.tls?.chain[0];
    expect(leaf?.notAfter.getTime()).toBeLessThan(Date.now());
    expect(leaf?.notBefore.getTime()).toBeLessThan(leaf?.notAfter.getTime() ?? 0);
  });
});
