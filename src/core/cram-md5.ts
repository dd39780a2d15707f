/**
 * RFC 2195 §2: the lower-case hex HMAC-MD5 of the challenge, keyed with the password. The
 * client hashes the challenge bytes as the server sent them; the server its own text. Bun's hasher
 * rather than node:crypto, whose loading costs every `send` several milliseconds of start-up.
 */
export function cramMd5Digest(password: string, challenge: string | Uint8Array): string {
  return new Bun.CryptoHasher("md5", password).update(challenge).digest("hex");
}
