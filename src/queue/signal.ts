/**
 * A level-free wake-up: everyone waiting now is woken by the next fire(); later waiters wait for
 * the one after. One shared promise, so a loop that waits on it every turn holds no growing list.
 */
export class Signal {
  #promise: Promise<void>;
  #resolve: () => void = () => {};

  constructor() {
    this.#promise = this.#next();
  }

  #next(): Promise<void> {
    return new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  wait(): Promise<void> {
    return this.#promise;
  }

  fire(): void {
    const resolve = this.#resolve;
    this.#promise = this.#next();
    resolve();
  }
}

/** A timer that can be cancelled, so a woken loop leaves no sleeping timers behind. */
export function sleep(ms: number): { done: Promise<void>; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
    timer = setTimeout(resolve, Math.max(0, ms));
  });
  return {
    done,
    cancel: () => {
      clearTimeout(timer);
      finish();
    },
  };
}
