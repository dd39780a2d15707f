import { describe, expect, test } from "bun:test";
import {
  DEFAULT_BACKOFF_MAX_MS,
  DEFAULT_BACKOFF_MIN_MS,
  DEFAULT_MAX_AGE_MS,
  expired,
  retryDelay,
} from "../../src/queue/backoff.ts";

describe("retryDelay", () => {
  test("Postfix's defaults: 300 s first, doubling, never more than 4000 s apart", () => {
    const delays = [1, 2, 3, 4, 5, 6, 50].map((n) =>
      retryDelay(n, DEFAULT_BACKOFF_MIN_MS, DEFAULT_BACKOFF_MAX_MS),
    );
    expect(delays).toEqual([300_000, 600_000, 1_200_000, 2_400_000, 4_000_000, 4_000_000, 4_000_000]);
  });

  test("a minimum above the maximum is capped by the maximum", () => {
    expect(retryDelay(1, 10_000, 5_000)).toBe(5_000);
  });

  test("attempt counts below one act like the first", () => {
    expect(retryDelay(0, 1000, 8000)).toBe(1000);
    expect(retryDelay(-3, 1000, 8000)).toBe(1000);
  });

  test("huge attempt counts stay finite", () => {
    expect(retryDelay(10_000, 1, Number.MAX_SAFE_INTEGER)).toBe(2 ** 30);
  });
});

describe("expired", () => {
  test("at max age exactly, and after it", () => {
    expect(expired(0, DEFAULT_MAX_AGE_MS - 1, DEFAULT_MAX_AGE_MS)).toBe(false);
    expect(expired(0, DEFAULT_MAX_AGE_MS, DEFAULT_MAX_AGE_MS)).toBe(true);
    expect(expired(1000, 1000 + 5 * 86_400_000 + 1, DEFAULT_MAX_AGE_MS)).toBe(true);
  });
});
