import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";

/** How long a peer may take to start answering before we give up on it. */
const DEFAULT_READY_TIMEOUT_MS = 15_000;
/** Pause between connection attempts while the peer is still binding its port. */
const RETRY_INTERVAL_MS = 20;
/** A greeting longer than this is not a greeting (RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets). */
const MAX_GREETING_OCTETS = 64 * 1024;

export interface BannerWait {
  host: string;
  port: number;
  /** Implicit TLS (the greeting comes after the handshake); the certificate is not checked here. */
  tls?: boolean;
  timeoutMs?: number;
  /** Stops waiting early when the peer died (its port will never open). */
  isAlive?: () => boolean;
  /** Words for error messages: which peer, and what it printed. */
  describe?: () => string;
  /** Rejects a greeting from some other server that took the port first. */
  accept?: (greeting: string) => boolean;
}

class GreetingError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** Reads one greeting (possibly multi-line) from a fresh connection, then says QUIT and lets go. */
function readGreeting(host: string, port: number, tls: boolean, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: Socket = tls
      ? connectTls({ host, port, rejectUnauthorized: false })
      : connectTcp({ host, port });
    let received = "";
    let settled = false;
    const finish = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      outcome();
    };
    socket.setEncoding("latin1");
    socket.setTimeout(timeoutMs, () => {
      finish(() => reject(new GreetingError(`no greeting within ${timeoutMs} ms`, false)));
      socket.destroy();
    });
    socket.on("data", (chunk: string) => {
      received += chunk;
      // The last line of a reply has a space (or nothing) after the code: RFC 5321 §4.2.1.
      const last = /^\d{3}(?: [^\r\n]*)?\r?\n/m.exec(received);
      if (last) {
        const greeting = received.slice(0, last.index + last[0].length);
        finish(() => resolve(greeting));
        socket.setTimeout(0);
        socket.end("QUIT\r\n");
      } else if (received.length > MAX_GREETING_OCTETS) {
        finish(() => reject(new GreetingError("no complete greeting line", false)));
        socket.destroy();
      }
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      finish(() => reject(new GreetingError(error.message, error.code === "ECONNREFUSED")));
      socket.destroy();
    });
    socket.on("close", () => {
      finish(() =>
        reject(new GreetingError(`connection closed before a greeting: ${JSON.stringify(received)}`, true)),
      );
    });
  });
}

/**
 * Waits until host:port answers with an SMTP greeting and returns it (CRLFs included). This is how
 * every helper knows its peer is ready, instead of sleeping a guessed amount of time.
 */
export async function waitForBanner(wait: BannerWait): Promise<string> {
  const deadline = performance.now() + (wait.timeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  const who = (): string => wait.describe?.() ?? `${wait.host}:${wait.port}`;
  let lastError = "";
  while (performance.now() < deadline) {
    if (wait.isAlive && !wait.isAlive()) throw new Error(`${who()} exited before it greeted`);
    try {
      const greeting = await readGreeting(
        wait.host,
        wait.port,
        wait.tls ?? false,
        Math.max(1, Math.ceil(deadline - performance.now())),
      );
      if (wait.accept && !wait.accept(greeting)) {
        throw new Error(
          `${wait.host}:${wait.port} greeted with ${JSON.stringify(greeting)}, not our peer: ${who()}`,
        );
      }
      return greeting;
    } catch (error) {
      if (!(error instanceof GreetingError) || !error.retryable) throw error;
      lastError = error.message;
    }
    await Bun.sleep(RETRY_INTERVAL_MS);
  }
  throw new Error(`${who()} did not greet on ${wait.host}:${wait.port} in time (last: ${lastError})`);
}
