import { beforeAll, describe, expect, test } from "bun:test";
import * as net from "node:net";
import type { Connection } from "../../src/net/connection.ts";
import { listen } from "../../src/net/listener.ts";
import type { NetError } from "../../src/net/net-error.ts";
import { connect } from "../../src/net/tcp-client.ts";
import { createTestPki, type TestPki } from "../helpers/certs.ts";

let pki: TestPki;

beforeAll(async () => {
  pki = await createTestPki();
});

function closed(connection: Connection): Promise<Error | undefined> {
  return new Promise((resolve) => connection.onClose(resolve));
}

describe("listen", () => {
  test("port 0 gives a real port, and onConnection sees each connection", async () => {
    const accepted: Connection[] = [];
    const listener = await listen({ host: "127.0.0.1", port: 0, onConnection: (c) => accepted.push(c) });
    expect(listener.port).toBeGreaterThan(0);
    expect(listener.host).toBe("127.0.0.1");
    const client = await connect({ host: "127.0.0.1", port: listener.port });
    const serverSide = new Promise<void>((resolve) => {
      const check = () => (accepted.length > 0 ? resolve() : setTimeout(check, 1));
      check();
    });
    await serverSide;
    expect(listener.openConnections).toBe(1);
    expect(accepted[0]?.remotePort).toBe(client.localPort);
    client.destroy();
    await listener.close({ force: true });
    expect(listener.openConnections).toBe(0);
  });

  test("an address in use is a one-line error that names it", async () => {
    const first = await listen({ host: "127.0.0.1", port: 0, onConnection: () => {} });
    const error = await listen({ host: "127.0.0.1", port: first.port, onConnection: () => {} }).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    await first.close();
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe(`cannot listen on 127.0.0.1:${first.port}: address already in use`);
  });

  test("close stops accepting and waits for open connections to close", async () => {
    let serverSide: Connection | undefined;
    const listener = await listen({
      host: "127.0.0.1",
      port: 0,
      onConnection: (c) => {
        serverSide = c;
        c.onData(() => {});
      },
    });
    const port = listener.port;
    const client = await connect({ host: "127.0.0.1", port });
    const clientClosed = closed(client);
    client.onData(() => {});
    let done = false;
    const closing = listener.close().then(() => {
      done = true;
    });
    const refused = await connect({ host: "127.0.0.1", port, timeoutMs: 2_000 }).then(
      (c) => {
        c.destroy();
        return undefined;
      },
      (reason: NetError) => reason.kind,
    );
    expect(refused).toBe("refused");
    expect(done).toBe(false);
    // The driver says goodbye; only then does close() resolve.
    serverSide?.write("421 shutting down\r\n");
    serverSide?.end();
    await clientClosed;
    await closing;
    expect(done).toBe(true);
  });

  test("close({ force }) destroys the connections still open", async () => {
    const listener = await listen({ host: "127.0.0.1", port: 0, onConnection: (c) => c.onData(() => {}) });
    const client = await connect({ host: "127.0.0.1", port: listener.port });
    const clientClosed = closed(client);
    client.onData(() => {});
    await new Promise<void>((resolve) => {
      const check = () => (listener.openConnections > 0 ? resolve() : setTimeout(check, 1));
      check();
    });
    await listener.close({ force: true });
    expect(await clientClosed).toBeUndefined();
  });
});

describe("implicit TLS listener", () => {
  test("hands over connections with TLS up and the client's SNI", async () => {
    let handOver: (connection: Connection) => void = () => {};
    const accepted = new Promise<Connection>((resolve) => {
      handOver = resolve;
    });
    const listener = await listen({
      host: "127.0.0.1",
      port: 0,
      tls: pki.server,
      onConnection: (c) => handOver(c),
    });
    const client = await connect({
      host: "localhost",
      port: listener.port,
      family: 4,
      tls: { ca: pki.ca.cert },
    });
    const connection = await accepted;
    expect(connection.tls?.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(connection.tls?.servername).toBe("localhost");
    client.destroy();
    await listener.close({ force: true });
  });

  test("a client that does not speak TLS is reported to onError and never reaches onConnection", async () => {
    let connections = 0;
    let report: (error: NetError) => void = () => {};
    const reported = new Promise<NetError>((resolve) => {
      report = resolve;
    });
    const listener = await listen({
      host: "127.0.0.1",
      port: 0,
      tls: pki.server,
      onConnection: () => {
        connections += 1;
      },
      onError: (error) => report(error),
    });
    const socket = net.connect({ host: "127.0.0.1", port: listener.port }, () => {
      socket.write("EHLO plain.test\r\n\r\n\r\n\r\n\r\n\r\n");
    });
    socket.on("error", () => {});
    const error = await reported;
    socket.destroy();
    await listener.close({ force: true });
    expect(connections).toBe(0);
    expect(error.kind).toBe("tls-handshake");
  });

  test("a client that never starts the handshake is dropped after the handshake timeout", async () => {
    const errors: NetError[] = [];
    const listener = await listen({
      host: "127.0.0.1",
      port: 0,
      tls: pki.server,
      handshakeTimeoutMs: 50,
      onConnection: () => {},
      onError: (error) => errors.push(error),
    });
    const client = await connect({ host: "127.0.0.1", port: listener.port });
    client.onData(() => {});
    await closed(client);
    await listener.close();
    expect(errors).toHaveLength(1);
    expect(errors[0]?.kind).toBe("timeout");
    expect(errors[0]?.message).toContain("no TLS handshake within 50 ms");
  });
});
