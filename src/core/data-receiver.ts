/**
 * The server side of DATA framing (RFC 5321 §4.1.1.4, §4.5.2): a streaming receiver that removes
 * transparency dots and ends the message only at CRLF "." CRLF.
 *
 * A bare LF or a bare CR is never a line end here (RFC 5321 §2.3.8): it neither ends the message
 * nor starts a line whose dot could end it, so `\n.\n`, `\r.\r`, `\r\n.\n` and `\n.\r\n` are
 * ordinary message bytes. That is the whole defence against SMTP smuggling (December 2023): the
 * receiver and any later hop can never disagree about where the message ends. Bare line ends and
 * lines over 1000 octets are reported, so the session rejects the message after its real end.
 *
 * Speed: the scan jumps from LF to LF with `indexOf` (native), and the body comes out as views
 * into the caller's chunks, cut only where a transparency dot is removed.
 */

import { MAX_TEXT_LINE } from "./limits.ts";

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/** A CR that turned out to be bare after ".\r" at a line start, where it was held back. */
const LONE_CR = new Uint8Array([CR]);

/** Where the scan stands between two bytes; it survives across chunks. */
enum Position {
  /** At the start of a line: after CRLF, or at the very start of the message. */
  LineStart,
  /** Inside a line. */
  Text,
  /** After a "." at a line start (the dot is dropped). */
  Dot,
  /** After "." CR at a line start: LF now ends the message. */
  DotCr,
  /** The terminator has been seen. */
  Done,
}

export interface DataReceiverOptions {
  /**
   * Largest message accepted, in octets after un-stuffing (RFC 1870). Beyond it the receiver stops
   * handing out body bytes, keeps reading to the terminator, and reports `oversize`. 0: no limit.
   */
  maxSize?: number;
}

/** What one call to {@link DataReceiver.receive} produced. */
export interface DataProgress {
  /**
   * Message bytes from this chunk, in order, un-stuffed, CRLFs kept, terminator removed. Views into
   * the chunk that was passed in (no copies), so the chunk must not be reused by the caller.
   */
  body: Uint8Array[];
  /** True once CRLF "." CRLF has been seen; the receiver takes no further input. */
  done: boolean;
  /** Bytes after the terminator (the next commands), when `done`. */
  rest: Uint8Array | undefined;
}

/** Why a message is unacceptable, in the order the session reports them. */
export type DataViolation = "bare-lf" | "bare-cr" | "long-line" | "oversize";

export class DataReceiver {
  private position = Position.LineStart;
  /** Inside a line, the previous byte was CR (possibly in the previous chunk). */
  private afterCr = false;
  /** Octets of the current line so far, CRLF included, transparency dot excluded (§4.5.3.1.6). */
  private lineLength = 0;
  private readonly maxSize: number;

  /** Message octets so far (after un-stuffing), counted on past the limit. */
  size = 0;
  /** A LF not preceded by CR was seen (RFC 5321 §2.3.8). */
  bareLineFeed = false;
  /** A CR not followed by LF was seen (RFC 5321 §2.3.8). */
  bareCarriageReturn = false;
  /** A line longer than 1000 octets with its CRLF was seen (RFC 5321 §4.5.3.1.6). */
  longLine = false;
  /** The message grew past `maxSize`; body output stopped there. */
  oversize = false;

  constructor(options: DataReceiverOptions = {}) {
    this.maxSize = options.maxSize ?? 0;
  }

  get done(): boolean {
    return this.position === Position.Done;
  }

  /** The first reason to reject the message, or undefined when it is clean. */
  get violation(): DataViolation | undefined {
    if (this.oversize) return "oversize";
    if (this.bareLineFeed) return "bare-lf";
    if (this.bareCarriageReturn) return "bare-cr";
    if (this.longLine) return "long-line";
    return undefined;
  }

  /** Feeds the next bytes of the connection; any chunking of the input gives the same result. */
  receive(chunk: Uint8Array): DataProgress {
    const body: Uint8Array[] = [];
    if (this.position === Position.Done) return { body, done: true, rest: chunk };
    const n = chunk.length;
    let pos = 0;
    // Start of the pending run of body bytes that has not been handed out yet.
    let runStart = 0;
    // Cached next CR at or after `pos` (-1: none left in this chunk; -2: not searched yet), so the
    // bare-CR check is one linear pass over the chunk, not one search per line.
    let nextCr = -2;

    while (pos < n) {
      switch (this.position) {
        case Position.LineStart: {
          this.lineLength = 0;
          if (chunk[pos] === DOT) {
            this.emit(body, chunk, runStart, pos);
            pos++;
            runStart = pos;
            this.position = Position.Dot;
          } else {
            this.position = Position.Text;
            this.afterCr = false;
          }
          break;
        }
        case Position.Dot: {
          if (chunk[pos] === CR) {
            // Hold the CR back: with a LF after it, it belongs to the terminator.
            pos++;
            runStart = pos;
            this.position = Position.DotCr;
          } else {
            this.position = Position.Text;
            this.afterCr = false;
          }
          break;
        }
        case Position.DotCr: {
          if (chunk[pos] === LF) {
            this.position = Position.Done;
            return { body, done: true, rest: chunk.subarray(pos + 1) };
          }
          // ".\r" then something else: the dot was stuffing, the CR is a bare CR in the text.
          this.emitBytes(body, LONE_CR);
          this.lineLength = 1;
          this.position = Position.Text;
          this.afterCr = true;
          break;
        }
        case Position.Text: {
          if (this.afterCr) {
            this.afterCr = false;
            if (chunk[pos] === LF) {
              pos++;
              this.endLine(1);
              break;
            }
            this.bareCarriageReturn = true;
          }
          const lf = chunk.indexOf(LF, pos);
          const end = lf === -1 ? n : lf;
          if (!this.bareCarriageReturn) {
            if (nextCr !== -1 && nextCr < pos) nextCr = chunk.indexOf(CR, pos);
            // A CR is fine only as the last byte before the LF (or of the chunk, pending).
            if (nextCr !== -1 && nextCr < end - 1) this.bareCarriageReturn = true;
          }
          if (lf === -1) {
            this.lineLength += n - pos;
            if (this.lineLength > MAX_TEXT_LINE) this.longLine = true;
            this.afterCr = chunk[n - 1] === CR;
            pos = n;
            break;
          }
          const crlf = lf > pos && chunk[lf - 1] === CR;
          const taken = lf + 1 - pos;
          pos = lf + 1;
          if (crlf) this.endLine(taken);
          else {
            // A bare LF is text: the line goes on.
            this.bareLineFeed = true;
            this.lineLength += taken;
          }
          break;
        }
      }
    }
    this.emit(body, chunk, runStart, n);
    return { body, done: false, rest: undefined };
  }

  /** Closes the current line, whose last `taken` octets (ending in CRLF) were just consumed. */
  private endLine(taken: number): void {
    this.lineLength += taken;
    if (this.lineLength > MAX_TEXT_LINE) this.longLine = true;
    this.position = Position.LineStart;
  }

  private emit(body: Uint8Array[], chunk: Uint8Array, start: number, end: number): void {
    if (end > start) this.emitBytes(body, chunk.subarray(start, end));
  }

  private emitBytes(body: Uint8Array[], bytes: Uint8Array): void {
    this.size += bytes.length;
    if (this.maxSize > 0 && this.size > this.maxSize) {
      this.oversize = true;
      return;
    }
    body.push(bytes);
  }
}
