import { describe, expect, test } from "bun:test";
import MailComposer from "nodemailer/lib/mail-composer";
import {
  htmlToText,
  indexBody,
  indexRaw,
  parseMessage,
  plainTextBody,
  snippetOf,
} from "../../src/store/parse-message.ts";

async function compose(options: ConstructorParameters<typeof MailComposer>[0]): Promise<Uint8Array> {
  return new Uint8Array(await new MailComposer(options).compile().build());
}

describe("parseMessage", () => {
  test("separates text, HTML, inline images and attachments, with stable part IDs", async () => {
    const raw = await compose({
      from: "ann@example.com",
      to: "bob@example.com",
      subject: "parts",
      text: "plain body",
      html: '<p>html body <img src="cid:logo@example.com"></p>',
      attachments: [
        { filename: "report.csv", content: "a,b\n1,2\n", contentType: "text/csv" },
        { filename: "logo.png", cid: "logo@example.com", content: Buffer.from([0x89, 0x50, 0x4e, 0x47]) },
      ],
    });
    const parsed = await parseMessage(raw);
    expect(parsed.text.trim()).toBe("plain body");
    expect(parsed.html).toContain("html body");
    const summary = parsed.parts.map(({ content, ...rest }) => ({ ...rest, size: content.length }));
    expect(summary).toEqual([
      {
        partId: "1",
        fileName: "logo.png",
        contentType: "image/png",
        contentId: "logo@example.com",
        inline: true,
        size: 4,
      },
      { partId: "2", fileName: "report.csv", contentType: "text/csv", contentId: "", inline: false, size: 8 },
    ]);
    expect(new TextDecoder().decode(parsed.parts[1]?.content)).toBe("a,b\n1,2\n");
    const again = await parseMessage(raw);
    expect(again.parts.map((part) => part.partId)).toEqual(parsed.parts.map((part) => part.partId));
  });

  test("indexBody counts attachments and builds the snippet and the lower-cased search text", async () => {
    const raw = await compose({
      from: "ann@example.com",
      to: "bob@example.com",
      subject: "index",
      html: "<html><head><style>p{}</style></head><body><p>Hello   <b>World</b></p><p>second&nbsp;line</p></body></html>",
      attachments: [{ filename: "Notes.TXT", content: "x" }],
    });
    const index = indexBody(await parseMessage(raw));
    expect(index.attachments).toBe(1);
    expect(index.inline).toBe(0);
    expect(index.snippet).toBe("Hello World second line");
    expect(index.searchText).toBe("hello world second line notes.txt");
  });
});

describe("plainTextBody and indexRaw", () => {
  const raw = (text: string) => new TextEncoder().encode(text);

  test("a plain UTF-8 or ASCII text message is read without MIME parsing", () => {
    expect(plainTextBody(raw("Subject: x\r\n\r\nGrüße\r\n"))).toBe("Grüße\r\n");
    expect(
      plainTextBody(raw('Content-Type: text/plain; charset="UTF-8"\nContent-Transfer-Encoding: 8bit\n\nhi')),
    ).toBe("hi");
    expect(plainTextBody(raw("\r\nno headers"))).toBe("no headers");
    expect(plainTextBody(raw("Subject: only headers\r\n"))).toBe("");
  });

  test("anything that needs decoding is left to postal-mime", () => {
    expect(plainTextBody(raw("Content-Transfer-Encoding: quoted-printable\r\n\r\nx=3D1"))).toBeUndefined();
    expect(plainTextBody(raw("Content-Type: text/plain; charset=iso-8859-1\r\n\r\nx"))).toBeUndefined();
    expect(plainTextBody(raw("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--"))).toBeUndefined();
  });

  test("both paths index the same way", async () => {
    const direct = await indexRaw(raw("Subject: x\r\n\r\nHello  there\r\n"));
    const decoded = await indexRaw(
      raw(
        "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHello  th=E9re\r\n",
      ),
    );
    expect(direct).toEqual({ attachments: 0, inline: 0, snippet: "Hello there", searchText: "hello there" });
    expect(decoded).toEqual({ attachments: 0, inline: 0, snippet: "Hello thére", searchText: "hello thére" });
  });
});

describe("snippetOf and htmlToText", () => {
  test("a long body is cut at 250 characters with an ellipsis", () => {
    const snippet = snippetOf(`${"word ".repeat(100)}`);
    expect(snippet.endsWith("...")).toBe(true);
    expect(snippet.length).toBeLessThanOrEqual(253);
  });

  test("the cut never splits a character made of two UTF-16 units", () => {
    const snippet = snippetOf("😀".repeat(300));
    expect(Array.from(snippet.slice(0, -3))).toHaveLength(250);
  });

  test("scripts and tags are dropped, entities decoded", () => {
    expect(htmlToText("<script>alert(1)</script>a&amp;b<br>c &lt;d&gt;").replace(/\s+/g, " ").trim()).toBe(
      "a&b c <d>",
    );
  });
});
