import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ProtocolError, SmtpError } from "../../src/core/errors.ts";
import { MAX_REPLY_LINE, octetLength } from "../../src/core/limits.ts";
import {
  isPermanent,
  isPositive,
  isTransient,
  parseReply,
  type Reply,
  ReplyParser,
  replyClass,
  replyMessage,
  replyToError,
} from "../../src/core/reply.ts";
import { formatReply, formatSmtpError } from "../../src/core/reply-format.ts";

const encoder = new TextEncoder();

function feedWhole(input: string): Reply[] {
  return new ReplyParser().push(encoder.encode(input));
}

function feedBytes(input: string): Reply[] {
  const parser = new ReplyParser();
  const out: Reply[] = [];
  for (const byte of encoder.encode(input)) out.push(...parser.push(new Uint8Array([byte])));
  expect(parser.pending).toBe(false);
  return out;
}

function feedAt(input: string, cuts: number[]): Reply[] {
  const bytes = encoder.encode(input);
  const parser = new ReplyParser();
  const out: Reply[] = [];
  let start = 0;
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
    const at = Math.min(cut, bytes.length);
    out.push(...parser.push(bytes.subarray(start, at)));
    start = at;
  }
  out.push(...parser.push(bytes.subarray(start)));
  expect(parser.pending).toBe(false);
  return out;
}

/** Checks that whole, byte-by-byte and randomly split feeding agree on `expected`. */
function expectEverySplit(input: string, expected: Reply[]): void {
  expect(feedWhole(input)).toEqual(expected);
  expect(feedBytes(input)).toEqual(expected);
  fc.assert(
    fc.property(fc.array(fc.nat(encoder.encode(input).length), { maxLength: 12 }), (cuts) => {
      expect(feedAt(input, cuts)).toEqual(expected);
    }),
    { numRuns: 200 },
  );
}

function expectProtocolError(input: string, pattern: RegExp): void {
  expect(() => feedWhole(input)).toThrow(pattern);
  expect(() => feedBytes(input)).toThrow(ProtocolError);
}

describe("ReplyParser", () => {
  test("single-line reply with and without enhanced code", () => {
    expectEverySplit("220 mx.example.com ESMTP ready\r\n250 2.1.0 Ok\r\n", [
      { code: 220, lines: ["mx.example.com ESMTP ready"] },
      { code: 250, enhanced: "2.1.0", lines: ["Ok"] },
    ]);
  });

  test("multi-line reply with the enhanced code on every line", () => {
    expectEverySplit(
      "550-5.1.1 The email account that you tried to reach\r\n550-5.1.1 does not exist.\r\n550 5.1.1 Please check.\r\n",
      [
        {
          code: 550,
          enhanced: "5.1.1",
          lines: ["The email account that you tried to reach", "does not exist.", "Please check."],
        },
      ],
    );
  });

  test("EHLO reply keeps extension lines intact", () => {
    expectEverySplit(
      "250-mx.example.com Hello\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250-AUTH=LOGIN PLAIN\r\n250 ENHANCEDSTATUSCODES\r\n",
      [
        {
          code: 250,
          lines: [
            "mx.example.com Hello",
            "SIZE 10240000",
            "8BITMIME",
            "AUTH=LOGIN PLAIN",
            "ENHANCEDSTATUSCODES",
          ],
        },
      ],
    );
  });

  test("bare LF line endings are accepted", () => {
    expectEverySplit("250-a\n250 b\n354 go\n", [
      { code: 250, lines: ["a", "b"] },
      { code: 354, lines: ["go"] },
    ]);
  });

  test("code without text, and '-' with empty text", () => {
    expectEverySplit("250-\r\n250\r\n221 \r\n", [
      { code: 250, lines: ["", ""] },
      { code: 221, lines: [""] },
    ]);
  });

  test("an enhanced code whose class differs from the reply's is left in the text", () => {
    expectEverySplit("250 5.1.1 odd\r\n550 2.0.0 odd\r\n354 2.0.0 go\r\n", [
      { code: 250, lines: ["5.1.1 odd"] },
      { code: 550, lines: ["2.0.0 odd"] },
      { code: 354, lines: ["2.0.0 go"] },
    ]);
  });

  test("text that only looks like an enhanced code stays", () => {
    expectEverySplit("250 2.0.0x\r\n250 2.0\r\n250 2.1234.0 x\r\n", [
      { code: 250, lines: ["2.0.0x"] },
      { code: 250, lines: ["2.0"] },
      { code: 250, lines: ["2.1234.0 x"] },
    ]);
  });

  test("the enhanced code alone on a line is removed", () => {
    expectEverySplit("250 2.0.0\r\n", [{ code: 250, enhanced: "2.0.0", lines: [""] }]);
  });

  test("UTF-8 text split across chunks is decoded whole", () => {
    expectEverySplit("550 5.1.1 Empfänger unbekannt: ü@例え.jp\r\n", [
      { code: 550, enhanced: "5.1.1", lines: ["Empfänger unbekannt: ü@例え.jp"] },
    ]);
  });

  test("pending is true for a partial line and for an unfinished multi-line reply", () => {
    const parser = new ReplyParser();
    expect(parser.pending).toBe(false);
    expect(parser.push("250-first\r\n")).toEqual([]);
    expect(parser.pending).toBe(true);
    expect(parser.push("250 la")).toEqual([]);
    expect(parser.pending).toBe(true);
    expect(parser.push("st\r")).toEqual([]);
    expect(parser.push("\n")).toEqual([{ code: 250, lines: ["first", "last"] }]);
    expect(parser.pending).toBe(false);
  });

  test("accepts string chunks", () => {
    const parser = new ReplyParser();
    expect(parser.push("220 hi\r\n221 bye\r\n")).toHaveLength(2);
  });

  test("rejects a line without a 3-digit code", () => {
    expectProtocolError("hello\r\n", /malformed reply line/);
    expectProtocolError("25 ok\r\n", /malformed reply line/);
    expectProtocolError("2500 ok\r\n", /malformed reply line/);
    expectProtocolError("250ok\r\n", /malformed reply line/);
    expectProtocolError("\r\n", /malformed reply line/);
  });

  test("rejects codes below 200 or above 599", () => {
    expectProtocolError("199 no\r\n", /malformed/);
    expectProtocolError("600 no\r\n", /malformed/);
    expectProtocolError("099 no\r\n", /malformed/);
  });

  test("rejects mixed codes in a multi-line reply", () => {
    expectProtocolError("250-one\r\n251 two\r\n", /changed from 250 to 251/);
  });

  test("rejects an overlong line, even before its end arrives", () => {
    expectProtocolError(`250 ${"x".repeat(5000)}\r\n`, /longer than 4096/);
    const parser = new ReplyParser();
    expect(() => parser.push(`250 ${"x".repeat(5000)}`)).toThrow(/longer than 4096/);
  });

  test("accepts lines up to the lenient limit", () => {
    const text = "x".repeat(4092);
    expectEverySplit(`250 ${text}\r\n`, [{ code: 250, lines: [text] }]);
  });

  test("stays failed after an error", () => {
    const parser = new ReplyParser();
    expect(() => parser.push("bogus\r\n")).toThrow(ProtocolError);
    expect(() => parser.push("250 ok\r\n")).toThrow(ProtocolError);
  });

  test("parseReply takes exactly one reply", () => {
    expect(parseReply("250 ok\r\n")).toEqual({ code: 250, lines: ["ok"] });
    expect(() => parseReply("250 ok\r\n250 ok\r\n")).toThrow(ProtocolError);
    expect(() => parseReply("250-ok\r\n")).toThrow(ProtocolError);
  });
});

describe("formatReply", () => {
  test("single line", () => {
    expect(formatReply(250, "2.1.0", "Ok")).toBe("250 2.1.0 Ok\r\n");
    expect(formatReply(220, undefined, "mx ESMTP")).toBe("220 mx ESMTP\r\n");
  });

  test("multi-line with the enhanced code on each line", () => {
    expect(formatReply(550, "5.7.1", ["one", "two"])).toBe("550-5.7.1 one\r\n550 5.7.1 two\r\n");
    expect(formatReply(451, "4.3.0", "a\nb\r\nc")).toBe("451-4.3.0 a\r\n451-4.3.0 b\r\n451 4.3.0 c\r\n");
  });

  test("empty text gives the code alone", () => {
    expect(formatReply(250, undefined, "")).toBe("250\r\n");
    expect(formatReply(250, undefined, [])).toBe("250\r\n");
    expect(formatReply(250, "2.0.0", "")).toBe("250 2.0.0\r\n");
  });

  test("control characters in the text never reach the wire", () => {
    expect(formatReply(550, undefined, "bad\0thing\x1b")).toBe("550 bad thing\r\n");
  });

  test("long text is wrapped at spaces so no line exceeds 512 octets", () => {
    const words = Array.from({ length: 300 }, (_, i) => `word${i}`).join(" ");
    const out = formatReply(550, "5.0.0", words);
    const lines = out.split("\r\n").slice(0, -1);
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(octetLength(line) + 2).toBeLessThanOrEqual(MAX_REPLY_LINE);
    const parsed = parseReply(out);
    expect(parsed.lines.join(" ")).toBe(words);
  });

  test("a long word and long UTF-8 text are cut without splitting a character", () => {
    const out = formatReply(250, undefined, "é".repeat(700));
    for (const line of out.split("\r\n").slice(0, -1)) {
      expect(octetLength(line) + 2).toBeLessThanOrEqual(MAX_REPLY_LINE);
    }
    expect(parseReply(out).lines.join("")).toBe("é".repeat(700));
  });

  test("rejects bad codes and mismatched enhanced codes", () => {
    expect(() => formatReply(199, undefined, "x")).toThrow(RangeError);
    expect(() => formatReply(250, "5.0.0", "x")).toThrow(RangeError);
    expect(() => formatReply(250, "2.0", "x")).toThrow(RangeError);
    // RFC 3463 §2: subject and detail are 1 to 3 digits, and nothing may follow.
    for (const bad of ["2.0.0 ", " 2.0.0", "2.1000.0", "2.0.1000", "2.0.0.0", "2..0", "2.0.", "3.0.0"]) {
      expect(() => formatReply(250, bad, "x")).toThrow(RangeError);
    }
    expect(formatReply(250, "2.000.999", "x")).toBe("250 2.000.999 x\r\n");
  });

  test("round trip: parse(format(x)) gives the lines back", () => {
    const lineText = fc
      .string({ unit: "grapheme", maxLength: 120 })
      .map((s) => s.replace(/[\x00-\x1f\x7f]/g, "").trim())
      .filter((s) => !/^\d\.\d{1,3}\.\d{1,3}( |$)/.test(s));
    fc.assert(
      fc.property(
        fc.constantFrom(220, 250, 354, 421, 450, 550, 554),
        fc.boolean(),
        fc.array(lineText, { minLength: 1, maxLength: 5 }),
        (code, withEnhanced, lines) => {
          const enhanced = withEnhanced && code !== 354 ? `${String(code)[0]}.0.0` : undefined;
          const wire = formatReply(code, enhanced, lines);
          const reply = parseReply(wire);
          expect(reply.code).toBe(code);
          expect(reply.enhanced).toBe(enhanced);
          expect(reply.lines.map((l) => l.trim())).toEqual(lines);
        },
      ),
    );
  });
});

describe("classification", () => {
  test("replyClass", () => {
    expect(replyClass(250)).toBe(2);
    expect(replyClass(354)).toBe(3);
    expect(replyClass(421)).toBe(4);
    expect(replyClass(554)).toBe(5);
    expect(() => replyClass(150)).toThrow(RangeError);
    expect(() => replyClass(600)).toThrow(RangeError);
  });

  test("positive, transient, permanent", () => {
    expect([isPositive(250), isPositive(354), isPositive(450), isPositive(550)]).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect([isTransient(250), isTransient(421), isTransient(550)]).toEqual([false, true, false]);
    expect([isPermanent(250), isPermanent(421), isPermanent(554)]).toEqual([false, false, true]);
  });

  test("replyMessage joins non-empty lines", () => {
    expect(replyMessage({ code: 550, lines: ["a ", "", "b"] })).toBe("a b");
  });

  test("SmtpError to and from the wire", () => {
    expect(formatSmtpError(new SmtpError(550, "5.1.1", "no such user"))).toBe("550 5.1.1 no such user\r\n");
    const error = replyToError({ code: 452, enhanced: "4.5.3", lines: ["too many", "recipients"] });
    expect([error.code, error.enhanced, error.message]).toEqual([452, "4.5.3", "too many recipients"]);
  });
});

describe("reply line grammar", () => {
  /** The grammar as the parser once wrote it with regexes; the hand-written one must agree on every line. */
  const REPLY_LINE = /^([2-5]\d\d)(?:([ -])(.*))?$/s;
  const LEADING_ENHANCED = /^([245]\.\d{1,3}\.\d{1,3})(?: +|$)/;
  function expected(
    line: string,
  ): { code: number; more: boolean; enhanced?: string; text: string } | "malformed" {
    const m = REPLY_LINE.exec(line);
    if (m === null) return "malformed";
    let text = m[3] ?? "";
    const e = LEADING_ENHANCED.exec(text);
    const enhanced = e !== null && e[1]?.[0] === m[1]?.[0] ? e[1] : undefined;
    if (e !== null && enhanced !== undefined) text = text.slice(e[0].length);
    return { code: Number(m[1]), more: m[2] === "-", ...(enhanced === undefined ? {} : { enhanced }), text };
  }
  function parsed(line: string): ReturnType<typeof expected> {
    const parser = new ReplyParser();
    let replies: Reply[];
    try {
      replies = parser.push(`${line}\n`);
    } catch (error) {
      if (error instanceof ProtocolError && error.message.startsWith("malformed")) return "malformed";
      throw error;
    }
    const more = replies.length === 0;
    // A continuation line is finished by a last line without an enhanced code of its own.
    const reply = more ? parser.push(`${line.slice(0, 3)}\n`)[0]! : replies[0]!;
    return {
      code: reply.code,
      more,
      ...(reply.enhanced === undefined ? {} : { enhanced: reply.enhanced }),
      text: reply.lines[0]!,
    };
  }
  const noise = fc.string({
    unit: fc.constantFrom(
      "2",
      "4",
      "5",
      "0",
      "9",
      ".",
      "-",
      " ",
      " ",
      "\t",
      "\r",
      "a",
      "\u2028",
      "\u00a0",
      "é",
    ),
    maxLength: 10,
  });
  const lines = fc
    .tuple(
      fc.constantFrom("250", "354", "421", "550", "599", "199", "600", "25", "2a0", ""),
      fc.constantFrom("", " ", "-", "x", "\t"),
      fc.constantFrom("", "2.", "5.", "2.0.0", "5.1.10", "4.123.456", "4.1234.5", "5.1.", "5..1", "3.0.0"),
      noise,
    )
    .map((parts) => parts.join(""));

  test("status codes, separators and enhanced codes as the regexes read them", () => {
    fc.assert(
      fc.property(lines, (line) => {
        // A CR just before the LF belongs to the line ending, not to the line.
        fc.pre(!line.endsWith("\r"));
        expect(parsed(line)).toEqual(expected(line));
      }),
      { numRuns: 3000 },
    );
    for (const line of [
      "250",
      "250 ",
      "250-",
      "250 2.0.0",
      "250 2.0.0 ",
      "250 2.0.00000 x",
      "550 5.1.1  no",
      "250 4.0.0 x",
    ]) {
      expect(parsed(line)).toEqual(expected(line));
    }
  });
});
