import * as net from "node:net";
import * as tls from "node:tls";

/**
 * A tiny SMTP peer for driver tests: each connection runs a script that reads what the client
 * wrote and answers by hand. It is deliberately not our server, so the client is tested
 * against exact bytes.
 */
export interface Peer {
  /** Everything received so far on this connection (after TLS: the decrypted bytes appended). */
  readonly received: string;
  send(text: string): void;
  /** The next line, without its CRLF. */
  line(): Promise<string>;
  /** Exactly `n` octets, as latin1 text. */
  bytes(n: number): Promise<string>;
  /** Everything up to and including `marker`. */
  until(marker: string): Promise<string>;
  /** Server side of STARTTLS after our 220 was written. */
  startTls(pair: { cert: string; key: string }): Promise<void>;
  /** Resolves when the client closes the connection. */
  closed(): Promise<void>;
  end(): void;
  destroy(): void;
}

class SocketPeer implements Peer {
  private buffer = "";
  private all = "";
  private wake: (() => void) | undefined;
  private ended = false;
  private readonly endedPromise: Promise<void>;
  private socket: net.Socket;

  constructor(socket: net.Socket) {
    this.socket = socket;
    let resolveEnded: () => void = () => {};
    this.endedPromise = new Promise((resolve) => {
      resolveEnded = resolve;
    });
    this.attach(socket);
    socket.on("close", () => {
      this.ended = true;
      resolveEnded();
      this.wake?.();
    });
    socket.on("error", () => {});
  }

  get received(): string {
    return this.all;
  }

  private attach(socket: net.Socket): void {
    socket.on("data", (chunk: Buffer) => {
      const text = chunk.toString("latin1");
      this.buffer += text;
      this.all += text;
      this.wake?.();
    });
  }

  private async waitFor<T>(take: () => T | undefined): Promise<T> {
    for (;;) {
      const value = take();
      if (value !== undefined) return value;
      if (this.ended) throw new Error(`client closed; unread: ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }

  send(text: string): void {
    this.socket.write(text);
  }

  line(): Promise<string> {
    return this.waitFor(() => {
      const at = this.buffer.indexOf("\r\n");
      if (at < 0) return undefined;
      const line = this.buffer.slice(0, at);
      this.buffer = this.buffer.slice(at + 2);
      return line;
    });
  }

  bytes(n: number): Promise<string> {
    return this.waitFor(() => {
      if (this.buffer.length < n) return undefined;
      const out = this.buffer.slice(0, n);
      this.buffer = this.buffer.slice(n);
      return out;
    });
  }

  until(marker: string): Promise<string> {
    return this.waitFor(() => {
      const at = this.buffer.indexOf(marker);
      if (at < 0) return undefined;
      const out = this.buffer.slice(0, at + marker.length);
      this.buffer = this.buffer.slice(at + marker.length);
      return out;
    });
  }

  async startTls(pair: { cert: string; key: string }): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners("data");
    this.buffer = "";
    const secure = new tls.TLSSocket(plain, {
      isServer: true,
      secureContext: tls.createSecureContext({ cert: pair.cert, key: pair.key }),
    });
    secure.on("error", () => {});
    this.socket = secure;
    this.attach(secure);
    await new Promise<void>((resolve, reject) => {
      secure.once("secure", () => resolve());
      secure.once("error", reject);
      secure.once("close", () => resolve());
    });
  }

  closed(): Promise<void> {
    return this.endedPromise;
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface ScriptedServer {
  port: number;
  /** Settles when every connection's script has finished; rejects with the first script error. */
  done(): Promise<void>;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1; the nth connection runs scripts[n] (the last one repeats). */
export async function scriptedServer(...scripts: ((peer: Peer) => Promise<void>)[]): Promise<ScriptedServer> {
  const runs: Promise<void>[] = [];
  const sockets = new Set<net.Socket>();
  let count = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    const script = scripts[Math.min(count, scripts.length - 1)];
    count++;
    if (script === undefined) {
      socket.destroy();
      return;
    }
    const peer = new SocketPeer(socket);
    runs.push(script(peer));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return {
    port: address.port,
    async done() {
      await Promise.all(runs);
    },
    close: () =>
      new Promise<void>((resolve) => {
        // A script that failed may have left its connection open; do not wait for it.
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}
