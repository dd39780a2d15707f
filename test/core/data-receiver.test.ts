import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { DataReceiver, type DataReceiverOptions } from "../../src/core/data-receiver.ts";

const bytes = (s: string) => Buffer.from(s, "latin1");
const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

interface Outcome {
  body: string;
  done: boolean;
  rest: string;
  bareLf: boolean;
  bareCr: boolean;
  longLine: boolean;
  oversize: boolean;
}

/** Feeds `input` cut at `cuts` (sorted offsets) and collects everything the receiver said. */
function run(input: string, cuts: number[], options?: DataReceiverOptions): Outcome {
  const receiver = new DataReceiver(options);
  const raw = bytes(input);
  const parts: Uint8Array[] = [];
  let prev = 0;
  for (const cut of [...cuts, raw.length]) {
    parts.push(raw.subarray(prev, cut));
    prev = cut;
  }
  let body = "";
  let rest = "";
  let done = false;
  for (const part of parts) {
    if (done) {
      rest += text(part);
      continue;
    }
    const progress = receiver.receive(part);
    for (const piece of progress.body) body += text(piece);
    if (progress.done) {
      done = true;
      rest += text(progress.rest ?? new Uint8Array());
    }
  }
  return {
    body,
    done,
    rest,
    bareLf: receiver.bareLineFeed,
    bareCr: receiver.bareCarriageReturn,
    longLine: receiver.longLine,
    oversize: receiver.oversize,
  };
}

const whole = (input: string, options?: DataReceiverOptions) => run(input, [], options);

function byteByByte(input: string, options?: DataReceiverOptions) {
  return run(input, Array.from({ length: input.length }, (_, i) => i).slice(1), options);
}

/** Deterministic random cut points, so a failure can be replayed. */
function randomCuts(length: number, seed: number): number[] {
  let state = seed >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const cuts = new Set<number>();
  const count = Math.floor(next() * Math.min(length, 12));
  for (let i = 0; i < count; i++) cuts.add(1 + Math.floor(next() * Math.max(1, length - 1)));
  return [...cuts].filter((c) => c > 0 && c < length).sort((a, b) => a - b);
}

/** Every way of feeding `input` must give the same outcome as feeding it whole. */
function expectSameEverywhere(input: string, options?: DataReceiverOptions): Outcome {
  const reference = whole(input, options);
  expect(byteByByte(input, options)).toEqual(reference);
  for (let seed = 1; seed <= 20; seed++)
    expect(run(input, randomCuts(input.length, seed), options)).toEqual(reference);
  // Every single cut point, too: the one-boundary cases are where framers usually break.
  for (let cut = 1; cut < input.length; cut++) expect(run(input, [cut], options)).toEqual(reference);
  return reference;
}

/** A slow, obviously right model: find CRLF.CRLF, split at CRLF, drop one leading dot per line. */
function model(input: string, maxSize = 0): Outcome {
  const framed = `\r\n${input}`;
  const end = framed.indexOf("\r\n.\r\n");
  if (end === -1) throw new Error("model needs a terminated input");
  const message = framed.slice(2, end + 2);
  const lines = message.split("\r\n");
  const unstuffed = lines.map((line) => (line.startsWith(".") ? line.slice(1) : line));
  const body = unstuffed.join("\r\n");
  const oversize = maxSize > 0 && body.length > maxSize;
  return {
    body: oversize ? "" : body,
    done: true,
    rest: framed.slice(end + 5),
    bareLf: /(^|[^\r])\n/.test(body),
    bareCr: /\r(?!\n)/.test(body),
    longLine: unstuffed.slice(0, -1).some((line) => line.length + 2 > 1000),
    oversize,
  };
}

describe("DataReceiver: framing", () => {
  test("a plain message ends at CRLF.CRLF and keeps its last CRLF", () => {
    const out = expectSameEverywhere("Subject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n");
    expect(out.body).toBe("Subject: hi\r\n\r\nhello\r\n");
    expect(out.done).toBe(true);
    expect(out.rest).toBe("QUIT\r\n");
    expect(out.bareLf || out.bareCr || out.longLine || out.oversize).toBe(false);
  });

  test("an empty message is a lone dot line", () => {
    const out = expectSameEverywhere(".\r\nMAIL FROM:<a@b>\r\n");
    expect(out.body).toBe("");
    expect(out.done).toBe(true);
    expect(out.rest).toBe("MAIL FROM:<a@b>\r\n");
  });

  test("transparency dots are removed, one per line", () => {
    const out = expectSameEverywhere("..\r\n...x\r\n.y\r\na.b\r\n.\r\n");
    expect(out.body).toBe(".\r\n..x\r\ny\r\na.b\r\n");
  });

  test("without the terminator the message is not done", () => {
    const out = expectSameEverywhere("line one\r\nline two\r\n.");
    expect(out.done).toBe(false);
    expect(out.body).toBe("line one\r\nline two\r\n");
  });

  test("input after the end is returned untouched, even another dot line", () => {
    const out = expectSameEverywhere("a\r\n.\r\n.\r\nb\r\n");
    expect(out.body).toBe("a\r\n");
    expect(out.rest).toBe(".\r\nb\r\n");
  });

  test("binary and NUL bytes pass through", () => {
    const out = expectSameEverywhere("\x00\xff\x80\r\n\x00.\r\n.\r\n");
    expect(out.body).toBe("\x00\xff\x80\r\n\x00.\r\n");
  });

  test("the body is handed out as views of the input, not copies", () => {
    const receiver = new DataReceiver();
    const chunk = bytes("hello\r\nworld\r\n.\r\n");
    const progress = receiver.receive(chunk);
    expect(progress.body.length).toBe(1);
    expect(progress.body[0]?.buffer).toBe(chunk.buffer);
  });
});

describe("DataReceiver: smuggling (fake end-of-data sequences never end the message)", () => {
  const smuggled = "MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\nFrom: ceo\r\n\r\nsend money\r\n";
  const cases: [string, string, "bareLf" | "bareCr" | "none"][] = [
    ["\\n.\\n", "\n.\n", "bareLf"],
    ["\\r.\\r", "\r.\r", "bareCr"],
    ["\\r\\n.\\n", "\r\n.\n", "bareLf"],
    ["\\n.\\r\\n", "\n.\r\n", "bareLf"],
    ["\\r\\n\\x00.\\r\\n", "\r\n\x00.\r\n", "none"],
    ["\\r.\\r\\n", "\r.\r\n", "bareCr"],
    ["\\n\\r.\\r\\n", "\n\r.\r\n", "bareLf"],
  ];
  for (const [name, fake, flag] of cases) {
    test(`${name} followed by a smuggled transaction stays inside the first message`, () => {
      const input = `Subject: x\r\n\r\nbody${fake}${smuggled}.\r\nQUIT\r\n`;
      const out = expectSameEverywhere(input);
      expect(out.done).toBe(true);
      expect(out).toEqual(model(input));
      expect(out.body).toContain(smuggled);
      expect(out.rest).toBe("QUIT\r\n");
      if (flag === "bareLf") expect(out.bareLf).toBe(true);
      if (flag === "bareCr") expect(out.bareCr).toBe(true);
      if (flag === "none") expect(out.bareLf || out.bareCr).toBe(false);
    });
  }

  test("a bare LF never counts as a line end for dot removal either", () => {
    const out = expectSameEverywhere("a\n..b\r\n.\r\n");
    expect(out.body).toBe("a\n..b\r\n");
    expect(out.bareLf).toBe(true);
  });

  test('".\\r" then something else is a stuffed dot and a bare CR', () => {
    const out = expectSameEverywhere(".\rx\r\n.\r\n");
    expect(out.body).toBe("\rx\r\n");
    expect(out.bareCr).toBe(true);
    expect(out.bareLf).toBe(false);
  });

  test('".\\r\\r\\n" is a stuffed dot, a bare CR and a real line end', () => {
    const out = expectSameEverywhere(".\r\r\n.\r\n");
    expect(out.body).toBe("\r\r\n");
    expect(out.bareCr).toBe(true);
  });

  test("a CR at the end of a chunk is judged by the next chunk's first byte", () => {
    expect(run("ab\r\r\n.\r\n", [3]).bareCr).toBe(true);
    expect(run("ab\r\ncd\r\n.\r\n", [3]).bareCr).toBe(false);
  });
});

describe("DataReceiver: limits", () => {
  test("a line of 998 octets plus CRLF is fine, 999 is too long", () => {
    expect(expectSameEverywhere(`${"x".repeat(998)}\r\n.\r\n`).longLine).toBe(false);
    expect(whole(`${"x".repeat(999)}\r\n.\r\n`).longLine).toBe(true);
  });

  test("the transparency dot does not count towards the line length", () => {
    expect(whole(`.${".".repeat(998)}\r\n.\r\n`).longLine).toBe(false);
  });

  test("bare LFs do not reset the line length", () => {
    const line = `${"x".repeat(500)}\n${"y".repeat(500)}\r\n.\r\n`;
    const out = whole(line);
    expect(out.longLine).toBe(true);
    expect(out.bareLf).toBe(true);
  });

  test("a long line without any line end is reported before the end arrives", () => {
    const receiver = new DataReceiver();
    receiver.receive(bytes("y".repeat(2000)));
    expect(receiver.longLine).toBe(true);
    expect(receiver.violation).toBe("long-line");
  });

  test("over the size limit the body stops but the scan goes on to the real end", () => {
    const out = whole("0123456789\r\n0123456789\r\n.\r\nQUIT\r\n", { maxSize: 15 });
    expect(out.oversize).toBe(true);
    expect(out.done).toBe(true);
    expect(out.rest).toBe("QUIT\r\n");
    expect(out.body.length).toBeLessThanOrEqual(15);
  });

  test("exactly at the size limit is fine", () => {
    const out = whole("0123456789\r\n.\r\n", { maxSize: 12 });
    expect(out.oversize).toBe(false);
    expect(out.body).toBe("0123456789\r\n");
  });

  test("size counts un-stuffed octets", () => {
    const receiver = new DataReceiver();
    receiver.receive(bytes("..\r\n.\r\n"));
    expect(receiver.size).toBe(3);
  });

  test("violation names the first reason to reject", () => {
    const receiver = new DataReceiver({ maxSize: 4 });
    receiver.receive(bytes("a\nbcdef\r\n.\r\n"));
    expect(receiver.violation).toBe("oversize");
    const clean = new DataReceiver();
    clean.receive(bytes("a\r\n.\r\n"));
    expect(clean.violation).toBeUndefined();
  });

  test("after the end, further input is handed back whole", () => {
    const receiver = new DataReceiver();
    receiver.receive(bytes(".\r\n"));
    const again = receiver.receive(bytes("NOOP\r\n"));
    expect(again.done).toBe(true);
    expect(text(again.rest ?? new Uint8Array())).toBe("NOOP\r\n");
  });
});

describe("DataReceiver: property", () => {
  const alphabet = fc.constantFrom("\r", "\n", ".", "a", "\x00", "\r\n", "\r\n.", "\xe9");
  const messageText = fc.array(alphabet, { maxLength: 60 }).map((parts) => parts.join(""));

  test("matches the simple model for any input, chunking and size limit", () => {
    fc.assert(
      fc.property(
        messageText,
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.integer({ min: 0, max: 40 }),
        (message, rawCuts, maxSize) => {
          const input = `${message}\r\n.\r\nNEXT`;
          const cuts = [...new Set(rawCuts.map((c) => 1 + (c % (input.length - 1))))].sort((a, b) => a - b);
          const expected = model(input, maxSize);
          const actual = run(input, cuts, { maxSize });
          if (expected.oversize) {
            expect(actual.oversize).toBe(true);
            expect(actual.rest).toBe(expected.rest);
            expect(actual.done).toBe(true);
          } else expect(actual).toEqual(expected);
        },
      ),
      { numRuns: 3000 },
    );
  });

  test("long lines match the model", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 1003 }), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (lengths, stuffed) => {
          const lines = lengths.map((len) => (stuffed ? `.${"z".repeat(len)}` : "z".repeat(len)));
          const input = `${lines.join("\r\n")}\r\n.\r\n`;
          expect(whole(input)).toEqual(model(input));
        },
      ),
      { numRuns: 300 },
    );
  });
});
