import { describe, expect, test } from "bun:test";
import { formatDate } from "../../src/mime/date.ts";

describe("formatDate", () => {
  test("RFC 5322 §3.3 date-time in UTC with zero padding", () => {
    expect(formatDate(new Date(Date.UTC(2025, 6, 1, 9, 5, 3)))).toBe("Tue, 01 Jul 2025 09:05:03 +0000");
    expect(formatDate(new Date(0))).toBe("Thu, 01 Jan 1970 00:00:00 +0000");
    expect(formatDate(new Date(Date.UTC(2024, 1, 29, 23, 59, 59)))).toBe("Thu, 29 Feb 2024 23:59:59 +0000");
  });

  test("an invalid Date is refused", () => {
    expect(() => formatDate(new Date(Number.NaN))).toThrow(RangeError);
  });
});
