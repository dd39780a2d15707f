/**
 * The message body as the backend sees it: an AsyncIterable of chunks, fed by the connection
 * driver while DATA or BDAT arrives. It counts the bytes waiting to be read so the driver can
 * pause the socket when the backend falls behind (memory stays flat for big messages) and resume
 * when it catches up.
 */

export class MessageStream implements AsyncIterable<Uint8Array> {
  private readonly queue: Uint8Array[] = [];
  private head = 0;
  private ended = false;
  private failure: Error | undefined;
  private waiter:
    | { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (e: Error) => void }
    | undefined;
  private iterating = false;
  /** Bytes pushed and not yet read by the backend. */
  buffered = 0;
  /** Called when `buffered` falls to `lowWater` or below after a read. */
  onDrain: (() => void) | undefined;

  constructor(private readonly lowWater = 0) {}

  /** Queues body bytes; the caller must not reuse the buffer afterwards. */
  push(bytes: Uint8Array): void {
    if (this.ended || this.failure !== undefined) return;
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      waiter.resolve({ value: bytes, done: false });
      return;
    }
    this.queue.push(bytes);
    this.buffered += bytes.length;
  }

  /** The message is complete: the iteration ends after the queued chunks. */
  end(): void {
    if (this.ended || this.failure !== undefined) return;
    this.ended = true;
    const waiter = this.waiter;
    if (waiter !== undefined && this.head >= this.queue.length) {
      this.waiter = undefined;
      waiter.resolve({ value: undefined, done: true });
    }
  }

  /** The message is lost (rejected, reset, connection gone): the iteration throws `error`. */
  fail(error: Error): void {
    if (this.ended || this.failure !== undefined) return;
    this.failure = error;
    this.queue.length = 0;
    this.head = 0;
    this.buffered = 0;
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      waiter.reject(error);
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.iterating) throw new Error("a message can be read only once");
    this.iterating = true;
    return {
      next: () => this.next(),
      return: async () => {
        // The backend stopped reading: drop what is queued so the driver never waits on it.
        this.queue.length = 0;
        this.head = 0;
        this.buffered = 0;
        this.ended = true;
        this.onDrain?.();
        return { value: undefined, done: true };
      },
    };
  }

  private next(): Promise<IteratorResult<Uint8Array>> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.head < this.queue.length) {
      const value = this.queue[this.head] as Uint8Array;
      this.queue[this.head] = EMPTY;
      this.head++;
      if (this.head === this.queue.length) {
        this.queue.length = 0;
        this.head = 0;
      }
      this.buffered -= value.length;
      if (this.buffered <= this.lowWater) this.onDrain?.();
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }
}

const EMPTY = new Uint8Array(0);

/** For backends that want the whole message at once (and for tests); see src/core/bytes.ts. */
export { readMessage } from "../core/bytes.ts";
