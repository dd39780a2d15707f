import { describe, expect, test } from "bun:test";
import { newQueueId, normalizeQueueId, QUEUE_ID_LENGTH } from "../../src/queue/queue-id.ts";

describe("newQueueId", () => {
  test("fixed length, Crockford base32 only", () => {
    for (let i = 0; i < 200; i++) {
      const id = newQueueId();
      expect(id).toHaveLength(QUEUE_ID_LENGTH);
      expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]+$/);
    }
  });

  test("IDs sort by arrival time", () => {
    const times = [0, 1, 31, 32, 1_000_000, 1_700_000_000_000, 1_700_000_000_001, 2 ** 40 - 1];
    const ids = times.map((t) => newQueueId(t));
    expect([...ids].sort()).toEqual(ids);
  });

  test("two IDs in the same millisecond differ", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newQueueId(42)));
    expect(ids.size).toBe(1000);
  });
});

describe("normalizeQueueId", () => {
  test("accepts any case and surrounding space, refuses other text", () => {
    const id = newQueueId();
    expect(normalizeQueueId(` ${id.toLowerCase()}\n`)).toBe(id);
    expect(normalizeQueueId("")).toBeUndefined();
    expect(normalizeQueueId(`${id}X`)).toBeUndefined();
    expect(normalizeQueueId(id.replace(/.$/, "U"))).toBeUndefined();
  });
});
