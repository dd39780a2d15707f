/**
 * `serve`'s mail catcher as a server Backend: every message is stored (with our Received line
 * first) and acknowledged only once the store has committed it. Optional credential checks and
 * fault injection sit in the hooks; nothing here speaks SMTP itself.
 */
import { formatPath, type Path } from "../core/address.ts";
import { verifyCramMd5 } from "../core/auth-server.ts";
import { readMessage } from "../core/bytes.ts";
import type { Envelope } from "../core/envelope.ts";
import { SmtpError } from "../core/errors.ts";
import { type EsmtpParam, formatMailParams, formatRcptParams } from "../core/esmtp-params.ts";
import type { Backend, CramMd5Proof, SessionInfo } from "../server/backend.ts";
import type { MessageStore, StagedMessage, StoredEnvelope } from "../store/types.ts";
import type { Chaos } from "./chaos.ts";
import { receivedHeader } from "./received-header.ts";

const encoder = new TextEncoder();
const AUTH_FAILED = new SmtpError(535, "5.7.8", "Authentication credentials invalid");

export interface CatcherOptions {
  store: MessageStore;
  hostname: string;
  chaos: Chaos;
  /** user → password; undefined accepts any credentials (a catcher's default). */
  users?: Map<string, string>;
  /**
   * Told after each message is committed: with its bytes, or for a large one (kept on disk, not in
   * memory) with its size and header section.
   */
  onStored?: (id: string, raw: Uint8Array | StagedMessage, envelope: StoredEnvelope) => void;
  /** Replaces storing in the catcher (relay only) or comes after it (relay and keep). */
  forward?: (raw: Uint8Array, envelope: Envelope, session: SessionInfo) => Promise<string | undefined>;
  keep?: boolean;
  now?: () => Date;
}

function paramRecord(params: readonly EsmtpParam[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (const p of params) record[p.name] = p.value ?? "";
  return record;
}

function pathText(path: Path): string {
  return formatPath(path).slice(1, -1);
}

export function storedEnvelope(envelope: Envelope, session: SessionInfo): StoredEnvelope {
  const stored: StoredEnvelope = {
    mailFrom: pathText(envelope.from),
    rcptTo: envelope.recipients.map((r) => pathText(r.path)),
    mailParams: paramRecord(formatMailParams(envelope.mailParams)),
    rcptParams: envelope.recipients.map((r) => paramRecord(formatRcptParams(r.params))),
    clientAddress: session.remoteAddress,
  };
  if (session.heloName !== undefined) stored.heloName = session.heloName;
  if (session.tls) stored.tls = { protocol: session.tls.protocol, cipher: session.tls.cipher };
  if (session.authUser !== undefined) stored.authUser = session.authUser;
  return stored;
}

export function catcherBackend(options: CatcherOptions): Backend {
  const { chaos, users } = options;
  const now = options.now ?? (() => new Date());
  const backend: Backend = {
    async data(session, envelope, message) {
      const received = receivedHeader({
        heloName: session.heloName,
        remoteAddress: session.remoteAddress,
        hostname: options.hostname,
        esmtp: session.esmtp !== false,
        tls: session.tls !== undefined,
        authenticated: session.authUser !== undefined,
        utf8: envelope.mailParams.smtpUtf8 === true,
        id: session.id,
        recipient: envelope.recipients.length === 1 ? pathText(envelope.recipients[0]!.path) : undefined,
        date: now(),
      });
      const prefix = encoder.encode(received);
      if (!options.forward) {
        // Straight into the store as it arrives: a large message never sits whole in memory.
        const staged = await options.store.stage(message, prefix);
        try {
          if (!chaos.idle) await chaos.apply("dot");
        } catch (error) {
          staged.discard();
          throw error;
        }
        const stored = storedEnvelope(envelope, session);
        const id = await options.store.add(staged, stored);
        options.onStored?.(id, staged.raw ?? staged, stored);
        return id;
      }
      const raw = await readMessage(message, prefix);
      if (!chaos.idle) await chaos.apply("dot");
      const queueId = await options.forward(raw, envelope, session);
      if (!options.keep) return queueId;
      const stored = storedEnvelope(envelope, session);
      const id = await options.store.add(raw, stored);
      options.onStored?.(id, raw, stored);
      return queueId ?? id;
    },
  };
  // Installed even when chaos is idle (the API can turn it on); they return at once then.
  backend.connect = () => (chaos.idle ? undefined : chaos.apply("connect"));
  backend.helo = () => (chaos.idle ? undefined : chaos.apply("helo"));
  backend.mail = () => (chaos.idle ? undefined : chaos.apply("mail"));
  backend.rcpt = () => (chaos.idle ? undefined : chaos.apply("rcpt"));
  // "data" is the reply to DATA (or the first BDAT) itself, as smtp-sink's -f DATA: no 354 first.
  backend.dataStart = () => (chaos.idle ? undefined : chaos.apply("data"));
  backend.auth = async (_session, _mechanism, username, password: string | CramMd5Proof) => {
    if (!chaos.idle) await chaos.apply("auth");
    if (!users) return;
    const expected = users.get(username);
    if (expected === undefined) throw AUTH_FAILED;
    const ok =
      typeof password === "string"
        ? password === expected
        : verifyCramMd5(expected, password.challenge, password.cramResponse);
    if (!ok) throw AUTH_FAILED;
  };
  return backend;
}
