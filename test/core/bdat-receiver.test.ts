import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { BdatReceiver } from "../../src/core/bdat-receiver.ts";

const bytes = (s: string) => Buffer.from(s, "latin1");
const text = (b: Uint8Array | undefined) => (b === undefined ? "" : Buffer.from(b).toString("latin1"));

/** Feeds `input` cut at `cuts`, returns the chunk octets and what followed them. */
function run(size: number, input: string, cuts: number[]) {
  const receiver = new BdatReceiver(size);
  const raw = bytes(input);
  let body = "";
  let rest = "";
  let done = false;
  let prev = 0;
  for (const cut of [...cuts, raw.length]) {
    const part = raw.subarray(prev, cut);
    prev = cut;
    if (done) {
      rest += text(part);
      continue;
    }
    const progress = receiver.receive(part);
    body += text(progress.body);
    if (progress.done) {
      done = true;
      rest += text(progress.rest);
    }
  }
  return { body, rest, done };
}

describe("BdatReceiver", () => {
  test("takes exactly <size> octets and hands back the rest", () => {
    expect(run(5, "hello\r\nBDAT 0 LAST\r\n", [])).toEqual({
      body: "hello",
      rest: "\r\nBDAT 0 LAST\r\n",
      done: true,
    });
  });

  test("dots, CRLF.CRLF and bare line ends are plain octets", () => {
    const payload = "a\r\n.\r\nMAIL FROM:<x@y>\r\n\n.\n\r";
    expect(run(payload.length, `${payload}QUIT\r\n`, [])).toEqual({
      body: payload,
      rest: "QUIT\r\n",
      done: true,
    });
  });

  test("a zero-size chunk is done at once", () => {
    const receiver = new BdatReceiver(0);
    expect(receiver.done).toBe(true);
    const progress = receiver.receive(bytes("QUIT\r\n"));
    expect(progress.done).toBe(true);
    expect(text(progress.rest)).toBe("QUIT\r\n");
  });

  test("not done until the last octet arrives", () => {
    const receiver = new BdatReceiver(4);
    const first = receiver.receive(bytes("ab"));
    expect(first.done).toBe(false);
    expect(receiver.remaining).toBe(2);
    const second = receiver.receive(bytes("cdNOOP"));
    expect(second.done).toBe(true);
    expect(text(second.body)).toBe("cd");
    expect(text(second.rest)).toBe("NOOP");
  });

  test("rejects a size that is not a size", () => {
    expect(() => new BdatReceiver(-1)).toThrow(RangeError);
    expect(() => new BdatReceiver(1.5)).toThrow(RangeError);
  });

  test("the same result for any chunking: whole, byte by byte, random", () => {
    const payload = "\x00\xff.\r\n.\r\nBDAT 9\r\n";
    const input = `${payload}NEXT`;
    const expected = { body: payload, rest: "NEXT", done: true };
    expect(run(payload.length, input, [])).toEqual(expected);
    expect(
      run(
        payload.length,
        input,
        Array.from({ length: input.length - 1 }, (_, i) => i + 1),
      ),
    ).toEqual(expected);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: input.length - 1 }), { maxLength: 8 }), (raw) => {
        const cuts = [...new Set(raw)].sort((a, b) => a - b);
        expect(run(payload.length, input, cuts)).toEqual(expected);
      }),
    );
  });
});
