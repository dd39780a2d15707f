// Our own SMTP server as the far end for worker tests (in-process integration, DESIGN layer 3):
// it records what arrives, refuses what it is told to, and counts connections.

import { formatPath } from "../../src/core/address.ts";
import type { Envelope } from "../../src/core/envelope.ts";
import { SmtpError } from "../../src/core/errors.ts";
import { type SmtpServer, startSmtpServer } from "../../src/server/smtp-server.ts";

export interface Received {
  from: string;
  to: string[];
  raw: Uint8Array;
}

export interface TestServer {
  port: number;
  received: Received[];
  /** RCPT address → the error to answer it with; change it between attempts. */
  refuse: Map<string, SmtpError>;
  /** Answer the end of data with this error instead of 250. */
  refuseData?: SmtpError;
  /** Connections accepted so far, and the most open at once. */
  connections: number;
  maxOpen: number;
  close(): Promise<void>;
}

/**
 * Transactions in progress across several servers (for the overall concurrency limit): from MAIL
 * to the end of the data. Counting connections would overlap, as a client is done with one at
 * QUIT's reply, a moment before the server sees it close.
 */
export interface Gauge {
  open: number;
  max: number;
}

export async function startTestServer(hostname = "far.test", gauge?: Gauge): Promise<TestServer> {
  let open = 0;
  const state: TestServer = {
    port: 0,
    received: [],
    refuse: new Map(),
    connections: 0,
    maxOpen: 0,
    close: async () => {},
  };
  const server: SmtpServer = await startSmtpServer({
    hostname,
    listen: [{ host: "127.0.0.1", port: 0 }],
    dsn: true,
    backend: {
      connect() {
        state.connections++;
        open++;
        state.maxOpen = Math.max(state.maxOpen, open);
      },
      close() {
        open--;
      },
      mail() {
        if (gauge !== undefined) {
          gauge.open++;
          gauge.max = Math.max(gauge.max, gauge.open);
        }
      },
      rcpt(_session, to) {
        const error = state.refuse.get(formatPath(to).slice(1, -1).toLowerCase());
        if (error !== undefined) throw error;
      },
      async data(_session, envelope: Envelope, message) {
        const parts: Uint8Array[] = [];
        for await (const chunk of message) parts.push(chunk);
        if (gauge !== undefined) gauge.open--;
        if (state.refuseData !== undefined) throw state.refuseData;
        state.received.push({
          from: formatPath(envelope.from).slice(1, -1),
          to: envelope.recipients.map((r) => formatPath(r.path).slice(1, -1)),
          raw: new Uint8Array(Buffer.concat(parts)),
        });
        return `id${state.received.length}`;
      },
    },
  });
  state.port = server.listeners[0]?.port ?? 0;
  state.close = () => server.close(0);
  return state;
}

export { SmtpError };
