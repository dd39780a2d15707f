import { describe, expect, test } from "bun:test";
import { DEFAULT_TIMEOUTS, resolveTimeouts, timeoutFor, uniformTimeouts } from "../../src/client/timeouts.ts";
import { formatTranscriptLine } from "../../src/client/transcript.ts";

describe("formatTranscriptLine", () => {
  test("swaks notation, TLS marked with ~", () => {
    expect(formatTranscriptLine({ direction: "received", text: "220 hi", tls: false })).toBe("<- 220 hi");
    expect(formatTranscriptLine({ direction: "sent", text: "EHLO me", tls: false })).toBe(" -> EHLO me");
    expect(formatTranscriptLine({ direction: "received", text: "250 ok", tls: true })).toBe("<~ 250 ok");
    expect(formatTranscriptLine({ direction: "sent", text: "QUIT", tls: true })).toBe(" ~> QUIT");
    expect(formatTranscriptLine({ direction: "info", text: "Connected", tls: true })).toBe("=== Connected");
  });
});

describe("timeouts", () => {
  test("RFC 5321 §4.5.3.2 defaults per stage", () => {
    const t = DEFAULT_TIMEOUTS;
    expect(timeoutFor(t, "greeting")).toBe(300_000);
    expect(timeoutFor(t, "mail")).toBe(300_000);
    expect(timeoutFor(t, "rcpt")).toBe(300_000);
    expect(timeoutFor(t, "data")).toBe(120_000);
    expect(timeoutFor(t, undefined)).toBe(180_000);
    expect(timeoutFor(t, "message")).toBe(600_000);
    expect(timeoutFor(t, "ehlo")).toBe(300_000);
  });
  test("one --timeout overrides all; partial overrides keep the rest", () => {
    expect(new Set(Object.values(uniformTimeouts(5000)))).toEqual(new Set([5000]));
    expect(resolveTimeouts({ greeting: 1 })).toMatchObject({ greeting: 1, mail: 300_000 });
  });
});
