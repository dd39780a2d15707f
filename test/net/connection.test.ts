import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { type Connection, loadTlsCode, SocketConnection, type TlsInfo } from "../../src/net/connection.ts";
import { type Listener, listen } from "../../src/net/listener.ts";
import { NetError } from "../../src/net/net-error.ts";
import { connect } from "../../src/net/tcp-client.ts";
import { createTestPki, type TestPki } from "../helpers/certs.ts";

let pki: TestPki;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  // These tests drive the server side of STARTTLS themselves, as startSmtpServer would after loading it.
  await loadTlsCode();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(() => {});

/** Collects what a connection receives as text and lets a test wait for a piece of it. */
class Inbox {
  text = "";
  chunks = 0;
  #waiters: { needle: string; resolve: () => void }[] = [];

  constructor(connection: Connection) {
    connection.onData((chunk) => this.push(chunk));
  }

  push(chunk: Uint8Array): void {
    this.chunks += 1;
    this.text += Buffer.from(chunk).toString("latin1");
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!this.text.includes(waiter.needle)) return true;
      waiter.resolve();
      return false;
    });
  }

  waitFor(needle: string): Promise<void> {
    if (this.text.includes(needle)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ needle, resolve }));
  }
}

/** Poll a condition that depends on the event loop (bytes reaching a socket buffer); a wait, not an assertion. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`gave up waiting for ${what}`);
}

interface Pair {
  listener: Listener;
  server: Connection;
  client: Connection;
}

/** A listener, one accepted connection and the client side of it; everything is closed after the test. */
async function openPair(): Promise<Pair> {
  let accepted: (connection: Connection) => void = () => {};
  const serverSide = new Promise<Connection>((resolve) => {
    accepted = resolve;
  });
  const listener = await listen({ host: "127.0.0.1", port: 0, onConnection: (c) => accepted(c) });
  const client = await connect({ host: "127.0.0.1", port: listener.port, timeoutMs: 5_000 });
  const server = await serverSide;
  cleanups.push(() => listener.close({ force: true }));
  cleanups.push(() => client.destroy());
  return { listener, server, client };
}

function closed(connection: Connection): Promise<Error | undefined> {
  return new Promise((resolve) => connection.onClose(resolve));
}

describe("plain TCP", () => {
  test("echo in both directions, with the addresses of each end", async () => {
    const { server, client } = await openPair();
    server.onData((chunk) => server.write(chunk));
    const inbox = new Inbox(client);
    expect(client.write("EHLO client.test\r\n")).toBe(true);
    client.write(new Uint8Array([0x51, 0x55, 0x49, 0x54, 0x0d, 0x0a]));
    await inbox.waitFor("QUIT\r\n");
    expect(inbox.text).toBe("EHLO client.test\r\nQUIT\r\n");
    expect(client.remoteAddress).toBe("127.0.0.1");
    expect(client.family).toBe(4);
    expect(server.remotePort).toBe(client.localPort);
    expect(server.localPort).toBe(client.remotePort);
    expect(client.tls).toBeUndefined();
  });

  test("chunks arrive as Uint8Array", async () => {
    const { server, client } = await openPair();
    const first = new Promise<Uint8Array>((resolve) => server.onData(resolve));
    client.write("x");
    expect(await first).toBeInstanceOf(Uint8Array);
  });

  test("end() closes both sides without an error", async () => {
    const { server, client } = await openPair();
    const serverClosed = closed(server);
    const clientClosed = closed(client);
    server.onData(() => {});
    client.onData(() => {});
    client.end();
    expect(await serverClosed).toBeUndefined();
    server.end();
    expect(await clientClosed).toBeUndefined();
  });

  test("onClose set after the close still hears of it", async () => {
    const { server, client } = await openPair();
    const first = closed(server);
    server.onData(() => {});
    client.destroy();
    await first;
    expect(await closed(server)).toBeUndefined();
    expect(server.write("late")).toBe(false);
  });

  test("pause keeps bytes in the socket until resume", async () => {
    const { server, client } = await openPair();
    server.pause();
    const inbox = new Inbox(server);
    client.write("MAIL FROM:<a@b.test>\r\n");
    if (!(server instanceof SocketConnection)) throw new Error("listener gave an unexpected connection type");
    await until(() => server.bufferedInputBytes > 0, "bytes in the paused socket");
    expect(inbox.chunks).toBe(0);
    server.resume();
    await inbox.waitFor("\r\n");
    expect(inbox.text).toBe("MAIL FROM:<a@b.test>\r\n");
  });

  test("write returns false when the buffer is full, and drain resolves once the peer reads", async () => {
    const { server, client } = await openPair();
    server.pause();
    let received = 0;
    server.onData((chunk) => {
      received += chunk.length;
    });
    const block = new Uint8Array(1 << 20);
    let written = 0;
    while (client.write(block)) {
      written += block.length;
      if (written > 1 << 30) throw new Error("the socket never pushed back");
    }
    written += block.length;
    const drained = client.drain();
    server.resume();
    await drained;
    await until(() => received === written, "all bytes at the server");
    expect(received).toBe(written);
  });

  test("drain rejects with a NetError when the connection closes first", async () => {
    const { server, client } = await openPair();
    server.pause();
    server.onData(() => {});
    const block = new Uint8Array(1 << 20);
    while (client.write(block)) {}
    const drained = client.drain();
    server.destroy();
    const error = await drained.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(NetError);
    expect((error as NetError).kind).toBe("reset");
  });

  test("the idle timeout fires when nothing moves, and 0 disables it", async () => {
    const { server, client } = await openPair();
    server.onData(() => {});
    const fired = new Promise<string>((resolve) => server.setIdleTimeout(30, () => resolve("server idle")));
    expect(await fired).toBe("server idle");
    let clientFired = false;
    client.setIdleTimeout(20, () => {
      clientFired = true;
    });
    client.setIdleTimeout(0, () => {});
    // The server's timer still fires; the disabled client one must not have.
    await new Promise<void>((resolve) => server.setIdleTimeout(60, resolve));
    expect(clientFired).toBe(false);
  });
});

/** The server half of a STARTTLS exchange: answer 220 and switch in the same tick, as the contract asks. */
function serveStartTls(server: Connection, pki: TestPki): Promise<TlsInfo> {
  return new Promise((resolve, reject) => {
    let text = "";
    server.onData((chunk) => {
      text += Buffer.from(chunk).toString("latin1");
      if (!text.includes("STARTTLS\r\n")) return;
      server.write("220 2.0.0 Ready to start TLS\r\n");
      server.startTls({ cert: pki.server.cert, key: pki.server.key }).then(resolve, reject);
    });
  });
}

describe("STARTTLS", () => {
  test("client and server switch, then echo over TLS with the chain verified", async () => {
    const { server, client } = await openPair();
    const serverTls = serveStartTls(server, pki);
    const inbox = new Inbox(client);
    client.write("STARTTLS\r\n");
    await inbox.waitFor("220 ");
    const info = await client.startTls({ servername: "localhost", ca: pki.ca.cert });
    const serverInfo = await serverTls;

    expect(info.authorized).toBe(true);
    expect(info.authorizationError).toBeUndefined();
    expect(info.nameMatches).toBe(true);
    expect(info.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(info.cipher.length).toBeGreaterThan(0);
    expect(info.chain[0]?.subject).toBe("CN=localhost");
    expect(info.chain[0]?.subjectAltNames).toEqual(["DNS:localhost", "IP:127.0.0.1", "IP:0:0:0:0:0:0:0:1"]);
    expect(info.chain[0]?.issuer).toContain("CN=smtpkit test CA");
    expect(info.chain[0]?.fingerprintSha256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(info.chain[0]?.notAfter.getTime()).toBeGreaterThan(Date.now());
    expect(info.chain.at(-1)?.subject).toBe("CN=smtpkit test CA, O=smtpkit tests");
    expect(client.tls).toEqual(info);
    expect(server.tls).toEqual(serverInfo);
    expect(serverInfo.servername).toBe("localhost");
    expect(serverInfo.chain).toEqual([]);

    server.onData((chunk) => server.write(`tls:${Buffer.from(chunk).toString("latin1")}`));
    inbox.text = "";
    client.write("EHLO client.test\r\n");
    await inbox.waitFor("tls:EHLO client.test\r\n");
    expect(inbox.text).toBe("tls:EHLO client.test\r\n");
  });

  test("the client's data handler carries on after the switch; paused stays paused", async () => {
    const { server, client } = await openPair();
    const serverTls = serveStartTls(server, pki);
    const inbox = new Inbox(client);
    client.write("STARTTLS\r\n");
    await inbox.waitFor("220 ");
    client.pause();
    await client.startTls({ ca: pki.ca.cert, servername: "localhost" });
    await serverTls;
    server.write("250 after tls\r\n");
    if (!(client instanceof SocketConnection)) throw new Error("connect gave an unexpected connection type");
    await until(() => client.bufferedInputBytes > 0, "TLS data waiting while paused");
    expect(inbox.text).toBe("220 2.0.0 Ready to start TLS\r\n");
    client.resume();
    await inbox.waitFor("250 after tls\r\n");
  });

  test("server: bytes received but not delivered before the switch are discarded", async () => {
    const { server, client } = await openPair();
    if (!(server instanceof SocketConnection)) throw new Error("listener gave an unexpected connection type");
    const delivered: string[] = [];
    const sawStartTls = new Promise<void>((resolve) => {
      server.onData((chunk) => {
        delivered.push(Buffer.from(chunk).toString("latin1"));
        // The driver is busy (pause), so what follows STARTTLS waits in the socket.
        server.pause();
        resolve();
      });
    });
    const inbox = new Inbox(client);
    client.write("STARTTLS\r\n");
    await sawStartTls;
    client.write("RSET\r\nMAIL FROM:<smuggled@evil.test>\r\n");
    await until(() => server.bufferedInputBytes > 0, "smuggled bytes at the server");

    server.write("220 go ahead\r\n");
    const serverTls = server.startTls({ cert: pki.server.cert, key: pki.server.key });
    server.resume();
    await inbox.waitFor("220 go ahead\r\n");
    await client.startTls({ ca: pki.ca.cert, servername: "localhost" });
    const serverInfo = await serverTls;

    const smuggled = "RSET\r\nMAIL FROM:<smuggled@evil.test>\r\n".length;
    expect(serverInfo.discardedBytes).toBe(smuggled);
    const after = new Inbox(server);
    client.write("EHLO again\r\n");
    await after.waitFor("EHLO again\r\n");
    expect(after.text).toBe("EHLO again\r\n");
    expect(delivered).toEqual(["STARTTLS\r\n"]);
  });

  test("client: plaintext injected after the 220 is discarded", async () => {
    const { server, client } = await openPair();
    if (!(client instanceof SocketConnection)) throw new Error("connect gave an unexpected connection type");
    server.onData(() => {});
    const delivered: string[] = [];
    const saw220 = new Promise<void>((resolve) => {
      client.onData((chunk) => {
        delivered.push(Buffer.from(chunk).toString("latin1"));
        client.pause();
        resolve();
      });
    });
    server.write("220 Ready to start TLS\r\n");
    await saw220;
    server.write("250 injected by a man in the middle\r\n");
    await until(() => client.bufferedInputBytes > 0, "injected bytes at the client");

    const serverTls = server.startTls({ cert: pki.server.cert, key: pki.server.key });
    const info = await client.startTls({ ca: pki.ca.cert, servername: "localhost" });
    await serverTls;
    expect(info.discardedBytes).toBe("250 injected by a man in the middle\r\n".length);
    client.resume();
    server.write("250 real\r\n");
    const after = new Inbox(client);
    await after.waitFor("250 real\r\n");
    expect(after.text).toBe("250 real\r\n");
    expect(delivered).toEqual(["220 Ready to start TLS\r\n"]);
  });

  test("a certificate for another name fails the client's startTls with tls-verify", async () => {
    const { server, client } = await openPair();
    server.onData(() => {});
    const serverTls = server.startTls({ cert: pki.wrongName.cert, key: pki.wrongName.key });
    serverTls.catch(() => {});
    const clientClosed = closed(client);
    const error = await client.startTls({ ca: pki.ca.cert, servername: "localhost" }).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(NetError);
    expect((error as NetError).kind).toBe("tls-verify");
    expect((error as NetError).message).toContain("localhost");
    expect(client.tls).toBeUndefined();
    expect(await clientClosed).toBeInstanceOf(NetError);
  });

  test("a client that gives up during the handshake fails the server's startTls", async () => {
    const { server, client } = await openPair();
    server.onData(() => {});
    const serverTls = server.startTls({ cert: pki.server.cert, key: pki.server.key });
    client.write("this is not a TLS ClientHello\r\n");
    const error = await serverTls.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(NetError);
    expect(["tls-handshake", "reset"]).toContain((error as NetError).kind);
  });

  test("a second startTls is refused", async () => {
    const { server, client } = await openPair();
    const serverTls = serveStartTls(server, pki);
    const inbox = new Inbox(client);
    client.write("STARTTLS\r\n");
    await inbox.waitFor("220 ");
    await client.startTls({ ca: pki.ca.cert, servername: "localhost" });
    await serverTls;
    await expect(client.startTls({ ca: pki.ca.cert })).rejects.toThrow("already");
  });

  test("a server connection needs a certificate and key", async () => {
    const { server } = await openPair();
    await expect(server.startTls({ servername: "x" })).rejects.toThrow(TypeError);
  });
});
