import { describe, expect, test } from "bun:test";
import {
  needsBodyIndex,
  parseSearchDate,
  parseSearchQuery,
  parseSize,
  splitQuery,
} from "../../src/store/search-query.ts";
import { SearchQueryError } from "../../src/store/types.ts";

describe("splitQuery", () => {
  test("splits on white space outside quotes and drops the quotes", () => {
    expect(splitQuery(' subject:"hello world"  from:a@b "exact phrase" -x ')).toEqual([
      "subject:hello world",
      "from:a@b",
      "exact phrase",
      "-x",
    ]);
  });

  test("an unterminated quote runs to the end", () => {
    expect(splitQuery('a "b c')).toEqual(["a", "b c"]);
  });
});

describe("parseSearchQuery", () => {
  test("reads every Mailpit filter", () => {
    expect(
      parseSearchQuery(
        "from:ann to:bob cc:c bcc:d reply-to:e addressed:f subject:hi message-id:m tag:t is:read is:unread is:tagged has:attachment has:inline larger:1k smaller:2m words",
      ),
    ).toEqual([
      { kind: "address", field: "from", value: "ann", negate: false },
      { kind: "address", field: "to", value: "bob", negate: false },
      { kind: "address", field: "cc", value: "c", negate: false },
      { kind: "address", field: "bcc", value: "d", negate: false },
      { kind: "address", field: "reply-to", value: "e", negate: false },
      { kind: "address", field: "addressed", value: "f", negate: false },
      { kind: "subject", value: "hi", negate: false },
      { kind: "message-id", value: "m", negate: false },
      { kind: "tag", value: "t", negate: false },
      { kind: "read", read: true },
      { kind: "read", read: false },
      { kind: "tagged", negate: false },
      { kind: "attachment", present: true },
      { kind: "inline", present: true },
      { kind: "size", op: "larger", bytes: 1024, negate: false },
      { kind: "size", op: "smaller", bytes: 2 * 1024 * 1024, negate: false },
      { kind: "text", value: "words", negate: false },
    ]);
  });

  test("- and ! negate; prefixes are case-insensitive; values keep their case", () => {
    expect(parseSearchQuery("-FROM:Ann !is:read !has:attachments -Hello")).toEqual([
      { kind: "address", field: "from", value: "Ann", negate: true },
      { kind: "read", read: false },
      { kind: "attachment", present: false },
      { kind: "text", value: "Hello", negate: true },
    ]);
  });

  test("ignores empty filters and tokens without letters or digits", () => {
    expect(parseSearchQuery('to: - ! "" ... subject:')).toEqual([]);
  });

  test("quoted values keep their spaces", () => {
    expect(parseSearchQuery('subject:"quarterly report"')).toEqual([
      { kind: "subject", value: "quarterly report", negate: false },
    ]);
  });

  test("an unknown is:/has: filter is an error", () => {
    expect(() => parseSearchQuery("is:starred")).toThrow(SearchQueryError);
    expect(() => parseSearchQuery("has:pdf")).toThrow(SearchQueryError);
  });

  test("before: and after: read dates in the given zone", () => {
    expect(parseSearchQuery("after:2024-05-31 before:2024-06-01T12:00:00Z", "UTC")).toEqual([
      { kind: "received", op: "after", at: Date.UTC(2024, 4, 31), negate: false },
      { kind: "received", op: "before", at: Date.UTC(2024, 5, 1, 12), negate: false },
    ]);
  });

  test("needsBodyIndex is true only for filters that read the body", () => {
    expect(needsBodyIndex(parseSearchQuery("from:a subject:b is:read"))).toBe(false);
    expect(needsBodyIndex(parseSearchQuery("hello"))).toBe(true);
    expect(needsBodyIndex(parseSearchQuery("has:attachment"))).toBe(true);
    expect(needsBodyIndex(parseSearchQuery("-has:inline"))).toBe(true);
  });
});

describe("parseSearchDate", () => {
  test("a wall-clock time is read in the named zone, across a DST change", () => {
    expect(parseSearchDate("2024-01-15 09:30", "Pacific/Auckland")).toBe(Date.UTC(2024, 0, 14, 20, 30));
    expect(parseSearchDate("2024-07-15", "Pacific/Auckland")).toBe(Date.UTC(2024, 6, 14, 12));
    expect(parseSearchDate("2024/03/10", "America/New_York")).toBe(Date.UTC(2024, 2, 10, 5));
  });

  test("without a zone a wall-clock time is the process's local time", () => {
    expect(parseSearchDate("2024-05-31 13:45:10")).toBe(new Date(2024, 4, 31, 13, 45, 10).getTime());
  });

  test("a date with its own offset needs no zone", () => {
    expect(parseSearchDate("Tue, 1 Jul 2003 10:52:37 +0200", "Asia/Tokyo")).toBe(
      Date.UTC(2003, 6, 1, 8, 52, 37),
    );
  });

  test("bad dates and zones are errors", () => {
    expect(() => parseSearchDate("yesterday")).toThrow(SearchQueryError);
    expect(() => parseSearchDate("2024-13-01")).toThrow(SearchQueryError);
    expect(() => parseSearchDate("2024-01-01", "Mars/Olympus_Mons")).toThrow(SearchQueryError);
  });
});

describe("parseSize", () => {
  test("reads Mailpit's units", () => {
    expect(parseSize("512")).toBe(512);
    expect(parseSize("2K")).toBe(2048);
    expect(parseSize("1.5mb")).toBe(1.5 * 1024 * 1024);
    expect(parseSize("3 kb")).toBe(3072);
  });

  test("rejects anything else", () => {
    expect(() => parseSize("big")).toThrow(SearchQueryError);
    expect(() => parseSize("5gb")).toThrow(SearchQueryError);
  });
});
