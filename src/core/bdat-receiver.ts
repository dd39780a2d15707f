/**
 * The server side of BDAT framing (RFC 3030 §2, CHUNKING): after "BDAT <size>[ LAST]" exactly
 * <size> octets follow, taken as they are (no dot-stuffing, no terminator, any byte allowed).
 *
 * The server reads the octets even when it rejects the BDAT command (RFC 3030 §4.2: the chunk is
 * on its way anyway); otherwise message bytes would be read as commands, an injection channel.
 */

/** What one call to {@link BdatReceiver.receive} produced. */
export interface BdatProgress {
  /** Chunk octets from this input, a view into it (no copy); undefined when none. */
  body: Uint8Array | undefined;
  /** True once all <size> octets have arrived. */
  done: boolean;
  /** Input after the chunk's last octet (the next command), when `done`. */
  rest: Uint8Array | undefined;
}

export class BdatReceiver {
  /** Octets of this chunk not received yet. */
  remaining: number;

  constructor(readonly size: number) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`not a BDAT chunk size: ${size}`);
    this.remaining = size;
  }

  get done(): boolean {
    return this.remaining === 0;
  }

  receive(input: Uint8Array): BdatProgress {
    if (this.remaining === 0) return { body: undefined, done: true, rest: input };
    if (input.length < this.remaining) {
      this.remaining -= input.length;
      return { body: input.length === 0 ? undefined : input, done: false, rest: undefined };
    }
    const body = input.subarray(0, this.remaining);
    const rest = input.subarray(this.remaining);
    this.remaining = 0;
    return { body, done: true, rest };
  }
}
