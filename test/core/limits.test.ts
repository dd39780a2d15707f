import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import * as limits from "../../src/core/limits.ts";

describe("limits", () => {
  test("RFC 5321 §4.5.3.1 values", () => {
    expect([
      limits.MAX_LOCAL_PART,
      limits.MAX_DOMAIN,
      limits.MAX_PATH,
      limits.MAX_COMMAND_LINE,
      limits.MAX_TEXT_LINE,
      limits.MAX_REPLY_LINE,
      limits.MIN_RECIPIENTS,
    ]).toEqual([64, 255, 256, 512, 1000, 512, 100]);
  });

  test("extension allowances only ever raise the base command limit", () => {
    expect(limits.MAX_MAIL_LINE).toBeGreaterThan(limits.MAX_COMMAND_LINE);
    expect(limits.MAX_RCPT_LINE).toBeGreaterThan(limits.MAX_COMMAND_LINE);
    expect(limits.MAX_SASL_LINE).toBe(12288);
  });

  test("octetLength counts UTF-8 octets", () => {
    expect(limits.octetLength("")).toBe(0);
    expect(limits.octetLength("abc")).toBe(3);
    expect(limits.octetLength("é")).toBe(2);
    expect(limits.octetLength("€")).toBe(3);
    expect(limits.octetLength("😀")).toBe(4);
    expect(limits.octetLength("\ud800")).toBe(3);
  });

  test("property: octetLength agrees with TextEncoder", () => {
    const encoder = new TextEncoder();
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 50 }), (s) => {
        expect(limits.octetLength(s)).toBe(encoder.encode(s).length);
      }),
      { numRuns: 1000 },
    );
  });
});
