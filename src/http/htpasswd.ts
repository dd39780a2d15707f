/**
 * `--http-auth-file`: the users allowed into the HTTP API, in Apache's htpasswd format (what
 * Mailpit's --ui-auth-file takes), checked with HTTP Basic authentication. Only hashed passwords
 * are accepted: bcrypt (`htpasswd -B`), Apache MD5 (`$apr1$`, `htpasswd -m`) and SHA-1 (`{SHA}`,
 * `htpasswd -s`). A file with a plain password or an unknown scheme is refused at start-up.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { apr1 } from "./apr1-md5.ts";

export type HtpasswdUsers = ReadonlyMap<string, string>;

export class HtpasswdError extends Error {
  override name = "HtpasswdError";
}

const SCHEMES = "bcrypt ($2y$, htpasswd -B), $apr1$ (htpasswd -m) or {SHA} (htpasswd -s)";

/** Parses the file's text; `where` names it in errors ("FILE:LINE: ..."). */
export function parseHtpasswd(text: string, where: string): HtpasswdUsers {
  const users = new Map<string, string>();
  for (const [index, line] of text.split(/\r?\n/).entries()) {
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new HtpasswdError(`${where}:${index + 1}: expected user:hash`);
    const hash = line.slice(colon + 1).trim();
    if (!/^\$2[aby]\$\d\d\$/.test(hash) && !hash.startsWith("$apr1$") && !hash.startsWith("{SHA}")) {
      throw new HtpasswdError(`${where}:${index + 1}: the password must be hashed with ${SCHEMES}`);
    }
    users.set(line.slice(0, colon), hash);
  }
  if (users.size === 0) throw new HtpasswdError(`${where}: no users; add one with htpasswd -B ${where} NAME`);
  return users;
}

/** Whether the request's `Authorization: Basic ...` names a user of `users` with the right password. */
export async function basicAuthorized(header: string | null, users: HtpasswdUsers): Promise<boolean> {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? "");
  if (!match?.[1]) return false;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return false;
  const hash = users.get(decoded.slice(0, colon));
  if (hash === undefined) return false;
  return passwordMatches(decoded.slice(colon + 1), hash);
}

async function passwordMatches(password: string, hash: string): Promise<boolean> {
  if (hash.startsWith("$apr1$")) return sameText(apr1(password, hash), hash);
  if (hash.startsWith("{SHA}")) {
    return sameText(`{SHA}${createHash("sha1").update(password, "utf8").digest("base64")}`, hash);
  }
  try {
    return await Bun.password.verify(password, hash, "bcrypt");
  } catch {
    return false; // a malformed bcrypt string
  }
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
