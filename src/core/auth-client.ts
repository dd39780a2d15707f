/**
 * The client side of SMTP AUTH (RFC 4954) for the SASL mechanisms smtpkit speaks:
 * PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login), CRAM-MD5 (RFC 2195) and XOAUTH2
 * (Google's bearer-token profile). Pure computation: the session feeds in each 334 challenge
 * and writes out the response this returns.
 *
 * Every response is marked secret or not, so a transcript can mask what would reveal the
 * password (or, for CRAM-MD5, what would allow an offline guess at it).
 */

import { cramMd5Digest } from "./cram-md5.ts";
import { SASL_MECHANISMS, type SaslMechanism } from "./sasl-mechanisms.ts";

// probe's option parsing and interactive mode take the list from here, beside createSaslClient.
export { isSaslMechanism, SASL_MECHANISMS, type SaslMechanism } from "./sasl-mechanisms.ts";

export interface SaslCredentials {
  username: string;
  /** The password; for XOAUTH2 the OAuth 2.0 access token. */
  password: string;
  /** PLAIN's authorization identity (act as this user); empty means "the one authenticated". */
  authzid?: string;
}

/** One line for the wire (base64, or "" for an empty response) and whether to mask it. */
export interface SaslResponse {
  text: string;
  secret: boolean;
}

export interface SaslClient {
  readonly mechanism: SaslMechanism;
  /** The response sent with the AUTH command itself (RFC 4954 §4), when the mechanism has one. */
  readonly initialResponse: SaslResponse | undefined;
  /** The answer to a 334 challenge, given the challenge text as sent (base64). */
  respond(challenge: string): SaslResponse;
}

/** A local problem with authenticating: unknown mechanism, or a challenge we cannot answer. */
export class SaslError extends Error {
  override name = "SaslError";
}

const encoder = new TextEncoder();

function base64(text: string): string {
  return Buffer.from(encoder.encode(text)).toString("base64");
}

function decodeChallenge(challenge: string): Buffer {
  const text = challenge.trim();
  // RFC 4954 §4: the challenge is base64; a lenient decoder would hide a broken server.
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) {
    throw new SaslError(`server challenge is not base64: ${JSON.stringify(text.slice(0, 80))}`);
  }
  return Buffer.from(text, "base64");
}

/** RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd; none may contain NUL. */
function plainMessage(c: SaslCredentials): string {
  for (const [name, value] of [
    ["username", c.username],
    ["password", c.password],
    ["authzid", c.authzid ?? ""],
  ] as const) {
    if (value.includes("\0"))
      throw new SaslError(`the ${name} contains a NUL character, which PLAIN cannot carry`);
  }
  return `${c.authzid ?? ""}\0${c.username}\0${c.password}`;
}

class PlainClient implements SaslClient {
  readonly mechanism = "PLAIN";
  readonly initialResponse: SaslResponse;
  constructor(credentials: SaslCredentials) {
    this.initialResponse = { text: base64(plainMessage(credentials)), secret: true };
  }
  respond(): SaslResponse {
    // Only reached when a server ignores the initial response and sends an empty challenge.
    return this.initialResponse;
  }
}

/** LOGIN asks for the user name, then the password; answer in that order whatever the prompts say. */
class LoginClient implements SaslClient {
  readonly mechanism = "LOGIN";
  readonly initialResponse = undefined;
  private step = 0;
  constructor(private readonly credentials: SaslCredentials) {}
  respond(challenge: string): SaslResponse {
    decodeChallenge(challenge);
    this.step++;
    if (this.step === 1) return { text: base64(this.credentials.username), secret: false };
    if (this.step === 2) return { text: base64(this.credentials.password), secret: true };
    throw new SaslError("LOGIN: the server asked for more than a user name and a password");
  }
}

/** RFC 2195 §2: response = user SP lowercase-hex(HMAC-MD5(password, challenge)). */
class CramMd5Client implements SaslClient {
  readonly mechanism = "CRAM-MD5";
  readonly initialResponse = undefined;
  private answered = false;
  constructor(private readonly credentials: SaslCredentials) {}
  respond(challenge: string): SaslResponse {
    if (this.answered) throw new SaslError("CRAM-MD5: the server sent a second challenge");
    this.answered = true;
    const digest = cramMd5Digest(this.credentials.password, decodeChallenge(challenge));
    return { text: base64(`${this.credentials.username} ${digest}`), secret: true };
  }
}

/**
 * XOAUTH2: "user=" user ^A "auth=Bearer " token ^A ^A. On failure the server sends a 334 with a
 * JSON error; the client must answer with an empty line to get the final 535.
 */
class XOAuth2Client implements SaslClient {
  readonly mechanism = "XOAUTH2";
  readonly initialResponse: SaslResponse;
  constructor(credentials: SaslCredentials) {
    this.initialResponse = {
      text: base64(`user=${credentials.username}\x01auth=Bearer ${credentials.password}\x01\x01`),
      secret: true,
    };
  }
  respond(): SaslResponse {
    return { text: "", secret: false };
  }
}

export function createSaslClient(mechanism: string, credentials: SaslCredentials): SaslClient {
  const name = mechanism.toUpperCase();
  switch (name) {
    case "PLAIN":
      return new PlainClient(credentials);
    case "LOGIN":
      return new LoginClient(credentials);
    case "CRAM-MD5":
      return new CramMd5Client(credentials);
    case "XOAUTH2":
      return new XOAuth2Client(credentials);
    default:
      throw new SaslError(
        `unsupported AUTH mechanism ${mechanism}; smtpkit speaks ${SASL_MECHANISMS.join(", ")}`,
      );
  }
}

/**
 * The best mechanism both sides speak. Over TLS, PLAIN is simplest and universally supported;
 * in clear text (only when the user allowed it) CRAM-MD5 at least keeps the password off the
 * wire. XOAUTH2 needs a token rather than a password, so it is only used when asked for.
 */
export function chooseSaslMechanism(
  offered: readonly string[],
  encrypted: boolean,
): SaslMechanism | undefined {
  const order: SaslMechanism[] = encrypted ? ["PLAIN", "LOGIN", "CRAM-MD5"] : ["CRAM-MD5", "PLAIN", "LOGIN"];
  const upper = offered.map((m) => m.toUpperCase());
  return order.find((m) => upper.includes(m));
}
