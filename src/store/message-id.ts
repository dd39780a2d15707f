/**
 * Database IDs are 22 base-62 characters like Mailpit's, but ordered by time (as a ULID is): 8
 * characters of milliseconds since the epoch, then 14 random ones (about 83 bits). Ordered IDs are
 * appended at the end of the ID index, so a commit rewrites one index page instead of one per
 * message at random places.
 */

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
export const MESSAGE_ID_LENGTH = 22;
/** 62^8 ms reach past the year 8000. */
const TIME_LENGTH = 8;
/** 62 × 4 = 248: bytes at or above it are redrawn so that every character is equally likely. */
const UNBIASED_LIMIT = 248;

export function newMessageId(now: number = Date.now()): string {
  let time = "";
  let rest = Math.max(0, Math.floor(now));
  for (let index = 0; index < TIME_LENGTH; index++) {
    time = ALPHABET[rest % ALPHABET.length] + time;
    rest = Math.floor(rest / ALPHABET.length);
  }
  let id = time;
  while (id.length < MESSAGE_ID_LENGTH) {
    for (const byte of crypto.getRandomValues(new Uint8Array(MESSAGE_ID_LENGTH))) {
      if (byte < UNBIASED_LIMIT && id.length < MESSAGE_ID_LENGTH) id += ALPHABET[byte % ALPHABET.length];
    }
  }
  return id;
}
