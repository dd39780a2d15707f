import { SMTPServer, type SMTPServerOptions } from "smtp-server";

/**
 * nodemailer's smtp-server on loopback as an independent peer for CLI-level tests of `send` and
 * `sendmail`: it records what arrived and refuses what it is told to.
 */
export interface ReceivedMessage {
  mailFrom: string;
  /** MAIL FROM parameters as smtp-server parsed them (upper-case keys). */
  mailParams: Record<string, unknown>;
  /** Each RCPT TO's parameters (upper-case keys). */
  rcptParams: Record<string, unknown>[];
  rcptTo: string[];
  raw: Uint8Array;
  secure: boolean;
  user: string | undefined;
}

export interface PeerOptions extends SMTPServerOptions {
  /** RCPT TO address (lower case) → [code, text]: refuse that recipient. */
  refuseRecipients?: Record<string, [number, string]>;
  /** Refuse every message after its final dot with this reply. */
  refuseMessage?: [number, string];
  /** user → password for AUTH. */
  users?: Record<string, string>;
}

export interface Peer {
  port: number;
  messages: ReceivedMessage[];
  close(): Promise<void>;
}

/** smtp-server moves RET and ENVID out of the MAIL parameters into envelope.dsn. */
function dsnParams(envelope: object): Record<string, unknown> {
  const dsn = (envelope as { dsn?: { ret?: string; envid?: string } }).dsn;
  return {
    ...(dsn?.ret ? { RET: dsn.ret } : {}),
    ...(dsn?.envid ? { ENVID: dsn.envid } : {}),
  };
}

function smtpError(code: number, text: string): Error {
  return Object.assign(new Error(text), { responseCode: code });
}

export async function startPeer(options: PeerOptions = {}): Promise<Peer> {
  const { refuseRecipients = {}, refuseMessage, users, ...serverOptions } = options;
  const messages: ReceivedMessage[] = [];
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    // smtp-server hides both unless told otherwise; send's DSN flags and reply texts need them.
    hideDSN: false,
    hideENHANCEDSTATUSCODES: false,
    authOptional: users === undefined,
    ...(users === undefined ? { disabledCommands: ["AUTH"] } : {}),
    ...serverOptions,
    onAuth(auth, _session, callback) {
      const ok = users !== undefined && auth.username !== undefined && users[auth.username] !== undefined;
      const method = auth.method as string;
      const valid =
        ok &&
        (method === "CRAM-MD5"
          ? (auth as unknown as { validatePassword(p: string): boolean }).validatePassword(
              users[auth.username as string] as string,
            )
          : auth.password === users[auth.username as string]);
      if (!valid) {
        callback(smtpError(535, "5.7.8 Authentication credentials invalid"));
        return;
      }
      callback(null, { user: auth.username });
    },
    onRcptTo(address, _session, callback) {
      const refusal = refuseRecipients[address.address.toLowerCase()];
      callback(refusal ? smtpError(refusal[0], refusal[1]) : undefined);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        if (refuseMessage) {
          callback(smtpError(refuseMessage[0], refuseMessage[1]));
          return;
        }
        const mailFrom = session.envelope.mailFrom;
        messages.push({
          mailFrom: mailFrom === false ? "" : mailFrom.address,
          mailParams: mailFrom === false ? {} : { ...(mailFrom.args || {}), ...dsnParams(session.envelope) },
          rcptParams: session.envelope.rcptTo.map((r) => ({ ...(r.args || {}) })),
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          raw: new Uint8Array(Buffer.concat(chunks)),
          secure: session.secure,
          user: typeof session.user === "string" ? session.user : undefined,
        });
        callback();
      });
    },
  });
  server.on("error", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.server.address();
  if (address === null || typeof address === "string") throw new Error("smtp-server has no TCP address");
  return {
    port: address.port,
    messages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
