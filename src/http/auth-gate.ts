/**
 * The API behind --http-auth-file: every request but the health checks needs HTTP Basic
 * credentials of a user in the file, or gets 401 with a challenge.
 */
import { basicAuthorized, type HtpasswdUsers } from "./htpasswd.ts";
import { errorResponse, HttpStatus } from "./responses.ts";

/** Orchestrators probe these without credentials, as they do Mailpit's. */
const OPEN_PATHS = new Set(["/livez", "/readyz"]);
/**
 * Authorization headers already verified. bcrypt is slow on purpose (tens of ms at the usual
 * costs), and a test suite calls the API hundreds of times with the same header.
 */
const REMEMBERED = 64;

export type AuthGate = (request: Request) => Promise<Response | undefined>;

/** Returns a gate that answers 401 to a request without good credentials, and undefined to let it in. */
export function authGate(users: HtpasswdUsers): AuthGate {
  const verified = new Set<string>();
  return async (request) => {
    if (OPEN_PATHS.has(new URL(request.url).pathname)) return undefined;
    const header = request.headers.get("authorization");
    if (header !== null && verified.has(header)) return undefined;
    if (header !== null && (await basicAuthorized(header, users))) {
      if (verified.size >= REMEMBERED) verified.clear();
      verified.add(header);
      return undefined;
    }
    return errorResponse(
      HttpStatus.unauthorized,
      "authentication required: give a user and password of --http-auth-file",
      {
        "WWW-Authenticate": 'Basic realm="smtpkit", charset="UTF-8"',
      },
    );
  };
}
