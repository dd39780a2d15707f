import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import PostalMime from "postal-mime";
import { CliError, ExitCode } from "../../src/commands/exit-codes.ts";
import { type ComposeInput, composeMessage } from "../../src/commands/send-compose.ts";
import { composeRaw } from "../../src/commands/send-raw.ts";
import { formatPath } from "../../src/core/address.ts";
import { headerValue, headerValues, splitMessage } from "../../src/mime/headers.ts";

const NOW = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1");
const bytesOf = (text: string) => new Uint8Array(Buffer.from(text, "utf8"));

function input(extra: Partial<ComposeInput> = {}): ComposeInput {
  return {
    from: "Ana Nguyễn <ana@example.com>",
    to: ["bob@example.net"],
    cc: [],
    bcc: [],
    replyTo: [],
    headers: [],
    attachments: [],
    inline: [],
    text: "Xin chào",
    now: NOW,
    ...extra,
  };
}

async function exitCodeOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CliError) return error.exitCode;
    throw error;
  }
  throw new Error("expected a CliError");
}

function exitCodeOfSync(run: () => unknown): number {
  try {
    run();
  } catch (error) {
    if (error instanceof CliError) return error.exitCode;
    throw error;
  }
  throw new Error("expected a CliError");
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpkit-compose-"));
  await writeFile(join(dir, "report.pdf"), new Uint8Array([0x25, 0x50, 0x44, 0x46, 0x00, 0xff, 0x80]));
  await writeFile(join(dir, "empty.bin"), new Uint8Array());
  await writeFile(join(dir, "logo.png"), new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("composeMessage", () => {
  test("envelope from the flags: sender, then To, Cc and Bcc in order", async () => {
    const c = await composeMessage(
      input({
        to: ["bob@example.net", "Carol <carol@example.org>"],
        cc: ["dan@x.test"],
        bcc: ["eve@y.test"],
      }),
    );
    expect(formatPath(c.from)).toBe("<ana@example.com>");
    expect(c.recipients.map(formatPath)).toEqual([
      "<bob@example.net>",
      "<carol@example.org>",
      "<dan@x.test>",
      "<eve@y.test>",
    ]);
    // The time, the process ID and at least 80 random bits, base 36.
    expect(c.messageId).toMatch(/^<[0-9a-z]+\.[0-9a-z]+\.[0-9a-z]{16,}@example\.com>$/);
    expect(c.eightBit).toBe(false);
  });

  test("messages composed in one burst (mostly the same millisecond) get distinct Message-IDs", async () => {
    const ids = new Set<string | undefined>();
    for (let i = 0; i < 50; i++) ids.add((await composeMessage(input())).messageId);
    expect(ids.size).toBe(50);
  });

  test("Bcc is envelope only: no Bcc header, and its address appears nowhere in the message", async () => {
    const c = await composeMessage(input({ bcc: ["hidden@secret.test"] }));
    const parsed = splitMessage(c.message);
    expect(headerValues(parsed, "Bcc")).toEqual([]);
    expect(latin1(c.message)).not.toContain("hidden@secret.test");
    expect(c.recipients.map(formatPath)).toContain("<hidden@secret.test>");
  });

  test("a Bcc given as --header is refused (65), not written", async () => {
    expect(await exitCodeOf(composeMessage(input({ headers: ["Bcc: hidden@secret.test"] })))).toBe(
      ExitCode.dataError,
    );
  });

  test("bytes are 7-bit, CRLF, lines within 998, and decode back to what was given", async () => {
    const c = await composeMessage(
      input({
        subject: "Tiếng Việt 😀 中文",
        text: "Chào bạn 👋\n日本語のテキスト",
        html: "<p>Xin chào</p>",
      }),
    );
    expect(c.message.every((b) => b < 0x80)).toBe(true);
    const text = latin1(c.message);
    expect(text.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
    for (const line of text.split("\r\n")) expect(line.length).toBeLessThanOrEqual(998);
    const email = await PostalMime.parse(c.message);
    expect(email.subject).toBe("Tiếng Việt 😀 中文");
    expect(email.from?.name).toBe("Ana Nguyễn");
    expect(email.text?.replace(/\r?\n$/, "")).toBe("Chào bạn 👋\n日本語のテキスト");
    expect(email.html).toContain("<p>Xin chào</p>");
  });

  test("--header replaces a generated header in place and adds new ones", async () => {
    const c = await composeMessage(
      input({ subject: "generated", headers: ["Subject: mine", "Message-ID: <fixed@id.test>", "X-Tag: 1"] }),
    );
    const parsed = splitMessage(c.message);
    expect(headerValues(parsed, "Subject")).toEqual(["mine"]);
    expect(headerValues(parsed, "Message-ID")).toEqual(["<fixed@id.test>"]);
    expect(headerValue(parsed, "X-Tag")).toBe("1");
    expect(c.messageId).toBe("<fixed@id.test>");
  });

  test("a --header that is not Name: value is a usage error (64)", async () => {
    expect(await exitCodeOf(composeMessage(input({ headers: ["no colon here"] })))).toBe(ExitCode.usage);
  });

  test("attachments: PATH;type=..;name=.. overrides the type and the name; bytes survive", async () => {
    const c = await composeMessage(
      input({
        attachments: [
          `${join(dir, "report.pdf")};type=application/x-custom;name=Báo cáo.pdf`,
          join(dir, "empty.bin"),
          join(dir, "logo.png"),
        ],
      }),
    );
    const email = await PostalMime.parse(c.message);
    const [custom, empty, png] = email.attachments;
    expect(custom?.mimeType).toBe("application/x-custom");
    expect(custom?.filename).toBe("Báo cáo.pdf");
    expect(new Uint8Array(custom?.content as ArrayBuffer)).toEqual(
      new Uint8Array([0x25, 0x50, 0x44, 0x46, 0x00, 0xff, 0x80]),
    );
    expect(empty?.filename).toBe("empty.bin");
    expect(new Uint8Array(empty?.content as ArrayBuffer).length).toBe(0);
    expect(png?.mimeType).toBe("image/png");
  });

  test("an unknown attachment parameter is a usage error (64)", async () => {
    const spec = `${join(dir, "logo.png")};colour=blue`;
    expect(await exitCodeOf(composeMessage(input({ attachments: [spec] })))).toBe(ExitCode.usage);
  });

  test("a missing attachment or inline file exits 66", async () => {
    const missing = join(dir, "nope.pdf");
    expect(await exitCodeOf(composeMessage(input({ attachments: [missing] })))).toBe(ExitCode.noInput);
    expect(await exitCodeOf(composeMessage(input({ inline: [missing] })))).toBe(ExitCode.noInput);
  });

  test("an inline part gets a Content-ID", async () => {
    const c = await composeMessage(input({ html: '<img src="cid:x">', inline: [join(dir, "logo.png")] }));
    expect(latin1(c.message)).toMatch(/Content-ID: <part1\.[0-9a-z.]+@smtpkit>/);
  });

  test("no sender or no recipient is a usage error; a malformed address is bad data", async () => {
    expect(await exitCodeOf(composeMessage(input({ from: undefined })))).toBe(ExitCode.usage);
    expect(await exitCodeOf(composeMessage(input({ to: [] })))).toBe(ExitCode.usage);
    expect(await exitCodeOf(composeMessage(input({ to: ["bob@@example"] })))).toBe(ExitCode.dataError);
  });

  test("a non-ASCII address is kept for the envelope (SMTPUTF8 is checked at delivery)", async () => {
    const c = await composeMessage(input({ to: ["bé@ví-dụ.vn"] }));
    expect(c.recipients.map(formatPath)).toEqual(["<bé@ví-dụ.vn>"]);
  });
});

describe("composeRaw", () => {
  const raw = bytesOf(
    "From: Ana <ana@example.com>\r\nTo: bob@example.net, Carol <carol@example.org>\r\nCc: dan@x.test\r\n" +
      "Bcc: eve@y.test,\r\n frank@z.test\r\nSubject: raw\r\nMessage-ID: <raw@id.test>\r\n\r\nbody\r\n",
  );

  test("without flags the envelope comes from the headers, and Bcc (folded too) is removed", () => {
    const c = composeRaw(raw, undefined, []);
    expect(formatPath(c.from)).toBe("<ana@example.com>");
    expect(c.recipients.map(formatPath)).toEqual([
      "<bob@example.net>",
      "<carol@example.org>",
      "<dan@x.test>",
      "<eve@y.test>",
      "<frank@z.test>",
    ]);
    const text = latin1(c.message);
    expect(text).not.toMatch(/^Bcc:/im);
    expect(text).not.toContain("frank@z.test");
    expect(text).toBe(latin1(raw).replace("Bcc: eve@y.test,\r\n frank@z.test\r\n", ""));
    expect(c.messageId).toBe("<raw@id.test>");
  });

  test("with --from/--to the message is sent unchanged, byte for byte", () => {
    const c = composeRaw(raw, "other@sender.test", ["only@rcpt.test"]);
    expect(formatPath(c.from)).toBe("<other@sender.test>");
    expect(c.recipients.map(formatPath)).toEqual(["<only@rcpt.test>"]);
    expect(c.message).toBe(raw);
  });

  test("sendmail -t: header recipients are added to the given ones; Bcc always removed on request", () => {
    const t = composeRaw(raw, undefined, ["extra@rcpt.test"], { headerRecipients: true });
    expect(t.recipients.map(formatPath)[0]).toBe("<extra@rcpt.test>");
    expect(t.recipients).toHaveLength(6);
    const kept = composeRaw(raw, undefined, ["x@rcpt.test"], { alwaysRemoveBcc: true });
    expect(kept.recipients.map(formatPath)).toEqual(["<x@rcpt.test>"]);
    expect(latin1(kept.message)).not.toContain("Bcc:");
  });

  test("Sender wins over From for the envelope", () => {
    const c = composeRaw(bytesOf("From: a@a.test\nSender: s@s.test\nTo: b@b.test\n\nx\n"), undefined, []);
    expect(formatPath(c.from)).toBe("<s@s.test>");
  });

  test("8-bit bytes mark the message for BODY=8BITMIME", () => {
    const c = composeRaw(bytesOf("From: a@a.test\nTo: b@b.test\n\ncafé\n"), undefined, []);
    expect(c.eightBit).toBe(true);
  });

  test("no header fields, no sender, no recipient, a bad To: the right exit codes", () => {
    expect(exitCodeOfSync(() => composeRaw(bytesOf("just text\n"), undefined, []))).toBe(ExitCode.dataError);
    expect(exitCodeOfSync(() => composeRaw(bytesOf("To: b@b.test\n\nx\n"), undefined, []))).toBe(
      ExitCode.usage,
    );
    expect(exitCodeOfSync(() => composeRaw(bytesOf("From: a@a.test\n\nx\n"), undefined, []))).toBe(
      ExitCode.usage,
    );
    expect(exitCodeOfSync(() => composeRaw(bytesOf("From: a@a.test\nTo: <<<\n\nx\n"), undefined, []))).toBe(
      ExitCode.dataError,
    );
  });
});
