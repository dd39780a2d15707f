import { describe, expect, test } from "bun:test";
import { goTime, toMailpitHeaders } from "../../src/http/mailpit-json.ts";

describe("goTime", () => {
  test("prints times as Go's RFC3339Nano does", () => {
    expect(goTime(Date.UTC(2024, 0, 2, 3, 4, 5))).toBe("2024-01-02T03:04:05Z");
    expect(goTime(Date.UTC(2024, 0, 2, 3, 4, 5, 120))).toBe("2024-01-02T03:04:05.12Z");
    expect(goTime(Date.UTC(2024, 0, 2, 3, 4, 5, 7))).toBe("2024-01-02T03:04:05.007Z");
  });
});

describe("toMailpitHeaders", () => {
  test("groups repeated fields under canonical names, sorted, values unfolded and undecoded", () => {
    const raw = new TextEncoder().encode(
      "received: from a\r\n by b\r\nSubject: =?UTF-8?B?SMOp?=\r\nReceived: from c\r\nmessage-id: <x@y>\r\n\r\nBody: no\r\n",
    );
    expect(toMailpitHeaders(raw)).toEqual({
      "Message-Id": ["<x@y>"],
      Received: ["from a by b", "from c"],
      Subject: ["=?UTF-8?B?SMOp?="],
    });
    expect(Object.keys(toMailpitHeaders(raw))).toEqual(["Message-Id", "Received", "Subject"]);
  });
});
