import { describe, expect, test } from "bun:test";
import { MESSAGE_ID_LENGTH, newMessageId } from "../../src/store/message-id.ts";

describe("newMessageId", () => {
  test("22 base-62 characters, unique", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newMessageId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(new RegExp(`^[0-9A-Za-z]{${MESSAGE_ID_LENGTH}}$`));
  });

  test("IDs sort by the time they were made", () => {
    const times = [0, 1, 61, 62, 1_700_000_000_000, 1_700_000_000_001, 4_102_444_800_000];
    const ids = times.map((time) => newMessageId(time));
    expect([...ids].sort()).toEqual(ids);
  });
});
