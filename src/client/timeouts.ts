import type { ClientStage } from "../core/client-session.ts";

/** How long to wait, in milliseconds, at each point of a session. */
export interface ClientTimeouts {
  /** TCP connect plus an implicit TLS handshake (RFC 5321 sets none; src/net's default bounds it). */
  connect: number;
  /** RFC 5321 §4.5.3.2.1: initial 220 message, 5 minutes. */
  greeting: number;
  /** EHLO, STARTTLS (and the handshake), AUTH, RSET, QUIT, NOOP: RFC 5321 names none; 5 minutes like MAIL. */
  command: number;
  /** RFC 5321 §4.5.3.2.2: MAIL, 5 minutes. */
  mail: number;
  /** RFC 5321 §4.5.3.2.3: RCPT, 5 minutes. */
  rcpt: number;
  /** RFC 5321 §4.5.3.2.4: DATA initiation (the 354), 2 minutes. */
  dataInit: number;
  /** RFC 5321 §4.5.3.2.5: each data block sent, 3 minutes. */
  dataBlock: number;
  /** RFC 5321 §4.5.3.2.6: the reply after the final dot (or BDAT LAST), 10 minutes. */
  dataTermination: number;
}

const MINUTE = 60_000;

export const DEFAULT_TIMEOUTS: Readonly<ClientTimeouts> = {
  connect: 30_000,
  greeting: 5 * MINUTE,
  command: 5 * MINUTE,
  mail: 5 * MINUTE,
  rcpt: 5 * MINUTE,
  dataInit: 2 * MINUTE,
  dataBlock: 3 * MINUTE,
  dataTermination: 10 * MINUTE,
};

/** One `--timeout` for every wait, as `send --timeout SECONDS` asks. */
export function uniformTimeouts(ms: number): ClientTimeouts {
  return {
    connect: ms,
    greeting: ms,
    command: ms,
    mail: ms,
    rcpt: ms,
    dataInit: ms,
    dataBlock: ms,
    dataTermination: ms,
  };
}

export function resolveTimeouts(given: Partial<ClientTimeouts> | undefined): ClientTimeouts {
  return given === undefined ? { ...DEFAULT_TIMEOUTS } : { ...DEFAULT_TIMEOUTS, ...given };
}

/** The wait that applies while the session awaits `stage`; undefined means the body is being sent. */
export function timeoutFor(t: ClientTimeouts, stage: ClientStage | undefined): number {
  switch (stage) {
    case undefined:
      return t.dataBlock;
    case "greeting":
      return t.greeting;
    case "mail":
      return t.mail;
    case "rcpt":
      return t.rcpt;
    case "data":
      return t.dataInit;
    case "message":
    case "bdat":
      return t.dataTermination;
    default:
      return t.command;
  }
}
