/** Database IDs look like Mailpit's: 22 base-62 characters, about 131 random bits. */

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
export const MESSAGE_ID_LENGTH = 22;
/** 62 × 4 = 248: bytes at or above it are redrawn so that every character is equally likely. */
const UNBIASED_LIMIT = 248;

export function newMessageId(): string {
  let id = "";
  while (id.length < MESSAGE_ID_LENGTH) {
    for (const byte of crypto.getRandomValues(new Uint8Array(MESSAGE_ID_LENGTH))) {
      if (byte < UNBIASED_LIMIT && id.length < MESSAGE_ID_LENGTH) id += ALPHABET[byte % ALPHABET.length];
    }
  }
  return id;
}
