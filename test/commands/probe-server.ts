// A tiny scripted SMTP server for the probe's in-process tests: it answers each command line
// from a table (or a function), can do STARTTLS with a test certificate, and records what it got.

import * as net from "node:net";
import * as tls from "node:tls";

export interface ScriptedServerOptions {
  /** The greeting, wire text without CRLF; null sends nothing (a silent server). */
  banner?: string | null;
  /** Reply lines to EHLO (wire text, joined with CRLF); default a small ESMTP set. */
  ehlo?: string[];
  /** Reply lines to EHLO after STARTTLS; default `ehlo` without STARTTLS. */
  ehloAfterTls?: string[];
  /** Replies by upper-case verb, wire text (several lines joined with CRLF). */
  replies?: Record<string, string>;
  /** Called first for every line: a string is the reply, "CLOSE" hangs up, "SILENT" answers nothing, undefined falls through. */
  onLine?: (line: string, state: { tls: boolean; commands: string[] }) => string | undefined;
  /** Certificate for STARTTLS; without it STARTTLS gets 502. */
  tls?: { cert: string; key: string };
}

export interface ScriptedServer {
  port: number;
  /** Every command line received, over all connections, in order. */
  commands: string[];
  close(): Promise<void>;
}

const DEFAULT_EHLO = [
  "250-scripted.test hello",
  "250-PIPELINING",
  "250-SIZE 1000000",
  "250-STARTTLS",
  "250 8BITMIME",
];

function withoutStartTls(lines: string[]): string[] {
  const kept = lines.filter((l) => !/^250[- ]STARTTLS$/i.test(l)).map((l) => l.replace(/^250 /, "250-"));
  const last = kept.length - 1;
  return kept.map((l, i) => (i === last ? l.replace(/^250-/, "250 ") : l));
}

const DEFAULT_REPLIES: Record<string, string> = {
  HELO: "250 scripted.test",
  MAIL: "250 2.1.0 Ok",
  RCPT: "250 2.1.5 Ok",
  RSET: "250 2.0.0 Ok",
  NOOP: "250 2.0.0 Ok",
  QUIT: "221 2.0.0 Bye",
  DATA: "354 End data with <CR><LF>.<CR><LF>",
  AUTH: "535 5.7.8 Authentication credentials invalid",
};

export async function startScriptedServer(options: ScriptedServerOptions = {}): Promise<ScriptedServer> {
  const commands: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((plain) => {
    sockets.add(plain);
    plain.on("close", () => sockets.delete(plain));
    plain.on("error", () => {});
    let socket: net.Socket = plain;
    let secure = false;
    let buffer = "";
    let inData = false;
    const write = (text: string) => socket.write(`${text}\r\n`);
    const answer = (line: string): void => {
      commands.push(line);
      if (inData) {
        if (line === ".") {
          inData = false;
          write("250 2.0.0 queued");
        }
        return;
      }
      const custom = options.onLine?.(line, { tls: secure, commands });
      if (custom === "CLOSE") {
        socket.destroy();
        return;
      }
      if (custom === "SILENT") return;
      if (custom !== undefined) {
        write(custom);
        return;
      }
      const verb = (line.split(" ")[0] ?? "").toUpperCase();
      const scripted = options.replies?.[verb];
      if (scripted !== undefined) {
        write(scripted);
        if (verb === "QUIT") socket.end();
        return;
      }
      if (verb === "EHLO") {
        const lines = secure
          ? (options.ehloAfterTls ?? withoutStartTls(options.ehlo ?? DEFAULT_EHLO))
          : (options.ehlo ?? DEFAULT_EHLO);
        write(lines.join("\r\n"));
        return;
      }
      if (verb === "STARTTLS" && options.tls !== undefined && !secure) {
        write("220 2.0.0 Ready to start TLS");
        plain.removeAllListeners("data");
        const upgraded = new tls.TLSSocket(plain, {
          isServer: true,
          secureContext: tls.createSecureContext({ cert: options.tls.cert, key: options.tls.key }),
        });
        upgraded.on("error", () => {});
        upgraded.on("data", onData);
        socket = upgraded;
        secure = true;
        buffer = "";
        return;
      }
      if (verb === "DATA") inData = true;
      write(DEFAULT_REPLIES[verb] ?? "502 5.5.2 Command not recognized");
      if (verb === "QUIT") socket.end();
    };
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString("latin1");
      for (let eol = buffer.indexOf("\r\n"); eol >= 0; eol = buffer.indexOf("\r\n")) {
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        answer(line);
      }
    };
    plain.on("data", onData);
    if (options.banner !== null) write(options.banner ?? "220 scripted.test ESMTP ready");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return {
    port: address.port,
    commands,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
