/**
 * BDAT framing for sending (RFC 3030 §2, CHUNKING): "BDAT <size>[ LAST]\r\n" followed by exactly
 * <size> octets, sent as they are (no dot-stuffing, no terminator). The last chunk carries LAST;
 * "BDAT 0 LAST" is legal and ends a message whose octets were all sent already.
 *
 * The chunker buffers up to one chunk so a message pushed in small pieces does not become many
 * small BDAT commands (each one is a reply to wait for without PIPELINING). A full chunk is only
 * emitted once more input arrives, so the common case ends with one data-carrying LAST chunk
 * rather than an empty "BDAT 0 LAST".
 */

import { LineEndNormalizer } from "./dot-stuffer.ts";

/** How many octets one BDAT carries by default: a whole typical message in one round trip. */
export const DEFAULT_BDAT_CHUNK_SIZE = 1024 * 1024;

const encoder = new TextEncoder();

/** "BDAT <size>[ LAST]\r\n" as bytes (RFC 3030 §2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CR LF). */
export function bdatHeader(size: number, last: boolean): Uint8Array {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`not a BDAT chunk size: ${size}`);
  return encoder.encode(last ? `BDAT ${size} LAST\r\n` : `BDAT ${size}\r\n`);
}

/** One BDAT command and its octets in one buffer, ready for a single write. */
export function bdatFrame(payload: Uint8Array, last: boolean): Uint8Array {
  const header = bdatHeader(payload.length, last);
  const frame = new Uint8Array(header.length + payload.length);
  frame.set(header, 0);
  frame.set(payload, header.length);
  return frame;
}

export interface BdatChunkerOptions {
  /** Octets per BDAT command; the last one may be shorter. */
  chunkSize?: number;
  /**
   * Turn bare CR and LF into CRLF and end the message with CRLF, as DATA does. Leave it on for
   * 7BIT and 8BITMIME bodies (they are line-oriented); turn it off for BODY=BINARYMIME.
   */
  normalizeLineEnds?: boolean;
}

function checkedChunkSize(size: number | undefined): number {
  const chunkSize = size ?? DEFAULT_BDAT_CHUNK_SIZE;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1)
    throw new RangeError(`not a BDAT chunk size: ${chunkSize}`);
  return chunkSize;
}

/** Streaming BDAT framer: push() the message in any chunking, then write end()'s LAST frame. */
export class BdatChunker {
  private readonly chunkSize: number;
  private readonly normalizer: LineEndNormalizer | undefined;
  private buffer: Uint8Array;
  private filled = 0;
  private total = 0;

  constructor(options: BdatChunkerOptions = {}) {
    this.chunkSize = checkedChunkSize(options.chunkSize);
    this.normalizer = options.normalizeLineEnds === false ? undefined : new LineEndNormalizer(false);
    this.buffer = new Uint8Array(0);
  }

  /** Octets of message framed so far (after line-end normalisation): the RFC 1870 size at the end. */
  get size(): number {
    return this.total;
  }

  /** Frames that are complete (never LAST); may be empty while a chunk is being filled. */
  push(chunk: Uint8Array): Uint8Array[] {
    const bytes = this.normalizer === undefined ? chunk : this.normalizer.push(chunk);
    const frames: Uint8Array[] = [];
    this.append(bytes, frames);
    return frames;
  }

  /** Every frame still owed, the last one with LAST. */
  end(): Uint8Array[] {
    const frames: Uint8Array[] = [];
    if (this.normalizer !== undefined) this.append(this.normalizer.end(), frames);
    frames.push(bdatFrame(this.buffer.subarray(0, this.filled), true));
    this.filled = 0;
    return frames;
  }

  private append(bytes: Uint8Array, frames: Uint8Array[]): void {
    this.total += bytes.length;
    let at = 0;
    while (at < bytes.length) {
      if (this.filled === this.chunkSize) {
        frames.push(bdatFrame(this.buffer, false));
        this.filled = 0;
      }
      if (this.buffer.length < this.chunkSize) this.buffer = this.grow(bytes.length - at);
      const take = Math.min(this.chunkSize - this.filled, bytes.length - at);
      this.buffer.set(bytes.subarray(at, at + take), this.filled);
      this.filled += take;
      at += take;
    }
  }

  /** Grows the buffer geometrically so a small message never costs a whole chunk of memory. */
  private grow(wanted: number): Uint8Array {
    const need = Math.min(this.chunkSize, this.filled + wanted);
    if (need <= this.buffer.length) return this.buffer;
    const next = new Uint8Array(Math.min(this.chunkSize, Math.max(need, this.buffer.length * 2)));
    next.set(this.buffer.subarray(0, this.filled), 0);
    return next;
  }
}

/** A whole message as BDAT frames (the last with LAST), and its size; one copy per frame. */
export function bdatFrameMessage(
  message: Uint8Array,
  options: BdatChunkerOptions = {},
): { frames: Uint8Array[]; size: number } {
  const chunkSize = checkedChunkSize(options.chunkSize);
  let body = message;
  if (options.normalizeLineEnds !== false) {
    const normalizer = new LineEndNormalizer(false);
    const head = normalizer.push(message);
    const tail = normalizer.end();
    if (tail.length === 0) body = head;
    else {
      body = new Uint8Array(head.length + tail.length);
      body.set(head, 0);
      body.set(tail, head.length);
    }
  }
  const frames: Uint8Array[] = [];
  let at = 0;
  while (body.length - at > chunkSize) {
    frames.push(bdatFrame(body.subarray(at, at + chunkSize), false));
    at += chunkSize;
  }
  frames.push(bdatFrame(body.subarray(at), true));
  return { frames, size: body.length };
}
