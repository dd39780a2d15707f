/** Joining byte chunks: shared by the client, the server and the catcher. No I/O happens here. */

/** One buffer holding `parts` in order; each part is copied once. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.length;
  const joined = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return joined;
}

/**
 * Reads a whole message into one buffer, `prefix` (a Received line, say) first. The chunks are
 * kept as they come and copied once into the result, so a large body is never copied twice.
 */
export async function readMessage(
  message: AsyncIterable<Uint8Array>,
  prefix?: Uint8Array,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = prefix === undefined ? [] : [prefix];
  for await (const chunk of message) parts.push(chunk);
  return concatBytes(parts);
}
