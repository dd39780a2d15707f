/**
 * Apache's "$apr1$" password hash (MD5-crypt with its own magic), the default of `htpasswd -m` and
 * of `htpasswd` on most systems, so that an existing .htpasswd file works for --http-auth-file.
 * The algorithm is Poul-Henning Kamp's md5crypt; only the magic string differs from "$1$".
 */
import { createHash } from "node:crypto";

const ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const MAGIC = "$apr1$";

/** The full "$apr1$salt$hash" string for `password` with the salt of `setting` (a hash or "$apr1$salt"). */
export function apr1(password: string, setting: string): string {
  const salt = Buffer.from(
    (setting.startsWith(MAGIC) ? setting.slice(MAGIC.length) : setting).split("$")[0]?.slice(0, 8) ?? "",
  );
  const pw = Buffer.from(password, "utf8");
  const md5 = () => createHash("md5");

  let final = md5().update(pw).update(salt).update(pw).digest();
  const context = md5().update(pw).update(MAGIC).update(salt);
  for (let left = pw.length; left > 0; left -= 16) context.update(final.subarray(0, Math.min(16, left)));
  for (let bits = pw.length; bits > 0; bits >>= 1)
    context.update(bits & 1 ? Buffer.of(0) : pw.subarray(0, 1));
  final = context.digest();

  // A thousand rounds, to make guessing slower (as slow as 1990s hardware found it).
  for (let round = 0; round < 1000; round++) {
    const next = md5();
    next.update(round & 1 ? pw : final);
    if (round % 3) next.update(salt);
    if (round % 7) next.update(pw);
    next.update(round & 1 ? final : pw);
    final = next.digest();
  }

  const at = (index: number) => final[index] ?? 0;
  let encoded = "";
  const to64 = (value: number, count: number) => {
    for (let left = count, rest = value; left > 0; left--, rest >>= 6) encoded += ITOA64[rest & 0x3f];
  };
  for (const [a, b, c] of [
    [0, 6, 12],
    [1, 7, 13],
    [2, 8, 14],
    [3, 9, 15],
    [4, 10, 5],
  ] as const) {
    to64((at(a) << 16) | (at(b) << 8) | at(c), 4);
  }
  to64(at(11), 2);
  return `${MAGIC}${salt.toString()}$${encoded}`;
}
