import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { headerValue, headerValues, removeHeaders, splitMessage } from "../../src/mime/headers.ts";

const RUNS = { numRuns: 150 };
const enc = new TextEncoder();
const dec = new TextDecoder();

const MESSAGE =
  "From: Ana <ana@example.com>\r\n" +
  "To: bob@example.com,\r\n" +
  "  carol@example.com\r\n" +
  "BCC: hidden@example.com,\r\n" +
  "\tother@example.com\r\n" +
  "Subject: =?UTF-8?B?Tmfhu41j?=\r\n" +
  "cc : dan@example.com\r\n" +
  "bcc: second@example.com\r\n" +
  "\r\n" +
  "Bcc: this is body text\r\n" +
  "From: so is this\r\n";

describe("splitMessage", () => {
  test("finds the fields, their extent and the body after the blank line", () => {
    const message = splitMessage(enc.encode(MESSAGE));
    expect(message.fields.map((f) => f.name)).toEqual(["From", "To", "BCC", "Subject", "cc", "bcc"]);
    expect(dec.decode(message.bytes.subarray(message.bodyStart))).toBe(
      "Bcc: this is body text\r\nFrom: so is this\r\n",
    );
    const to = message.fields[1]!;
    expect(dec.decode(message.bytes.subarray(to.start, to.end))).toBe(
      "To: bob@example.com,\r\n  carol@example.com\r\n",
    );
  });

  test("bare LF line ends (sendmail input from cron)", () => {
    const message = splitMessage(enc.encode("To: a@x\nSubject: hi\n there\n\nbody\n"));
    expect(headerValue(message, "subject")).toBe("hi there");
    expect(dec.decode(message.bytes.subarray(message.bodyStart))).toBe("body\n");
  });

  test("no blank line: all header, empty body", () => {
    const message = splitMessage(enc.encode("To: a@x\r\nSubject: hi"));
    expect(message.fields.length).toBe(2);
    expect(message.bodyStart).toBe(message.bytes.length);
    expect(headerValue(message, "Subject")).toBe("hi");
  });

  test("a line that is not a field ends the header and starts the body", () => {
    const message = splitMessage(enc.encode("To: a@x\r\nnot a header\r\nmore\r\n"));
    expect(message.fields.map((f) => f.name)).toEqual(["To"]);
    expect(dec.decode(message.bytes.subarray(message.bodyStart))).toBe("not a header\r\nmore\r\n");
  });

  test("empty input and a message that starts with the blank line", () => {
    expect(splitMessage(new Uint8Array())).toMatchObject({ fields: [], bodyStart: 0 });
    const message = splitMessage(enc.encode("\r\nbody"));
    expect(message.fields).toEqual([]);
    expect(message.bodyStart).toBe(2);
  });
});

describe("headerValues", () => {
  test("case-insensitive, unfolded, trimmed, all occurrences in order", () => {
    const message = splitMessage(enc.encode(MESSAGE));
    expect(headerValues(message, "bcc")).toEqual([
      "hidden@example.com,\tother@example.com",
      "second@example.com",
    ]);
    expect(headerValue(message, "TO")).toBe("bob@example.com,  carol@example.com");
    expect(headerValue(message, "Cc")).toBe("dan@example.com");
    expect(headerValue(message, "Reply-To")).toBeUndefined();
  });

  test("UTF-8 header text (RFC 6532) is decoded as UTF-8", () => {
    const message = splitMessage(enc.encode("From: Người dùng <người@ví-dụ.vn>\r\n\r\n"));
    expect(headerValue(message, "from")).toBe("Người dùng <người@ví-dụ.vn>");
  });
});

describe("removeHeaders", () => {
  test("drops every Bcc field with its continuation lines and leaves every other byte", () => {
    const message = splitMessage(enc.encode(MESSAGE));
    const expected = MESSAGE.replace("BCC: hidden@example.com,\r\n\tother@example.com\r\n", "").replace(
      "bcc: second@example.com\r\n",
      "",
    );
    expect(dec.decode(removeHeaders(message, "Bcc"))).toBe(expected);
  });

  test("several names at once; nothing to remove gives the same bytes", () => {
    const message = splitMessage(enc.encode(MESSAGE));
    expect(dec.decode(removeHeaders(message, "bcc", "subject", "x-none"))).toBe(
      "From: Ana <ana@example.com>\r\nTo: bob@example.com,\r\n  carol@example.com\r\ncc : dan@example.com\r\n\r\n" +
        "Bcc: this is body text\r\nFrom: so is this\r\n",
    );
    expect(removeHeaders(message, "X-None")).toBe(message.bytes);
  });

  const name = fc.constantFrom("From", "To", "Cc", "Bcc", "bcc", "BCC", "Subject", "X-Test");
  const text = fc.string({ unit: "grapheme", maxLength: 40 }).map((s) => s.replace(/[\r\n]/g, " "));
  const field = fc.tuple(name, fc.array(text, { minLength: 1, maxLength: 3 }));
  const eol = fc.constantFrom("\r\n", "\n");

  test("property: removing Bcc equals writing the message without it; values unfold", () => {
    fc.assert(
      fc.property(fc.array(field, { maxLength: 10 }), text, eol, (fields, body, nl) => {
        const write = (fs: typeof fields) =>
          `${fs.map(([n, lines]) => `${n}: ${lines.join(`${nl} `)}${nl}`).join("")}${nl}${body}`;
        const message = splitMessage(enc.encode(write(fields)));
        expect(message.fields.map((f) => f.name)).toEqual(fields.map(([n]) => n));
        expect(dec.decode(removeHeaders(message, "bcc"))).toBe(
          write(fields.filter(([n]) => n.toLowerCase() !== "bcc")),
        );
        expect(headerValues(message, "x-test")).toEqual(
          fields.filter(([n]) => n === "X-Test").map(([, lines]) => lines.join(" ").trim()),
        );
        expect(dec.decode(message.bytes.subarray(message.bodyStart))).toBe(body);
      }),
      RUNS,
    );
  });
});
