import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { BdatChunker, bdatFrameMessage, bdatHeader } from "../../src/core/bdat-chunker.ts";

const dec = new TextDecoder("latin1");

function latin1Bytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

interface ParsedChunk {
  size: number;
  last: boolean;
  payload: string;
}

/** An independent reading of RFC 3030 §2 on the receiving side. */
function parseFrames(wire: string): ParsedChunk[] {
  const chunks: ParsedChunk[] = [];
  let at = 0;
  while (at < wire.length) {
    const eol = wire.indexOf("\r\n", at);
    expect(eol).toBeGreaterThan(at);
    const m = /^BDAT (\d+)( LAST)?$/.exec(wire.slice(at, eol));
    expect(m).not.toBeNull();
    const size = Number(m?.[1]);
    const payload = wire.slice(eol + 2, eol + 2 + size);
    expect(payload.length).toBe(size);
    chunks.push({ size, last: m?.[2] !== undefined, payload });
    at = eol + 2 + size;
  }
  return chunks;
}

function frameInPieces(
  input: Uint8Array,
  cuts: number[],
  chunkSize: number,
  normalizeLineEnds = true,
): string {
  const chunker = new BdatChunker({ chunkSize, normalizeLineEnds });
  let wire = "";
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    for (const frame of chunker.push(input.subarray(from, cut))) wire += dec.decode(frame);
    from = cut;
  }
  for (const frame of chunker.end()) wire += dec.decode(frame);
  return wire;
}

describe("bdatHeader", () => {
  test("formats the command", () => {
    expect(dec.decode(bdatHeader(986, false))).toBe("BDAT 986\r\n");
    expect(dec.decode(bdatHeader(0, true))).toBe("BDAT 0 LAST\r\n");
  });
  test("refuses a negative or fractional size", () => {
    expect(() => bdatHeader(-1, true)).toThrow(RangeError);
    expect(() => bdatHeader(1.5, true)).toThrow(RangeError);
  });
});

describe("BdatChunker", () => {
  test("a small message is one LAST chunk, line ends normalised, no stuffing", () => {
    const wire = frameInPieces(latin1Bytes(".a\nb"), [], 1024);
    expect(wire).toBe("BDAT 7 LAST\r\n.a\r\nb\r\n");
  });

  test("an empty message is BDAT 0 LAST", () => {
    expect(frameInPieces(new Uint8Array(0), [], 16)).toBe("BDAT 0 LAST\r\n");
  });

  test("a message of exactly one chunk does not end with an empty LAST chunk", () => {
    const wire = frameInPieces(latin1Bytes("abcd\r\n"), [2, 4], 6);
    expect(wire).toBe("BDAT 6 LAST\r\nabcd\r\n");
  });

  test("binary mode keeps every octet", () => {
    const wire = frameInPieces(latin1Bytes("a\rb\n\u0000"), [1], 2, false);
    expect(parseFrames(wire).map((c) => c.payload)).toEqual(["a\r", "b\n", "\u0000"]);
  });

  test("rejects a chunk size below one", () => {
    expect(() => new BdatChunker({ chunkSize: 0 })).toThrow(RangeError);
  });

  const input = fc.array(fc.oneof(fc.constantFrom(13, 10, 46), fc.integer({ min: 0, max: 255 })), {
    maxLength: 120,
  });
  const scenario = input.chain((a) =>
    fc.tuple(
      fc.constant(Uint8Array.from(a)),
      fc
        .uniqueArray(fc.integer({ min: 0, max: a.length }), { maxLength: 8 })
        .map((c) => c.sort((x, y) => x - y)),
      fc.integer({ min: 1, max: 40 }),
      fc.boolean(),
    ),
  );

  test("property: the payloads join to the (normalised) input; only the last is LAST; chunks are full", () => {
    fc.assert(
      fc.property(scenario, ([bytes, cuts, chunkSize, normalize]) => {
        const wire = frameInPieces(bytes, cuts, chunkSize, normalize);
        const chunks = parseFrames(wire);
        const text = dec.decode(bytes);
        const normalised = text.replace(/\r\n|\r|\n/g, "\r\n");
        const expected =
          !normalize || normalised === "" || normalised.endsWith("\r\n") ? normalised : `${normalised}\r\n`;
        expect(chunks.map((c) => c.payload).join("")).toBe(normalize ? expected : text);
        chunks.forEach((c, i) => {
          expect(c.last).toBe(i === chunks.length - 1);
          if (i < chunks.length - 1) expect(c.size).toBe(chunkSize);
        });
        const whole = bdatFrameMessage(bytes, { chunkSize, normalizeLineEnds: normalize });
        expect(whole.frames.map((f) => dec.decode(f)).join("")).toBe(wire);
        expect(whole.size).toBe(normalize ? expected.length : bytes.length);
      }),
      { numRuns: 1500 },
    );
  });
});
