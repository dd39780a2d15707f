import { describe, expect, test } from "bun:test";
import {
  canonicalHeaderName,
  HEADER_SECTION_LIMIT,
  headerSectionBytes,
  headerValue,
  headerValues,
  parseHeaderFields,
} from "../../src/store/header-section.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

describe("headerSectionBytes", () => {
  test("ends at the first empty line (CRLF)", () => {
    expect(text(headerSectionBytes(bytes("A: 1\r\nB: 2\r\n\r\nC: body\r\n")))).toBe("A: 1\r\nB: 2");
  });

  test("accepts a bare-LF message", () => {
    expect(text(headerSectionBytes(bytes("A: 1\nB: 2\n\nbody\n")))).toBe("A: 1\nB: 2");
  });

  test("a message that starts with an empty line has no header section", () => {
    expect(headerSectionBytes(bytes("\r\nA: not a header\r\n"))).toHaveLength(0);
  });

  test("a message without a body is all header section", () => {
    expect(text(headerSectionBytes(bytes("A: 1\r\nB: 2\r\n")))).toBe("A: 1\r\nB: 2\r\n");
  });

  test("reads no further than the limit", () => {
    const endless = bytes(`X: ${"a".repeat(HEADER_SECTION_LIMIT * 2)}`);
    expect(headerSectionBytes(endless)).toHaveLength(HEADER_SECTION_LIMIT);
  });
});

describe("parseHeaderFields", () => {
  test("unfolds continuation lines with one space, like Go's textproto", () => {
    const fields = parseHeaderFields("Subject: a long\r\n  folded\r\n\tsubject\r\nTo: b@example.com");
    expect(fields).toEqual([
      { name: "Subject", value: "a long folded subject" },
      { name: "To", value: "b@example.com" },
    ]);
  });

  test("keeps repeated fields in order and looks names up case-insensitively", () => {
    const fields = parseHeaderFields("Received: one\r\nreceived: two\r\nFROM: a@example.com");
    expect(headerValues(fields, "RECEIVED")).toEqual(["one", "two"]);
    expect(headerValue(fields, "from")).toBe("a@example.com");
    expect(headerValue(fields, "Cc")).toBeUndefined();
  });

  test("skips lines that are not fields, and their continuations", () => {
    const fields = parseHeaderFields("garbage line\r\n continued\r\nA: 1\r\n: no name\r\nBad Name: x");
    expect(fields).toEqual([{ name: "A", value: "1" }]);
  });

  test("accepts white space before the colon (obsolete syntax) and an empty value", () => {
    expect(parseHeaderFields("Subject  : hi\r\nX-Empty:")).toEqual([
      { name: "Subject", value: "hi" },
      { name: "X-Empty", value: "" },
    ]);
  });

  test("decodes UTF-8 header octets (RFC 6532)", () => {
    expect(parseHeaderFields(bytes("Subject: Grüße"))).toEqual([{ name: "Subject", value: "Grüße" }]);
  });
});

describe("canonicalHeaderName", () => {
  test("capitalises each dash-separated word", () => {
    expect(canonicalHeaderName("message-id")).toBe("Message-Id");
    expect(canonicalHeaderName("MIME-VERSION")).toBe("Mime-Version");
    expect(canonicalHeaderName("x-mailer")).toBe("X-Mailer");
  });

  test("leaves names with characters outside a token alone", () => {
    expect(canonicalHeaderName("odd name")).toBe("odd name");
  });
});
