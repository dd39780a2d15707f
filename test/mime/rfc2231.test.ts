import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { foldHeader, unfoldHeader } from "../../src/mime/header-fold.ts";
import {
  encodeLegacyParameter,
  encodeParameter,
  MAX_PARAMETER_LENGTH,
  parseParameterizedValue,
} from "../../src/mime/rfc2231.ts";

const RUNS = { numRuns: 150 };
const samples = [
  "Tệp đính kèm",
  "báo cáo",
  "😀",
  "漢字",
  " ",
  "%",
  "'",
  "*",
  '"',
  "\\",
  ";",
  "=?",
  ".pdf",
  "x",
];
const filename = fc.oneof(
  fc.string({ unit: "binary", minLength: 1, maxLength: 200 }),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 120 }),
  fc.string({ minLength: 1, maxLength: 200 }),
  fc.array(fc.constantFrom(...samples), { minLength: 1, maxLength: 40 }).map((a) => a.join("")),
);

function roundTrip(parameters: string[]): string | undefined {
  const header = foldHeader("Content-Disposition", ["attachment", ...parameters].join("; "));
  return parseParameterizedValue(unfoldHeader(header).slice("Content-Disposition:".length)).parameters.get(
    "filename",
  );
}

describe("encodeParameter", () => {
  test("short printable ASCII is a plain quoted value", () => {
    expect(encodeParameter("filename", "report.pdf")).toEqual(['filename="report.pdf"']);
    expect(encodeParameter("filename", 'a "b" \\c.txt')).toEqual(['filename="a \\"b\\" \\\\c.txt"']);
  });

  test("non-ASCII uses filename*=UTF-8'' with percent-encoding", () => {
    expect(encodeParameter("filename", "báo cáo.pdf")).toEqual(["filename*=UTF-8''b%C3%A1o%20c%C3%A1o.pdf"]);
  });

  test("a long value is split into numbered continuations, each within the limit", () => {
    const name = `${"Tệp đính kèm rất dài ".repeat(6)}.pdf`;
    const parameters = encodeParameter("filename", name);
    expect(parameters.length).toBeGreaterThan(1);
    parameters.forEach((p, i) => {
      expect(p.startsWith(i === 0 ? "filename*0*=UTF-8''" : `filename*${i}*=`)).toBe(true);
      expect(p.length).toBeLessThanOrEqual(MAX_PARAMETER_LENGTH);
    });
    expect(roundTrip(parameters)).toBe(name);
  });

  test("long plain ASCII is continued too", () => {
    const name = `${"a".repeat(200)}.txt`;
    expect(encodeParameter("filename", name).length).toBeGreaterThan(1);
    expect(roundTrip(encodeParameter("filename", name))).toBe(name);
  });

  test("property: decodes back exactly; 7-bit; segments within the limit, each whole UTF-8", () => {
    fc.assert(
      fc.property(filename, (name) => {
        const parameters = encodeParameter("filename", name);
        expect(roundTrip(parameters)).toBe(name);
        for (const p of parameters) {
          expect(p).toMatch(/^[\x20-\x7e]+$/);
          expect(p.length).toBeLessThanOrEqual(MAX_PARAMETER_LENGTH);
          const m = /^filename\*\d+\*=(?:UTF-8'')?(.*)$/.exec(p);
          if (m) {
            const octets = m[1]!.replace(/%([0-9A-F]{2})/g, (_, h: string) =>
              String.fromCharCode(Number.parseInt(h, 16)),
            );
            new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(octets, "latin1"));
          }
        }
      }),
      RUNS,
    );
  });
});

describe("encodeLegacyParameter", () => {
  test("plain when plain will do, RFC 2047 words in quotes otherwise", () => {
    expect(encodeLegacyParameter("name", "a.txt")).toBe('name="a.txt"');
    expect(encodeLegacyParameter("name", "báo cáo.pdf")).toMatch(/^name="=\?UTF-8\?[BQ]\?[^"]+\?="$/);
  });

  test("property: decodes back exactly and is 7-bit", () => {
    fc.assert(
      fc.property(filename, (name) => {
        const parameter = encodeLegacyParameter("name", name);
        expect(parameter).toMatch(/^[\x20-\x7e]+$/);
        expect(parseParameterizedValue(`application/pdf; ${parameter}`).parameters.get("name")).toBe(name);
      }),
      RUNS,
    );
  });
});

describe("parseParameterizedValue", () => {
  test("RFC 2231 §4.1 example: continuations mixing encoded and plain segments", () => {
    const parsed = parseParameterizedValue(
      "application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"",
    );
    expect(parsed.value).toBe("application/x-stuff");
    expect(parsed.parameters.get("title")).toBe("This is even more ***fun*** isn't it!");
  });

  test("RFC 2231 §3 example: plain continuations", () => {
    const parsed = parseParameterizedValue(
      'message/external-body; access-type=URL; URL*0="ftp://"; URL*1="cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"',
    );
    expect(parsed.parameters.get("access-type")).toBe("URL");
    expect(parsed.parameters.get("url")).toBe("ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar");
  });

  test("segments out of order, a semicolon inside quotes, other charsets", () => {
    const parsed = parseParameterizedValue(
      'attachment; filename*1="b;c"; filename*0="a"; x*=iso-8859-1\'\'caf%E9; size=12',
    );
    expect(parsed.parameters.get("filename")).toBe("ab;c");
    expect(parsed.parameters.get("x")).toBe("café");
    expect(parsed.parameters.get("size")).toBe("12");
  });

  test("a value without parameters", () => {
    expect(parseParameterizedValue(" inline ")).toEqual({ value: "inline", parameters: new Map() });
  });
});
