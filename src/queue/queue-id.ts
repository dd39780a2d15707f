import { randomBytes } from "node:crypto";

/** Crockford's base32: no I, L, O or U, so an ID read aloud or retyped survives. */
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/** 8 characters of 5 bits hold milliseconds since 1970 until the year 36812. */
const TIME_CHARS = 8;
const RANDOM_CHARS = 8;
export const QUEUE_ID_LENGTH = TIME_CHARS + RANDOM_CHARS;
const QUEUE_ID = new RegExp(`^[${ALPHABET}]{${QUEUE_ID_LENGTH}}$`);

/**
 * A queue ID like Postfix's long IDs: the arrival time first, so IDs sort by arrival (the worker
 * delivers oldest first by sorting on them), then 40 random bits so two messages in the same
 * millisecond, or from two processes, never collide in practice.
 */
export function newQueueId(now: number = Date.now()): string {
  let time = "";
  let rest = Math.max(0, Math.floor(now));
  for (let i = 0; i < TIME_CHARS; i++) {
    time = ALPHABET[rest % 32] + time;
    rest = Math.floor(rest / 32);
  }
  const bytes = randomBytes(RANDOM_CHARS);
  let random = "";
  for (const byte of bytes) random += ALPHABET[byte & 31];
  return time + random;
}

/** IDs are case-insensitive when typed; this gives the stored form, or undefined if it is no ID. */
export function normalizeQueueId(text: string): string | undefined {
  const upper = text.trim().toUpperCase();
  return QUEUE_ID.test(upper) ? upper : undefined;
}
