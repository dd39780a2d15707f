import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { addMissingHeaders, cutAtDotLine } from "../../src/commands/sendmail-message.ts";
import { headerValue, headerValues, splitMessage } from "../../src/mime/headers.ts";

const bytes = (text: string) => new Uint8Array(Buffer.from(text, "utf8"));
const text = (b: Uint8Array) => Buffer.from(b).toString("utf8");
const NOW = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
const MISSING = { from: { address: "ana@a.test" }, now: NOW, messageIdDomain: "a.test" };

describe("cutAtDotLine", () => {
  test("input ends before a line with only a dot (LF or CRLF)", () => {
    expect(text(cutAtDotLine(bytes("Subject: x\n\nbody\n.\nignored\n")))).toBe("Subject: x\n\nbody\n");
    expect(text(cutAtDotLine(bytes("Subject: x\r\n\r\nbody\r\n.\r\nignored\r\n")))).toBe(
      "Subject: x\r\n\r\nbody\r\n",
    );
    expect(text(cutAtDotLine(bytes("Subject: x\n\nbody\n.")))).toBe("Subject: x\n\nbody\n");
    expect(text(cutAtDotLine(bytes(".\nall gone\n")))).toBe("");
  });

  test("lines that merely start with a dot, or hold a dot and more, do not end it", () => {
    const input = "Subject: x\n\n..\n. \n.x\n .\nend\n";
    expect(text(cutAtDotLine(bytes(input)))).toBe(input);
  });

  test("never changes a byte before the cut, for any input", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (input) => {
        const out = cutAtDotLine(input);
        expect(Buffer.from(input.subarray(0, out.length)).equals(Buffer.from(out))).toBe(true);
        if (out.length < input.length) {
          expect(out.length === 0 || out[out.length - 1] === 0x0a).toBe(true);
          expect(input[out.length]).toBe(0x2e);
        }
      }),
    );
  });
});

describe("addMissingHeaders", () => {
  test("a complete header is left byte for byte", () => {
    const message = bytes(
      "Date: Thu, 1 Jan 2026 00:00:00 +0000\nFrom: x@x.test\nMessage-ID: <a@b>\n\nbody\n",
    );
    expect(addMissingHeaders(message, MISSING)).toBe(message);
  });

  test("Date, From and Message-ID go at the end of the header section, with the message's line ends", () => {
    const out = text(addMissingHeaders(bytes("Subject: hi\nTo: b@b.test\n\nbody\n"), MISSING));
    expect(out).toMatch(
      /^Subject: hi\nTo: b@b\.test\nDate: Fri, 02 Jan 2026 03:04:05 \+0000\nFrom: ana@a\.test\nMessage-ID: <[0-9a-f]{32}@a\.test>\n\nbody\n$/,
    );
    const crlf = text(addMissingHeaders(bytes("Subject: hi\r\n\r\nbody\r\n"), MISSING));
    expect(crlf).toMatch(
      /^Subject: hi\r\nDate: [^\r\n]+\r\nFrom: ana@a\.test\r\nMessage-ID: <[^\r\n]+>\r\n\r\nbody\r\n$/,
    );
  });

  test("only what is missing is added; header names match in any case", () => {
    const out = addMissingHeaders(bytes("FROM: x@x.test\nsubject: s\n\nb\n"), MISSING);
    const parsed = splitMessage(out);
    expect(headerValues(parsed, "From")).toEqual(["x@x.test"]);
    expect(headerValue(parsed, "Date")).toBe("Fri, 02 Jan 2026 03:04:05 +0000");
    expect(headerValues(parsed, "Message-ID")).toHaveLength(1);
  });

  test("a full name is encoded for the From header (7-bit)", () => {
    const out = addMissingHeaders(bytes("Subject: s\n\nb\n"), {
      ...MISSING,
      from: { address: "ana@a.test", name: "Ana Nguyễn" },
    });
    const from = headerValue(splitMessage(out), "From");
    expect(from).toBe("Ana =?UTF-8?B?Tmd1eeG7hW4=?= <ana@a.test>");
    expect(out.every((b) => b < 0x80)).toBe(true);
  });

  test("no header section at all (echo hi | sendmail bob): one is made, with an empty line before the body", () => {
    const out = text(addMissingHeaders(bytes("hi there\n"), MISSING));
    expect(out).toMatch(/^Date: [^\n]+\nFrom: ana@a\.test\nMessage-ID: <[^\n]+>\n\nhi there\n$/);
    const empty = text(addMissingHeaders(new Uint8Array(), MISSING));
    expect(empty).toMatch(/^Date: [^\r\n]+\r\nFrom: ana@a\.test\r\nMessage-ID: <[^\r\n]+>\r\n\r\n$/);
  });

  test("a header section that ends without its empty line gets one", () => {
    const out = text(addMissingHeaders(bytes("Subject: s\nnot a header line\n"), MISSING));
    expect(out).toMatch(
      /^Subject: s\nDate: [^\n]+\nFrom: [^\n]+\nMessage-ID: [^\n]+\n\nnot a header line\n$/,
    );
  });

  test("a last header line without a line end is finished first", () => {
    const out = text(addMissingHeaders(bytes("Subject: s"), MISSING));
    expect(out).toMatch(/^Subject: s\r\nDate: [^\r\n]+\r\nFrom: [^\r\n]+\r\nMessage-ID: [^\r\n]+\r\n$/);
  });
});
