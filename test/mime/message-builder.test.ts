import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { type ParsedMail, simpleParser } from "mailparser";
import PostalMime, { type Email } from "postal-mime";
import { AddressParseError } from "../../src/mime/address-header.ts";
import { decodeEncodedWords } from "../../src/mime/encoded-word.ts";
import { HeaderError } from "../../src/mime/header-fold.ts";
import { headerValue, splitMessage } from "../../src/mime/headers.ts";
import {
  type AddressSpec,
  type AttachmentSpec,
  type BuildOptions,
  buildMessage,
  type MessageSpec,
  NeedsSmtpUtf8Error,
} from "../../src/mime/message-builder.ts";

const DATE = new Date(Date.UTC(2025, 6, 1, 9, 5, 3));
const ANA: AddressSpec = { name: "Ana Nguyễn", address: "ana@example.com" };
const BOB: AddressSpec = { address: "bob@example.net" };
const dec = new TextDecoder();

function options(extra: Partial<BuildOptions> = {}): BuildOptions {
  let n = 0;
  return { date: DATE, messageIdDomain: "example.com", random: () => `r${++n}`, ...extra };
}

function build(spec: Partial<MessageSpec>, extra: Partial<BuildOptions> = {}) {
  return buildMessage({ from: ANA, to: [BOB], ...spec }, options(extra));
}

function text(bytes: Uint8Array): string {
  return dec.decode(bytes);
}

function headerOf(bytes: Uint8Array, name: string): string | undefined {
  return headerValue(splitMessage(bytes), name);
}

/** RFC 5322 §2.1.1 and §2.3, RFC 2045 §2.7: CRLF only, lines ≤ 998, and 7-bit when asked. */
function checkWireShape(bytes: Uint8Array, sevenBit: boolean): void {
  if (sevenBit) expect(bytes.every((b) => b < 0x80)).toBe(true);
  const s = Buffer.from(bytes).toString("latin1");
  expect(s.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
  for (const line of s.split("\r\n")) expect(line.length).toBeLessThanOrEqual(998);
}

/** Line breaks as both parsers report them: LF. */
function lf(s: string): string {
  return s.replace(/\r\n|\r|\n/g, "\n");
}

/**
 * postal-mime keeps the CRLF that RFC 2046 §5.1.1 gives to a boundary delimiter as part of the
 * text, and ends a single-part body with a line break; mailparser does neither.
 */
function postalText(expected: string, multipart: boolean): string {
  const s = lf(expected);
  return multipart || !s.endsWith("\n") ? `${s}\n` : s;
}

async function parseBoth(bytes: Uint8Array): Promise<{ mp: ParsedMail; pm: Email }> {
  return { mp: await simpleParser(Buffer.from(bytes)), pm: await PostalMime.parse(bytes) };
}

describe("buildMessage: the bytes", () => {
  test("a text message, byte for byte", () => {
    const built = build({ subject: "Hello", text: "Hi Bob,\nsee you.\n" });
    expect(text(built.bytes)).toBe(
      "Date: Tue, 01 Jul 2025 09:05:03 +0000\r\n" +
        "From: Ana =?UTF-8?B?Tmd1eeG7hW4=?= <ana@example.com>\r\n" +
        "To: bob@example.net\r\n" +
        "Subject: Hello\r\n" +
        "Message-ID: <r1@example.com>\r\n" +
        "MIME-Version: 1.0\r\n" +
        "Content-Type: text/plain; charset=utf-8\r\n" +
        "Content-Transfer-Encoding: 7bit\r\n" +
        "\r\n" +
        "Hi Bob,\r\nsee you.\r\n",
    );
    expect(built).toMatchObject({ messageId: "<r1@example.com>", eightBit: false, utf8: false });
  });

  test("the same spec and options give the same bytes", () => {
    const spec = {
      subject: "x",
      text: "a",
      html: "<b>a</b>",
      attachments: [{ filename: "a.bin", content: new Uint8Array([1]) }],
    };
    expect(build(spec).bytes).toEqual(build(spec).bytes);
  });

  test("Cc and Reply-To when given; never a Bcc", () => {
    const built = text(
      build({ cc: [{ name: "Carol", address: "c@x" }], replyTo: [{ address: "r@x" }], text: "" }).bytes,
    );
    expect(built).toContain("\r\nCc: Carol <c@x>\r\n");
    expect(built).toContain("\r\nReply-To: r@x\r\n");
    expect(built).not.toMatch(/^bcc:/im);
  });

  test("no text and no HTML: an empty text/plain body", () => {
    const built = text(build({}).bytes);
    expect(built).toContain(
      "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n",
    );
    expect(built.endsWith("\r\n\r\n")).toBe(true);
  });

  test("bare LF and bare CR in text become CRLF", () => {
    const built = text(build({ text: "a\nb\rc\r\nd" }).bytes);
    expect(built.endsWith("\r\n\r\na\r\nb\r\nc\r\nd")).toBe(true);
  });
});

describe("buildMessage: transfer encodings", () => {
  test("non-ASCII text is quoted-printable and 7-bit clean", () => {
    const built = build({ text: "Xin chào" });
    expect(headerOf(built.bytes, "Content-Transfer-Encoding")).toBe("quoted-printable");
    expect(text(built.bytes)).toContain("\r\n\r\nXin ch=C3=A0o");
    checkWireShape(built.bytes, true);
  });

  test("ASCII with a line over 998 octets is quoted-printable too", () => {
    const built = build({ text: "x".repeat(1200) });
    expect(headerOf(built.bytes, "Content-Transfer-Encoding")).toBe("quoted-printable");
    checkWireShape(built.bytes, true);
  });

  test("with 8BITMIME, non-ASCII text in short lines goes as 8bit and says so", () => {
    const built = build({ text: "Xin chào", html: "<p>ASCII</p>" }, { eightBit: true });
    expect(built.eightBit).toBe(true);
    expect(text(built.bytes)).toContain("Content-Transfer-Encoding: 8bit\r\n\r\nXin chào\r\n");
    expect(text(built.bytes)).toContain("Content-Transfer-Encoding: 7bit\r\n\r\n<p>ASCII</p>\r\n");
    checkWireShape(built.bytes, false);
  });

  test("with 8BITMIME, ASCII stays 7bit and long lines stay quoted-printable; no 8bit needed", () => {
    for (const body of ["plain", `${"é".repeat(600)}`]) {
      const built = build({ text: body }, { eightBit: true });
      expect(built.eightBit).toBe(false);
      checkWireShape(built.bytes, true);
    }
  });

  test("NUL is never sent raw", () => {
    const built = build({ text: "a\0b" }, { eightBit: true });
    expect(headerOf(built.bytes, "Content-Transfer-Encoding")).toBe("quoted-printable");
  });
});

describe("buildMessage: structure", () => {
  test("text + HTML is multipart/alternative, text first", () => {
    const built = text(build({ text: "t", html: "<p>h</p>" }).bytes);
    expect(built).toContain('Content-Type: multipart/alternative; boundary="=_alt_r2"\r\n');
    expect(built.indexOf("text/plain")).toBeLessThan(built.indexOf("text/html"));
    expect(built.endsWith("--=_alt_r2--")).toBe(true);
  });

  test("HTML alone is text/html", () => {
    expect(headerOf(build({ html: "<p>h</p>" }).bytes, "Content-Type")).toBe("text/html; charset=utf-8");
  });

  test("attachments make multipart/mixed; content types come from the file name", () => {
    const built = text(
      build({
        text: "see attached",
        attachments: [
          { filename: "photo.png", content: new Uint8Array([0x89, 0x50]) },
          { filename: "data.unknownext", content: new Uint8Array([1]) },
          { filename: "notes.txt", content: new Uint8Array([0x41]), contentType: "text/markdown" },
        ],
      }).bytes,
    );
    expect(built).toMatch(/^Content-Type: multipart\/mixed; boundary="=_mix_r2"\r$/m);
    expect(built).toContain(
      'Content-Type: image/png; name="photo.png"\r\nContent-Transfer-Encoding: base64\r\n',
    );
    expect(built).toContain('Content-Type: application/octet-stream; name="data.unknownext"');
    expect(built).toContain('Content-Type: text/markdown; name="notes.txt"');
    expect(built).toContain('Content-Disposition: attachment; filename="photo.png"\r\n\r\niVA=\r\n');
  });

  test("inline parts with a Content-ID go into multipart/related with the body", async () => {
    const logo = new Uint8Array([0x47, 0x49, 0x46, 0x38]);
    const built = build({
      text: "t",
      html: '<img src="cid:logo@x">',
      attachments: [
        { filename: "logo.gif", content: logo, inline: true, contentId: "logo@x" },
        { filename: "report.pdf", content: new Uint8Array([0x25]) },
      ],
    });
    const s = text(built.bytes);
    expect(s).toMatch(/^Content-Type: multipart\/mixed;/m);
    expect(s).toContain(
      'Content-Type: multipart/related; boundary="=_rel_r3";\r\n type="multipart/alternative"\r\n',
    );
    expect(s).toContain('Content-Disposition: inline; filename="logo.gif"\r\nContent-ID: <logo@x>\r\n');
    // The related part sits inside mixed, before the attachment.
    expect(s.indexOf("=_rel_r3--")).toBeLessThan(s.indexOf("report.pdf"));
    const { mp, pm } = await parseBoth(built.bytes);
    const mpLogo = mp.attachments.find((a) => a.filename === "logo.gif")!;
    expect(mpLogo.cid).toBe("logo@x");
    expect(new Uint8Array(mpLogo.content)).toEqual(logo);
    const pmLogo = pm.attachments.find((a) => a.filename === "logo.gif")!;
    expect(pmLogo.contentId).toBe("<logo@x>");
    expect(pmLogo.related).toBe(true);
  });

  test("an inline part without a Content-ID stays in mixed, marked inline", () => {
    const s = text(
      build({ text: "t", attachments: [{ filename: "a.txt", content: new Uint8Array(), inline: true }] })
        .bytes,
    );
    expect(s).not.toContain("multipart/related");
    expect(s).toContain('Content-Disposition: inline; filename="a.txt"');
  });

  test("a boundary found in the content is drawn again", () => {
    const built = text(build({ text: "--=_alt_r2 is in here", html: "x" }).bytes);
    expect(built).toContain('boundary="=_alt_r3"');
  });

  test("a random source that only repeats a boundary in the content is an error, not a broken message", () => {
    expect(() =>
      buildMessage(
        { from: BOB, to: [BOB], text: "--=_alt_same", html: "x" },
        { ...options(), random: () => "same" },
      ),
    ).toThrow(/boundar/);
  });
});

describe("buildMessage: headers", () => {
  test("caller headers replace generated ones in place and the rest go before MIME-Version", () => {
    const built = build({
      subject: "generated",
      text: "",
      headers: [
        ["subject", "mine"],
        ["X-Mailer", "smtpkit"],
        ["Message-ID", "<custom@id>"],
        ["To", '"Doe, Jane" <jane@x>, Nguyễn <n@x>'],
      ],
    });
    const s = text(built.bytes);
    expect(s).not.toContain("generated");
    expect(s).toContain("\r\nsubject: mine\r\n");
    expect(s).toContain('\r\nTo: "Doe, Jane" <jane@x>, =?UTF-8?B?Tmd1eeG7hW4=?= <n@x>\r\n');
    expect(s).toContain("\r\nX-Mailer: smtpkit\r\nMIME-Version: 1.0\r\n");
    expect(s.match(/^message-id:/gim)?.length).toBe(1);
    expect(built.messageId).toBe("<custom@id>");
  });

  test("no To header when there are no To recipients (Bcc only); a replaced To is not checked", () => {
    expect(text(build({ to: [], text: "" }).bytes)).not.toMatch(/^To:/m);
    const built = build({
      to: [{ address: "người@ví-dụ.vn" }],
      headers: [["To", "undisclosed-recipients:;"]],
    });
    expect(built.utf8).toBe(false);
    expect(text(built.bytes)).toContain("\r\nTo: undisclosed-recipients:;\r\n");
  });

  test("non-ASCII caller values are encoded; printable ASCII (even pre-encoded) passes as is", async () => {
    const built = build({
      text: "",
      headers: [
        ["X-Note", "Ghi chú"],
        ["X-Pre", "=?UTF-8?Q?d=C3=A9j=C3=A0?="],
      ],
    });
    checkWireShape(built.bytes, true);
    expect(headerOf(built.bytes, "X-Pre")).toBe("=?UTF-8?Q?d=C3=A9j=C3=A0?=");
    expect(decodeEncodedWords(headerOf(built.bytes, "X-Note")!)).toBe("Ghi chú");
    const { pm } = await parseBoth(built.bytes);
    expect(pm.headers.find((h) => h.key === "x-note")?.value).toBe("Ghi =?UTF-8?Q?ch=C3=BA?=");
  });

  test("a caller value with a word too long to fold is encoded so that it folds", () => {
    const value = `token ${"z".repeat(1500)}`;
    const built = build({ text: "", headers: [["X-Long", value]] });
    checkWireShape(built.bytes, true);
    expect(decodeEncodedWords(headerOf(built.bytes, "X-Long")!)).toBe(value);
  });

  test("a Bcc header, a line break in a value, or a bad name is refused", () => {
    expect(() => build({ headers: [["Bcc", "x@y"]] })).toThrow(HeaderError);
    expect(() => build({ headers: [["X-A", "a\r\nBcc: x@y"]] })).toThrow(HeaderError);
    expect(() => build({ headers: [["X A", "b"]] })).toThrow(HeaderError);
    expect(() => build({ headers: [["Cc", "not an <address"]] })).toThrow(AddressParseError);
    expect(() => build({ to: [{ address: "a@b>\r\nBcc: c@d" }] })).toThrow(AddressParseError);
  });

  test("a non-ASCII address needs SMTPUTF8: refused without it, raw and flagged with it", async () => {
    const eai = { name: "Người dùng", address: "người@ví-dụ.vn" };
    expect(() => build({ to: [eai] })).toThrow(NeedsSmtpUtf8Error);
    const built = build({ to: [eai], subject: "chào", text: "x" }, { utf8Headers: true });
    expect(built.utf8).toBe(true);
    expect(headerOf(built.bytes, "To")).toBe("=?UTF-8?B?TmfGsOG7nWkgZMO5bmc=?= <người@ví-dụ.vn>");
    const { mp, pm } = await parseBoth(built.bytes);
    expect(mp.to).toMatchObject({ value: [eai] });
    expect(pm.to).toEqual([eai]);
  });

  test("utf8Headers alone does not make a message need SMTPUTF8", () => {
    const built = build({ subject: "chào", text: "x" }, { utf8Headers: true });
    expect(built.utf8).toBe(false);
    checkWireShape(built.bytes, true);
  });

  test("long subjects and many recipients fold within 78 (76 with encoded-words)", () => {
    const built = build({
      subject: `${"Tiếng Việt ".repeat(12)}and ${"plain words ".repeat(10)}`,
      to: Array.from({ length: 12 }, (_, i) => ({ name: `Người ${i}`, address: `u${i}@example.com` })),
      text: "",
    });
    const head = text(built.bytes).split("\r\n\r\n")[0]!;
    for (const line of head.split("\r\n")) expect(line.length).toBeLessThanOrEqual(78);
  });
});

describe("buildMessage: read back by mailparser and postal-mime", () => {
  test("Vietnamese, emoji and CJK in subject, names, text, HTML and file names", async () => {
    const from = { name: "Nguyễn Thị Ánh 😀", address: "anh@example.com" };
    const to = [
      { name: "山田 太郎", address: "taro@example.jp" },
      { name: "Quoted, Name", address: "q@example.com" },
    ];
    const cc = [{ name: "Ωμέγα", address: "o@example.gr" }];
    const spec: Partial<MessageSpec> = {
      from,
      to,
      cc,
      replyTo: [{ address: "reply@example.com" }],
      subject: "Chào mừng 🎉 — 漢字テスト, with a fairly long tail to force folding across lines",
      text: "Xin chào thế giới 🌏\n漢字かなカナ\n",
      html: "<p>Xin chào <b>thế giới</b> 🌏</p>",
      attachments: [
        { filename: "Báo cáo tháng 7 — 漢字.pdf", content: new Uint8Array([0x25, 0x50, 0x44, 0x46]) },
        { filename: "empty.bin", content: new Uint8Array() },
      ],
    };
    const built = build(spec);
    checkWireShape(built.bytes, true);
    const { mp, pm } = await parseBoth(built.bytes);
    for (const subject of [mp.subject, pm.subject]) expect(subject).toBe(spec.subject!);
    expect(mp.from?.value).toEqual([from]);
    expect(mp.to).toMatchObject({ value: to });
    expect(mp.cc).toMatchObject({ value: cc });
    expect(pm.from).toEqual(from);
    expect(pm.to).toEqual(to);
    expect(pm.cc).toEqual(cc);
    expect(pm.replyTo).toEqual([{ address: "reply@example.com", name: "" }]);
    expect(mp.text).toBe(lf(spec.text!));
    expect(pm.text).toBe(postalText(spec.text!, true));
    expect(mp.html).toBe(spec.html!);
    expect(pm.html).toBe(postalText(spec.html!, true));
    expect(mp.attachments.map((a) => [a.filename, [...a.content]])).toEqual([
      ["Báo cáo tháng 7 — 漢字.pdf", [0x25, 0x50, 0x44, 0x46]],
      ["empty.bin", []],
    ]);
    expect(pm.attachments.map((a) => [a.filename, [...new Uint8Array(a.content as ArrayBuffer)]])).toEqual([
      ["Báo cáo tháng 7 — 漢字.pdf", [0x25, 0x50, 0x44, 0x46]],
      ["empty.bin", []],
    ]);
  });

  test("a 3 MB binary attachment and a very long non-ASCII file name come back exactly", async () => {
    const big = new Uint8Array(3 * 1024 * 1024);
    // A fixed pseudo-random fill: every byte value, in no simple pattern.
    let x = 2463534242;
    for (let i = 0; i < big.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      big[i] = x & 0xff;
    }
    const filename = `${"Tệp đính kèm có tên rất dài ".repeat(12)}漢字😀.bin`;
    const built = build({ text: "big", attachments: [{ filename, content: big }] });
    checkWireShape(built.bytes, true);
    const { mp, pm } = await parseBoth(built.bytes);
    expect(mp.attachments.length).toBe(1);
    expect(mp.attachments[0]!.filename).toBe(filename);
    expect(Buffer.compare(mp.attachments[0]!.content, Buffer.from(big))).toBe(0);
    expect(pm.attachments[0]!.filename).toBe(filename);
    expect(Buffer.compare(Buffer.from(pm.attachments[0]!.content as ArrayBuffer), Buffer.from(big))).toBe(0);
  });

  const samples = [
    "Xin chào",
    "Nguyễn",
    "😀",
    "👩‍👩‍👧‍👦",
    "漢字",
    "かな",
    "한국어",
    " ",
    "  ",
    ",",
    '"',
    "=?",
    "_",
    "(",
    "<",
    "a",
    "Re:",
  ];
  const pieces = fc.array(fc.constantFrom(...samples), { maxLength: 12 }).map((a) => a.join(""));
  const phrase = fc.oneof(
    fc.string({ unit: "grapheme", maxLength: 60 }),
    fc.string({ unit: "binary", maxLength: 60 }),
    pieces,
  );
  const body = fc.oneof(
    fc.string({ unit: "grapheme", maxLength: 400 }),
    fc.string({ unit: "binary", maxLength: 400 }),
    fc
      .array(fc.oneof(pieces, fc.constantFrom("\n", "\r\n", "x".repeat(1100))), { maxLength: 10 })
      .map((a) => a.join("")),
  );
  const address = fc.constantFrom("a@example.com", "b.c@example.org", "d+tag@mail.example.net");
  // mailparser trims display names, so names here have no white space at the ends.
  const mailbox = fc.record({ name: phrase.map((n) => n.trim()), address });
  const attachment: fc.Arbitrary<AttachmentSpec> = fc.record({
    filename: fc
      .oneof(fc.string({ unit: "grapheme", minLength: 1, maxLength: 120 }), pieces)
      .map((s) => `${s.trim() || "f"}.bin`),
    content: fc.uint8Array({ maxLength: 300 }),
  });
  const spec = fc.record(
    {
      from: mailbox,
      to: fc.array(mailbox, { minLength: 1, maxLength: 3 }),
      subject: phrase,
      text: body,
      html: body,
      attachments: fc.array(attachment, { maxLength: 2 }),
    },
    { requiredKeys: ["from", "to"] },
  );

  test("property: 7-bit, CRLF, lines ≤ 998; both parsers read back every field", async () => {
    await fc.assert(
      fc.asyncProperty(spec, async (s) => {
        const built = build(s);
        checkWireShape(built.bytes, true);
        const { mp, pm } = await parseBoth(built.bytes);
        if (s.subject !== undefined) {
          // Both parsers report an empty Subject as absent.
          expect(mp.subject ?? "").toBe(s.subject);
          expect(pm.subject ?? "").toBe(s.subject);
        }
        expect(mp.from?.value).toEqual([s.from]);
        expect(mp.to).toMatchObject({ value: s.to });
        expect(pm.from).toEqual(s.from);
        expect(pm.to).toEqual(s.to);
        const multipart = (s.html !== undefined && s.text !== undefined) || (s.attachments?.length ?? 0) > 0;
        // Both parsers report an empty body as absent.
        if (s.text) {
          expect(mp.text).toBe(lf(s.text));
          expect(pm.text).toBe(postalText(s.text, multipart));
        }
        if (s.html) {
          expect(mp.html).toBe(lf(s.html));
          expect(pm.html).toBe(postalText(s.html, multipart));
        }
        const files = (s.attachments ?? []).map((a) => [a.filename, [...a.content]]);
        expect(mp.attachments.map((a) => [a.filename, [...a.content]])).toEqual(files);
        expect(
          pm.attachments.map((a) => [a.filename, [...new Uint8Array(a.content as ArrayBuffer)]]),
        ).toEqual(files);
      }),
      { numRuns: 40 },
    );
  });

  test("property: with 8BITMIME allowed the parsers still read the text, and 8bit is flagged only when used", async () => {
    await fc.assert(
      fc.asyncProperty(body, async (t) => {
        const built = build({ text: t }, { eightBit: true });
        checkWireShape(built.bytes, !built.eightBit);
        expect(built.eightBit).toBe(built.bytes.some((b) => b >= 0x80));
        const { mp } = await parseBoth(built.bytes);
        expect(mp.text ?? "").toBe(lf(t));
      }),
      { numRuns: 30 },
    );
  });
});

describe("character handling once done with regexes", () => {
  const units = (alphabet: string[]) => fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 20 });

  test("property: line breaks of every kind become CRLF, as /\\r\\n|\\r|\\n/g replaced them", () => {
    fc.assert(
      fc.property(units(["a", " ", "\r", "\n", "\r\n", "\n\r", "\u2028", "\x85"]), (t) => {
        // With 8BITMIME the body is written as it is, but for its line breaks.
        const built = text(build({ text: t }, { eightBit: true }).bytes);
        expect(built.slice(built.indexOf("\r\n\r\n") + 4)).toBe(t.replace(/\r\n|\r|\n/g, "\r\n"));
      }),
      { numRuns: 300 },
    );
  });

  test("property: a Message-ID keeps what [^A-Za-z0-9.\\-_] leaves of random()", () => {
    fc.assert(
      fc.property(units(["a", "Z", "0", ".", "-", "_", "+", "/", "=", " ", "é", "\u{1f600}"]), (r) => {
        const kept = r.replace(/[^A-Za-z0-9.\-_]/g, "");
        if (kept === "") expect(() => build({}, { random: () => r })).toThrow("nothing usable");
        else expect(build({}, { random: () => r }).messageId).toBe(`<${kept}@example.com>`);
      }),
      { numRuns: 300 },
    );
  });

  test("property: a Message-ID domain is refused for what [\\s<>] finds", () => {
    fc.assert(
      fc.property(units(["a", ".", "<", ">", " ", "\t", "\u00a0", "\u2028", "\ufeff", "é"]), (domain) => {
        const refused = domain === "" || /[\s<>]/.test(domain);
        if (refused)
          expect(() => build({}, { messageIdDomain: domain })).toThrow("invalid Message-ID domain");
        else expect(build({}, { messageIdDomain: domain }).messageId).toBe(`<r1@${domain}>`);
      }),
      { numRuns: 300 },
    );
  });
});
