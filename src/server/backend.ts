/**
 * What an application plugs into the SMTP server, in the style of go-smtp's Backend/Session:
 * one method per stage, each may be async, and each rejects by throwing an SmtpError, which goes
 * to the wire as it is. Any other error becomes "451 4.3.0" (454 4.7.0 for AUTH) and the server
 * keeps running. Methods left out accept everything.
 */

import type { Path } from "../core/address.ts";
import type { Envelope } from "../core/envelope.ts";
import { SmtpError } from "../core/errors.ts";
import type { MailParams, RcptParams } from "../core/esmtp-params.ts";
import type { TlsInfo } from "../net/connection.ts";

/** What the server knows about one client connection; the same object for its whole life. */
export interface SessionInfo {
  /** Unique per connection within this process, for logs and stored envelopes. */
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** The EHLO/HELO name, once accepted. */
  heloName?: string;
  /** True after EHLO (ESMTP), false after HELO. */
  esmtp?: boolean;
  /** Set once TLS is up (implicit TLS or after STARTTLS). */
  tls?: TlsInfo;
  /** The user of a successful AUTH. */
  authUser?: string;
}

/** CRAM-MD5 proves knowledge of the password without sending it; check with verifyCramMd5. */
export interface CramMd5Proof {
  cramResponse: string;
  challenge: string;
}

export interface Backend {
  /** A client connected; throw SmtpError (e.g. 554) to refuse it before the greeting. */
  connect?(session: SessionInfo): void | Promise<void>;
  helo?(session: SessionInfo, domain: string): void | Promise<void>;
  /**
   * AUTH credentials (PLAIN, LOGIN, or CRAM-MD5's proof). Resolve to accept; throw SmtpError(535,
   * "5.7.8", ...) to refuse. Left out: any credentials are accepted (a mail catcher's choice).
   */
  auth?(
    session: SessionInfo,
    mechanism: string,
    username: string,
    password: string | CramMd5Proof,
  ): void | Promise<void>;
  mail?(session: SessionInfo, from: Path, params: MailParams): void | Promise<void>;
  rcpt?(session: SessionInfo, to: Path, params: RcptParams): void | Promise<void>;
  /** DATA or the first BDAT, before any content: refuse the message up front (fault injection). */
  dataStart?(session: SessionInfo, envelope: Envelope): void | Promise<void>;
  /**
   * The message body, streamed as it arrives (un-stuffed, CRLF line ends). Resolve once it is
   * durably stored: the client gets 250 only then, with the resolved string as queue id. Throw
   * SmtpError to refuse it. If the session itself rejects the message (size, bare CR/LF, reset,
   * disconnect), iterating `message` throws and the reply is the session's.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: an async backend with no queue id returns nothing.
  data(session: SessionInfo, envelope: Envelope, message: AsyncIterable<Uint8Array>): Promise<string | void>;
  /** The transaction was dropped (RSET, EHLO, STARTTLS). */
  reset?(session: SessionInfo): void;
  /** The connection is gone; called once per connection, after everything else. */
  close?(session: SessionInfo): void;
}

/** A hook's failure as a reply: SmtpErrors as they are, anything else as a local error. */
export function hookError(error: unknown, fallback: SmtpError = LOCAL_ERROR): SmtpError {
  return error instanceof SmtpError ? error : fallback;
}

export const LOCAL_ERROR = new SmtpError(451, "4.3.0", "Requested action aborted: local error in processing");
export const AUTH_LOCAL_ERROR = new SmtpError(454, "4.7.0", "Temporary authentication failure");
