import { describe, expect, test } from "bun:test";
import { PreparedMessage } from "../../src/client/prepared-message.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

describe("PreparedMessage", () => {
  test("DATA form is stuffed once and shared; size is the CRLF-normalised length", () => {
    const m = new PreparedMessage(enc.encode("a\n.b"));
    const first = m.dataBody();
    expect(m.dataBody()).toBe(first);
    expect(first.kind === "data" && dec.decode(first.bytes)).toBe("a\r\n..b\r\n.\r\n");
    expect(m.size).toBe(7);
  });

  test("BDAT form is framed once per chunk size", () => {
    const m = new PreparedMessage(enc.encode("abc\r\n"));
    const form = m.bdatBody(2);
    expect(m.bdatBody(2)).toBe(form);
    expect(form.kind === "bdat" && form.frames.map((f) => dec.decode(f))).toEqual([
      "BDAT 2\r\nab",
      "BDAT 2\r\nc\r",
      "BDAT 1 LAST\r\n\n",
    ]);
    expect(m.bdatBody()).not.toBe(form);
  });

  test("8-bit content is detected unless the caller says otherwise; binary is never stuffed", () => {
    expect(new PreparedMessage(enc.encode("ascii")).traits.eightBit).toBe(false);
    expect(new PreparedMessage(enc.encode("é")).traits.eightBit).toBe(true);
    expect(new PreparedMessage(enc.encode("é"), { eightBit: false }).traits.eightBit).toBe(false);
    const binary = new PreparedMessage(Uint8Array.of(0, 13, 255), { binary: true });
    expect(binary.size).toBe(3);
    expect(() => binary.dataBody()).toThrow();
    const form = binary.bdatBody();
    expect(form.kind === "bdat" && Array.from(form.frames[0] ?? []).slice(-3)).toEqual([0, 13, 255]);
  });
});
