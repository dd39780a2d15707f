import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { concatBytes, readMessage } from "../../src/core/bytes.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function* chunksOf(bytes: Uint8Array, cuts: number[]): AsyncGenerator<Uint8Array> {
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    yield bytes.slice(from, cut);
    from = cut;
  }
}

describe("concatBytes", () => {
  test("no parts, empty parts", () => {
    expect(concatBytes([])).toEqual(new Uint8Array(0));
    expect(concatBytes([new Uint8Array(0), new Uint8Array(0)])).toEqual(new Uint8Array(0));
  });

  test("parts in order, copied (the result does not alias a part)", () => {
    const first = enc.encode("MAIL ");
    const joined = concatBytes([first, enc.encode(""), enc.encode("FROM:<a@b>")]);
    expect(dec.decode(joined)).toBe("MAIL FROM:<a@b>");
    first[0] = 0x78;
    expect(dec.decode(joined)).toBe("MAIL FROM:<a@b>");
  });
});

describe("readMessage", () => {
  const message = enc.encode("Subject: hi\r\n\r\nbody line\r\n");

  test("in one piece, byte by byte, and at each split point", async () => {
    expect(await readMessage(chunksOf(message, []))).toEqual(message);
    const everyByte = Array.from({ length: message.length - 1 }, (_, i) => i + 1);
    expect(await readMessage(chunksOf(message, everyByte))).toEqual(message);
    for (let cut = 0; cut <= message.length; cut++) {
      expect(await readMessage(chunksOf(message, [cut]))).toEqual(message);
    }
  });

  test("a prefix comes first, the body after it", async () => {
    const prefix = enc.encode("Received: from x\r\n");
    const raw = await readMessage(chunksOf(message, [3, 10]), prefix);
    expect(dec.decode(raw)).toBe(`Received: from x\r\n${dec.decode(message)}`);
  });

  test("an empty message is the prefix alone, or nothing", async () => {
    expect(await readMessage(chunksOf(new Uint8Array(0), []))).toEqual(new Uint8Array(0));
    expect(dec.decode(await readMessage(chunksOf(new Uint8Array(0), []), enc.encode("X: 1\r\n")))).toBe(
      "X: 1\r\n",
    );
  });

  test("at random split points the bytes come back as they were", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat(300)),
        fc.uint8Array({ maxLength: 20 }),
        async (bytes, rawCuts, prefix) => {
          const cuts = [...new Set(rawCuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const raw = await readMessage(chunksOf(bytes, cuts), prefix);
          expect(raw).toEqual(concatBytes([prefix, bytes]));
          expect(raw.subarray(prefix.length)).toEqual(bytes);
        },
      ),
    );
  });

  test("a failing stream rejects with its error", async () => {
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield enc.encode("part");
      throw new Error("connection lost");
    }
    await expect(readMessage(broken())).rejects.toThrow("connection lost");
  });
});
