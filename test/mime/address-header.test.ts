import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  AddressParseError,
  type AddressSpec,
  formatAddress,
  formatAddressList,
  parseAddress,
  parseAddressList,
} from "../../src/mime/address-header.ts";
import { foldHeader, unfoldHeader } from "../../src/mime/header-fold.ts";

const RUNS = { numRuns: 150 };

describe("parseAddressList: one bare address", () => {
  // A bare address takes a short cut past the tokenizer; with a space in front it does not.
  test("the short cut gives what the tokenizer gives, for any text without white space", () => {
    const unit = fc.oneof(
      fc.constantFrom(..."@.-_+=!#$%&'*/?^`{|}~[]\\\"(),:;<>ÀÿĀ𝟘\u0001\u007f"),
      fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 }),
    );
    fc.assert(
      fc.property(
        fc.array(unit, { maxLength: 30 }).map((a) => a.join("")),
        (text) => {
          const bare = text.replace(/\s/g, "");
          // Errors quote the input, which differs by the space: compare whether both throw.
          const outcome = (input: string) => {
            try {
              return parseAddressList(input);
            } catch (error) {
              return error instanceof AddressParseError ? "refused" : error;
            }
          };
          expect(outcome(bare)).toEqual(outcome(` ${bare}`));
        },
      ),
      { numRuns: 3000 },
    );
    expect(parseAddressList("ana@example.com")).toEqual([{ address: "ana@example.com" }]);
  });
});

describe("parseAddress", () => {
  test("display name with non-ASCII, bare address, angle address", () => {
    expect(parseAddress("Ana Nguyễn <ana@example.com>")).toEqual({
      name: "Ana Nguyễn",
      address: "ana@example.com",
    });
    expect(parseAddress("ana@example.com")).toEqual({ address: "ana@example.com" });
    expect(parseAddress("  <ana@example.com>  ")).toEqual({ address: "ana@example.com" });
    expect(parseAddress("Ana<ana@example.com>")).toEqual({ name: "Ana", address: "ana@example.com" });
  });

  test("quoted names keep commas, escapes and inner spacing", () => {
    expect(parseAddress('"Quoted, Name" <a@b>')).toEqual({ name: "Quoted, Name", address: "a@b" });
    expect(parseAddress('"Say \\"hi\\"  twice" <a@b>')).toEqual({ name: 'Say "hi"  twice', address: "a@b" });
  });

  test("encoded-word names, adjacent words joined without the space", () => {
    expect(parseAddress("=?UTF-8?B?Tmfhu41j?= =?UTF-8?Q?_Anh?= <n@x.vn>")).toEqual({
      name: "Ngọc Anh",
      address: "n@x.vn",
    });
    expect(parseAddress("Ana =?UTF-8?B?Tmd1eeG7hW4=?= <ana@example.com>").name).toBe("Ana Nguyễn");
  });

  test("comments: ignored beside a name, used as the name in the old 'addr (Name)' form", () => {
    expect(parseAddress("Ana (Sales) <ana@example.com> (work)")).toEqual({
      name: "Ana",
      address: "ana@example.com",
    });
    expect(parseAddress("ana@example.com (Ana Nguyen)")).toEqual({
      name: "Ana Nguyen",
      address: "ana@example.com",
    });
  });

  test("quoted local parts, address literals (with IPv6 colons) and source routes", () => {
    expect(parseAddress('"john doe"@example.com')).toEqual({ address: '"john doe"@example.com' });
    expect(parseAddress("root@[IPv6:2001:db8::1]")).toEqual({ address: "root@[IPv6:2001:db8::1]" });
    expect(parseAddress("<@relay.example:ana@example.com>")).toEqual({ address: "ana@example.com" });
  });

  test("UTF-8 addresses pass through (SMTPUTF8 is the caller's decision)", () => {
    expect(parseAddress("Người dùng <người.dùng@ví-dụ.vn>")).toEqual({
      name: "Người dùng",
      address: "người.dùng@ví-dụ.vn",
    });
  });

  test("malformed input names the problem", () => {
    const bad = [
      '"unterminated <a@b>',
      "Ana <a@b",
      "Ana a@b",
      "<a@b> <c@d>",
      "<a@b> text",
      "a@b, c@d",
      "",
      "(only a comment)",
      "a>b",
      "<>",
    ];
    for (const input of bad) expect(() => parseAddress(input)).toThrow(AddressParseError);
  });
});

describe("parseAddressList", () => {
  test("commas inside quotes, comments and angle brackets do not split", () => {
    expect(parseAddressList('"Doe, John" <j@x>, Ana <a@x>, bare@x, "x,y"@z (a, b)')).toEqual([
      { name: "Doe, John", address: "j@x" },
      { name: "Ana", address: "a@x" },
      { address: "bare@x" },
      { name: "a, b", address: '"x,y"@z' },
    ]);
  });

  test("groups give their members; empty groups and empty entries give nothing", () => {
    expect(parseAddressList("Team: a@x, B <b@x>;, c@x")).toEqual([
      { address: "a@x" },
      { name: "B", address: "b@x" },
      { address: "c@x" },
    ]);
    expect(parseAddressList("undisclosed-recipients:;")).toEqual([]);
    expect(parseAddressList(" , a@x,, ")).toEqual([{ address: "a@x" }]);
  });
});

describe("formatAddress", () => {
  test("names as atoms, quoted-strings or encoded-words; bare address without a name", () => {
    expect(formatAddress({ address: "a@x" })).toBe("a@x");
    expect(formatAddress({ name: "", address: "a@x" })).toBe("a@x");
    expect(formatAddress({ name: "Ana", address: "a@x" })).toBe("Ana <a@x>");
    expect(formatAddress({ name: "Quoted, Name", address: "a@b" })).toBe('"Quoted, Name" <a@b>');
    expect(formatAddress({ name: "Ana Nguyễn", address: "ana@example.com" })).toBe(
      "Ana =?UTF-8?B?Tmd1eeG7hW4=?= <ana@example.com>",
    );
  });

  test("refuses addresses that would break the header", () => {
    for (const address of ["", "a@b\r\nBcc: x@y", "a>@b", "<a@b>"]) {
      expect(() => formatAddress({ address })).toThrow(AddressParseError);
    }
  });

  const samples = [
    "Ana",
    "Nguyễn",
    "Thị",
    "😀",
    "漢字",
    ",",
    '"',
    "\\",
    "(",
    ")",
    "<",
    ">",
    "@",
    ":",
    ";",
    ".",
    "=?",
    "?=",
    " ",
    "  ",
    "\t",
    "_",
  ];
  const name = fc.oneof(
    fc.string({ unit: "binary", maxLength: 80 }),
    fc.string({ unit: "grapheme", maxLength: 80 }),
    fc.string({ maxLength: 80 }),
    fc.array(fc.constantFrom(...samples), { maxLength: 20 }).map((a) => a.join("")),
  );
  const spec: fc.Arbitrary<AddressSpec> = fc.record({
    name,
    address: fc.constantFrom(
      "a@example.com",
      '"x y"@example.com',
      "root@[192.0.2.1]",
      "b.c+tag@mail.example.org",
    ),
  });

  test("property: a formatted list (folded and unfolded) parses back to the same names and addresses", () => {
    fc.assert(
      fc.property(fc.array(spec, { minLength: 1, maxLength: 5 }), (specs) => {
        const formatted = formatAddressList(specs);
        expect(formatted).toMatch(/^[\x20-\x7e]*$/);
        const folded = foldHeader("To", formatted, 76);
        const parsed = parseAddressList(unfoldHeader(folded).slice("To:".length));
        expect(parsed).toEqual(specs.map((s) => (s.name === "" ? { address: s.address } : s)));
      }),
      RUNS,
    );
  });
});

test("property: a source route is dropped as /^@[^:]*:/ dropped it", () => {
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom("@", ":", "a", ".", ",", " ", "\n", "é"), maxLength: 12 }),
      (inside) => {
        fc.pre(!inside.includes(">") && inside.trim() !== "");
        const expected = inside.trim().replace(/^@[^:]*:/, "");
        fc.pre(expected !== "");
        expect(parseAddress(`<${inside}>`).address).toBe(expected);
      },
    ),
  );
});
