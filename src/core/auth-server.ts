/**
 * The server's half of SMTP AUTH (RFC 4954) for three SASL mechanisms: PLAIN (RFC 4616), LOGIN
 * (draft-murchison-sasl-login) and CRAM-MD5 (RFC 2195). It turns the client's base64 lines into
 * credentials; checking them is the caller's business. CRAM-MD5's challenge needs randomness and
 * the time, which come in from outside so this stays free of I/O and clocks.
 */

import { timingSafeEqual } from "node:crypto";
import { cramMd5Digest } from "./cram-md5.ts";
import { SmtpError } from "./errors.ts";
import { SASL_MECHANISMS, type SaslMechanism } from "./sasl-mechanisms.ts";

/** The server does not speak XOAUTH2: checking a bearer token needs an OAuth issuer behind it. */
export type ServerSaslMechanism = Exclude<SaslMechanism, "XOAUTH2">;

export const SERVER_SASL_MECHANISMS: readonly ServerSaslMechanism[] = SASL_MECHANISMS.filter(
  (m): m is ServerSaslMechanism => m !== "XOAUTH2",
);

/** Mechanisms that send the password itself, so need TLS off loopback (RFC 4954 §4). */
export function isPlainTextMechanism(mechanism: string): boolean {
  return mechanism === "PLAIN" || mechanism === "LOGIN";
}

export function isServerSaslMechanism(name: string): name is ServerSaslMechanism {
  return (SERVER_SASL_MECHANISMS as readonly string[]).includes(name);
}

/** The name server-session.ts imports; it means the server's subset. */
export { isServerSaslMechanism as isSaslMechanism };

/** What the client proved, for the auth hook to check. */
export type SaslCredentials =
  | { mechanism: "PLAIN" | "LOGIN"; username: string; password: string; authorizationId?: string }
  | { mechanism: "CRAM-MD5"; username: string; challenge: string; response: string };

/** The next step of an exchange: a 334 challenge (base64 text) or the finished credentials. */
export type SaslStep = { type: "challenge"; text: string } | { type: "done"; credentials: SaslCredentials };

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

const malformed = (what: string) => new SmtpError(501, "5.5.2", `malformed ${what}`);

/** Decodes a base64 response ("" stays empty) as UTF-8 text (RFC 4616 §2 and RFC 4954 §4). */
function decodeBase64(data: string, what: string): string {
  try {
    return strictUtf8.decode(Buffer.from(data, "base64"));
  } catch {
    throw malformed(what);
  }
}

const toBase64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/** RFC 2195 §2: a challenge in the msg-id form "<random.time@hostname>". */
export function cramMd5Challenge(random: string, timeMs: number, hostname: string): string {
  return `<${random}.${Math.floor(timeMs)}@${hostname}>`;
}

/** Checks a CRAM-MD5 response: the lower-case hex HMAC-MD5 of the challenge keyed with the password. */
export function verifyCramMd5(password: string, challenge: string, response: string): boolean {
  const expected = Buffer.from(cramMd5Digest(password, challenge));
  const given = Buffer.from(response.toLowerCase());
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The client's side of CRAM-MD5, for tests: "username hexdigest". */
export function cramMd5Response(username: string, password: string, challenge: string): string {
  return `${username} ${cramMd5Digest(password, challenge)}`;
}

/**
 * One AUTH exchange. `start` takes the optional initial response from the AUTH line ("" for "=",
 * the empty response), `respond` each further client line (already checked to be base64, "*"
 * handled by the caller). Malformed responses throw SmtpError 501 5.5.2.
 */
export class SaslServer {
  private username: string | undefined;
  private challenge: string | undefined;

  constructor(
    readonly mechanism: ServerSaslMechanism,
    /** Produces a CRAM-MD5 challenge; only called for that mechanism. */
    private readonly newChallenge: () => string = () => {
      throw new Error("CRAM-MD5 needs a challenge source");
    },
  ) {}

  start(initialResponse: string | undefined): SaslStep {
    switch (this.mechanism) {
      case "PLAIN":
        return initialResponse === undefined
          ? { type: "challenge", text: "" }
          : this.respond(initialResponse);
      case "LOGIN":
        if (initialResponse === undefined) return { type: "challenge", text: toBase64("Username:") };
        return this.respond(initialResponse);
      case "CRAM-MD5":
        // RFC 2195: the server speaks first, so an initial response has nothing to answer.
        if (initialResponse !== undefined) throw malformed("AUTH CRAM-MD5: no initial response allowed");
        this.challenge = this.newChallenge();
        return { type: "challenge", text: toBase64(this.challenge) };
    }
  }

  respond(data: string): SaslStep {
    switch (this.mechanism) {
      case "PLAIN": {
        // RFC 4616 §2: [authzid] NUL authcid NUL passwd
        const parts = decodeBase64(data, "PLAIN response").split("\0");
        const [authorizationId, username, password] = parts;
        if (parts.length !== 3 || username === undefined || password === undefined || username === "") {
          throw malformed("PLAIN response (expected authzid NUL user NUL password)");
        }
        const credentials: SaslCredentials = { mechanism: "PLAIN", username, password };
        if (authorizationId !== undefined && authorizationId !== "")
          credentials.authorizationId = authorizationId;
        return { type: "done", credentials };
      }
      case "LOGIN": {
        if (this.username === undefined) {
          this.username = decodeBase64(data, "LOGIN user name");
          return { type: "challenge", text: toBase64("Password:") };
        }
        return {
          type: "done",
          credentials: {
            mechanism: "LOGIN",
            username: this.username,
            password: decodeBase64(data, "LOGIN password"),
          },
        };
      }
      case "CRAM-MD5": {
        const text = decodeBase64(data, "CRAM-MD5 response");
        const space = text.lastIndexOf(" ");
        const username = text.slice(0, space);
        const response = text.slice(space + 1);
        if (space <= 0 || !/^[0-9a-fA-F]{32}$/.test(response) || this.challenge === undefined) {
          throw malformed("CRAM-MD5 response (expected user SP 32 hex digits)");
        }
        return {
          type: "done",
          credentials: { mechanism: "CRAM-MD5", username, challenge: this.challenge, response },
        };
      }
    }
  }
}
