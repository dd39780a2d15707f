/**
 * A deliberately dumb SMTP client for driver tests: it writes exactly the bytes it is given
 * (hostile ones included) and reads replies line by line, so tests see the server's raw behaviour.
 */

import * as net from "node:net";
import * as tls from "node:tls";

export class RawSmtpClient {
  private socket: net.Socket;
  private text = "";
  private waiters: (() => void)[] = [];
  private ended = false;
  readonly closed: Promise<void>;
  private markClosed: () => void = () => {};

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => {
      this.markClosed = resolve;
    });
    this.attach(socket);
  }

  static connect(port: number, host = "127.0.0.1"): Promise<RawSmtpClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host }, () => resolve(new RawSmtpClient(socket)));
      socket.once("error", reject);
    });
  }

  static connectTls(port: number, host = "127.0.0.1"): Promise<RawSmtpClient> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ port, host, rejectUnauthorized: false }, () =>
        resolve(new RawSmtpClient(socket)),
      );
      socket.once("error", reject);
    });
  }

  private attach(socket: net.Socket): void {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.text += chunk;
      this.wake();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      this.ended = true;
      this.wake();
      this.markClosed();
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  send(data: string | Uint8Array): this {
    this.socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data);
    return this;
  }

  /** Half-closes: the client says it will send nothing more. */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** The next complete reply, its lines joined with "\n" (CRLFs removed); "" if the server closed. */
  async reply(): Promise<string> {
    for (;;) {
      const reply = this.takeReply();
      if (reply !== undefined) return reply;
      if (this.ended) return "";
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Sends, then reads one reply. */
  async command(line: string): Promise<string> {
    this.send(line);
    return this.reply();
  }

  /** Everything up to the close, as text. */
  async rest(): Promise<string> {
    await this.closed;
    const all = this.text;
    this.text = "";
    return all;
  }

  private takeReply(): string | undefined {
    const lines: string[] = [];
    let at = 0;
    for (;;) {
      const end = this.text.indexOf("\r\n", at);
      if (end === -1) return undefined;
      const line = this.text.slice(at, end);
      lines.push(line);
      at = end + 2;
      if (line[3] !== "-") {
        this.text = this.text.slice(at);
        return lines.join("\n");
      }
    }
  }

  /** Upgrades to TLS after the server's 220 to STARTTLS; the certificate is not verified. */
  async startTls(): Promise<tls.TLSSocket> {
    const plain = this.socket;
    plain.removeAllListeners("data");
    plain.removeAllListeners("close");
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const socket = tls.connect({ socket: plain, rejectUnauthorized: false }, () => resolve(socket));
      socket.once("error", reject);
    });
    this.socket = secure;
    this.attach(secure);
    return secure;
  }
}
