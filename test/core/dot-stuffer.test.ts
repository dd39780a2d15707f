import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { DotStuffer, dotStuffMessage, LineEndNormalizer } from "../../src/core/dot-stuffer.ts";

const enc = new TextEncoder();
const dec = new TextDecoder("latin1");

/** The CRLF-normalised message: every CRLF, bare CR and bare LF becomes CRLF; a final CRLF is added. */
function normalise(s: string): string {
  const t = s.replace(/\r\n|\r|\n/g, "\r\n");
  return t === "" || t.endsWith("\r\n") ? t : `${t}\r\n`;
}

/** An independent reading of RFC 5321 §4.5.2 on the receiving side. */
function unstuff(wire: string): string {
  expect(wire.endsWith(".\r\n")).toBe(true);
  const body = wire.slice(0, -3);
  if (body === "") return "";
  expect(body.endsWith("\r\n")).toBe(true);
  const lines = body.slice(0, -2).split("\r\n");
  return `${lines.map((line) => (line.startsWith(".") ? line.slice(1) : line)).join("\r\n")}\r\n`;
}

function stuffInChunks(input: Uint8Array, cuts: number[]): { wire: string; size: number } {
  const stuffer = new DotStuffer();
  let wire = "";
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    wire += dec.decode(stuffer.push(input.subarray(from, cut)));
    from = cut;
  }
  wire += dec.decode(stuffer.end());
  return { wire, size: stuffer.size };
}

function latin1Bytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/** Every way to feed `input`: whole, byte by byte, and at each single split point. */
function everyChunking(input: Uint8Array): number[][] {
  const ways: number[][] = [[], Array.from({ length: input.length }, (_, i) => i)];
  for (let i = 0; i <= input.length; i++) ways.push([i]);
  return ways;
}

const cases: [string, string][] = [
  ["", ".\r\n"],
  ["a", "a\r\n.\r\n"],
  ["a\r\n", "a\r\n.\r\n"],
  [".", "..\r\n.\r\n"],
  [".\r\n", "..\r\n.\r\n"],
  ["a\r\n.\r\nb", "a\r\n..\r\nb\r\n.\r\n"],
  ["a\n.\nb\n", "a\r\n..\r\nb\r\n.\r\n"],
  ["a\r.\rb", "a\r\n..\r\nb\r\n.\r\n"],
  ["a\r", "a\r\n.\r\n"],
  ["\r\r\n\n", "\r\n\r\n\r\n.\r\n"],
  ["..x\r\n", "...x\r\n.\r\n"],
  ["x.y\r\n .z\r\n", "x.y\r\n .z\r\n.\r\n"],
  ["\r\n.\n", "\r\n..\r\n.\r\n"],
  ["\n.\r\nMAIL FROM:<x>\r\n", "\r\n..\r\nMAIL FROM:<x>\r\n.\r\n"],
  ["\r\n\u0000.\r\n", "\r\n\u0000.\r\n.\r\n"],
];

describe("DotStuffer", () => {
  test.each(cases)("%j in every chunking", (input, expected) => {
    const bytes = latin1Bytes(input);
    for (const cuts of everyChunking(bytes)) {
      const { wire, size } = stuffInChunks(bytes, cuts);
      expect(wire).toBe(expected);
      expect(size).toBe(normalise(input).length);
    }
  });

  test("returns the chunk itself when nothing needs changing", () => {
    const chunk = enc.encode("Subject: hi\r\n\r\nbody\r\n");
    const stuffer = new DotStuffer();
    expect(stuffer.push(chunk)).toBe(chunk);
    expect(dec.decode(stuffer.end())).toBe(".\r\n");
  });

  test("dotStuffMessage gives one buffer and the RFC 1870 size", () => {
    const { bytes, size } = dotStuffMessage(enc.encode("a\n.b"));
    expect(dec.decode(bytes)).toBe("a\r\n..b\r\n.\r\n");
    expect(size).toBe("a\r\n.b\r\n".length);
  });

  test("a stuffer can be reused after end()", () => {
    const stuffer = new DotStuffer();
    stuffer.push(enc.encode("x"));
    stuffer.end();
    expect(dec.decode(stuffer.push(enc.encode(".y\r\n")))).toBe("..y\r\n");
  });

  const byteWithSpecials = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(13, 10, 46) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 255 }) },
  );
  const message = fc.array(byteWithSpecials, { maxLength: 200 }).map((a) => Uint8Array.from(a));
  const chunked = message.chain((m) =>
    fc.tuple(
      fc.constant(m),
      fc
        .uniqueArray(fc.integer({ min: 0, max: m.length }), { maxLength: 12 })
        .map((c) => c.sort((a, b) => a - b)),
    ),
  );

  test("property: un-stuffing gives the CRLF-normalised input, for any chunking", () => {
    fc.assert(
      fc.property(chunked, ([input, cuts]) => {
        const { wire, size } = stuffInChunks(input, cuts);
        const expected = normalise(dec.decode(input));
        expect(unstuff(wire)).toBe(expected);
        expect(size).toBe(expected.length);
        expect(wire).toBe(stuffInChunks(input, []).wire);
      }),
      { numRuns: 2000 },
    );
  });

  test("property: no bare CR or LF, and no line is a lone dot before the terminator", () => {
    fc.assert(
      fc.property(chunked, ([input, cuts]) => {
        const { wire } = stuffInChunks(input, cuts);
        expect(/\r(?!\n)|(?<!\r)\n/.test(wire)).toBe(false);
        const lines = wire.slice(0, -3).split("\r\n");
        for (const line of lines) if (line.startsWith(".")) expect(line.startsWith("..")).toBe(true);
        expect(wire.slice(0, -3).includes("\r\n.\r\n")).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("LineEndNormalizer without stuffing", () => {
  test("normalises line ends, keeps dots, ends with CRLF and no terminator", () => {
    const input = latin1Bytes(".a\n.\rb\r");
    for (const cuts of everyChunking(input)) {
      const n = new LineEndNormalizer(false);
      let out = "";
      let from = 0;
      for (const cut of [...cuts, input.length]) {
        out += dec.decode(n.push(input.subarray(from, cut)));
        from = cut;
      }
      out += dec.decode(n.end());
      expect(out).toBe(".a\r\n.\r\nb\r\n");
      expect(n.size).toBe(out.length);
    }
  });

  test("adds nothing to an empty input", () => {
    const n = new LineEndNormalizer(false);
    expect(n.end().length).toBe(0);
    expect(n.atLineEnd).toBe(true);
  });
});
