import { describe, expect, test } from "bun:test";
import { messageLogLine } from "../../src/serve/message-log.ts";
import type { StoredEnvelope } from "../../src/store/types.ts";

const AT = new Date("2026-11-27T13:14:48.243Z");

function envelope(mailFrom: string, ...rcptTo: string[]): StoredEnvelope {
  return { mailFrom, rcptTo, mailParams: {}, rcptParams: rcptTo.map(() => ({})), clientAddress: "127.0.0.1" };
}

const message = (subject: string, bodySize = 0): Uint8Array =>
  new TextEncoder().encode(`Subject: ${subject}\r\nFrom: a@a.test\r\n\r\n${"x".repeat(bodySize)}`);

describe("text line", () => {
  test("time, sender, recipients, subject, size and id", () => {
    const raw = message("hello");
    expect(messageLogLine("ID1", raw, envelope("a@a.test", "b@b.test", "c@c.test"), AT, false)).toBe(
      `2026-11-27 13:14:48  a@a.test -> b@b.test, c@c.test  "hello"  ${raw.length} B  ID1`,
    );
  });

  test("the null sender is shown as <>", () => {
    expect(messageLogLine("ID", message("bounce"), envelope("", "b@b.test"), AT, false)).toContain(
      "  <> -> b@b.test  ",
    );
  });

  test("sizes in B, KiB and MiB", () => {
    const line = (size: number) =>
      messageLogLine("ID", message("s", size), envelope("a@a.test", "b@b.test"), AT, false);
    const overhead = message("s").length;
    expect(line(1023 - overhead)).toContain("  1023 B  ");
    expect(line(1536 - overhead)).toContain("  1.5 KiB  ");
    expect(line(3 * 1024 * 1024 - overhead)).toContain("  3.0 MiB  ");
  });

  test("encoded-words and folding in the subject are undone", () => {
    const raw = message("=?UTF-8?B?WGluIGNow6Bv?= =?UTF-8?Q?_th=E1=BA=BF_gi=E1=BB=9Bi?=\r\n folded");
    expect(messageLogLine("ID", raw, envelope("a@a.test", "b@b.test"), AT, false)).toContain(
      '"Xin chào thế giới folded"',
    );
  });

  test("no Subject header: an empty subject", () => {
    const raw = new TextEncoder().encode("From: a@a.test\r\n\r\nbody\r\n");
    expect(messageLogLine("ID", raw, envelope("a@a.test", "b@b.test"), AT, false)).toContain('  ""  ');
  });

  test("CR, LF and terminal escapes from an encoded-word cannot forge lines or drive the terminal", () => {
    const raw = message("=?UTF-8?Q?ok=0D=0A2026-11-27_00:00:00__forged_=1B[31mred=C2=9B?=");
    const line = messageLogLine("ID", raw, envelope("a@a.test", "b@b.test"), AT, false);
    expect(line).not.toMatch(/[\r\n\x1b\x9b]/);
    expect(line).toContain('"ok  2026-11-27 00:00:00  forged ?[31mred?"');
  });
});

describe("JSON line (--log-json)", () => {
  test("one object with the exact values", () => {
    const raw = message("=?UTF-8?Q?caf=C3=A9?=");
    const line = messageLogLine("ID2", raw, envelope("", "b@b.test"), AT, true);
    expect(line).not.toContain("\n");
    expect(JSON.parse(line)).toEqual({
      time: "2026-11-27T13:14:48.243Z",
      id: "ID2",
      from: "",
      to: ["b@b.test"],
      subject: "café",
      size: raw.length,
      client: "127.0.0.1",
    });
  });

  test("control characters are escaped in the text yet decode to the exact subject", () => {
    const raw = message("=?UTF-8?Q?a=0D=0Ab=1Bc=7Fd=C2=9Be?=");
    const line = messageLogLine("ID", raw, envelope("a@a.test", "b@b.test"), AT, true);
    expect(line).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
    expect((JSON.parse(line) as { subject: string }).subject).toBe("a\r\nb\x1bc\x7fd\x9be");
  });
});

describe("a large message kept on disk", () => {
  test("its line takes the subject from the header section and the size it was staged with", () => {
    const staged = {
      size: 3 * 1024 * 1024,
      raw: undefined,
      header: new TextEncoder().encode("From: a@a.test\r\nSubject: =?UTF-8?Q?gro=C3=9F?="),
      discard() {},
    };
    expect(messageLogLine("ID", staged, envelope("a@a.test", "b@b.test"), AT, false)).toBe(
      '2026-11-27 13:14:48  a@a.test -> b@b.test  "groß"  3.0 MiB  ID',
    );
    expect(
      (
        JSON.parse(messageLogLine("ID", staged, envelope("a@a.test", "b@b.test"), AT, true)) as {
          size: number;
        }
      ).size,
    ).toBe(3 * 1024 * 1024);
  });
});
