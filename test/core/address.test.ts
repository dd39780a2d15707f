import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  AddressError,
  formatMailbox,
  formatPath,
  mailboxNeedsUtf8,
  parseAddressLiteral,
  parseDomain,
  parseDomainOrLiteral,
  parseMailbox,
  parsePath,
  pathNeedsUtf8,
  quoteLocalPart,
  sameMailbox,
  unquoteLocalPart,
} from "../../src/core/address.ts";

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof AddressError) return error.reason;
    throw error;
  }
  throw new Error("expected an AddressError");
}

describe("parseMailbox: local part", () => {
  test("dot-string", () => {
    expect(parseMailbox("user@example.com")).toEqual({ local: "user", domain: "example.com" });
    expect(parseMailbox("first.last+tag@example.com")).toEqual({
      local: "first.last+tag",
      domain: "example.com",
    });
    expect(parseMailbox("!#$%&'*+-/=?^_`{|}~@x")).toEqual({ local: "!#$%&'*+-/=?^_`{|}~", domain: "x" });
  });

  test("empty atoms are rejected", () => {
    for (const bad of [".a@x", "a.@x", "a..b@x"]) expect(() => parseMailbox(bad)).toThrow(/empty atom/);
    expect(() => parseMailbox("@x")).toThrow(/empty local part/);
  });

  test("characters outside atext are rejected in a dot-string", () => {
    expect(() => parseMailbox("a b@x")).toThrow(/" " \(U\+0020\) is not allowed/);
    expect(() => parseMailbox("a(b)@x")).toThrow(/not allowed in an unquoted local part/);
    expect(() => parseMailbox('a"b"@x')).toThrow(/quote inside an unquoted/);
    expect(() => parseMailbox("a\\b@x")).toThrow(/not allowed/);
  });

  test("quoted strings keep their quotes and escapes", () => {
    expect(parseMailbox('"john doe"@example.com')).toEqual({ local: '"john doe"', domain: "example.com" });
    expect(parseMailbox('"a\\"b\\\\c"@x')).toEqual({ local: '"a\\"b\\\\c"', domain: "x" });
    expect(parseMailbox('"a@b"@x')).toEqual({ local: '"a@b"', domain: "x" });
    expect(parseMailbox('""@x')).toEqual({ local: '""', domain: "x" });
    expect(parseMailbox('"(),:;<>[]"@x').local).toBe('"(),:;<>[]"');
  });

  test("unbalanced and misplaced quotes are rejected", () => {
    expect(() => parseMailbox('"abc@x')).toThrow(/unbalanced quote/);
    expect(() => parseMailbox('"abc\\"@x')).toThrow(/unbalanced quote/);
    expect(() => parseMailbox('"abc\\')).toThrow(/unbalanced quote/);
    expect(() => parseMailbox('"a"b@x')).toThrow(/after the quoted local part/);
    expect(() => parseMailbox('"a"')).toThrow(/missing "@domain"/);
  });

  test("NUL and control characters are rejected everywhere, with their position", () => {
    expect(() => parseMailbox("a\0b@x")).toThrow(/control character U\+0000 at offset 1/);
    expect(() => parseMailbox('"a\tb"@x')).toThrow(/U\+0009/);
    expect(() => parseMailbox("a@x\r\n")).toThrow(/U\+000D/);
    expect(() => parseMailbox("a@x\x7f")).toThrow(/U\+007F/);
    expect(() => parseMailbox('"a\\\0"@x')).toThrow(/U\+0000/);
  });

  test("a local part of 64 octets passes, 65 fails naming the limit", () => {
    expect(parseMailbox(`${"a".repeat(64)}@x`).local).toHaveLength(64);
    expect(() => parseMailbox(`${"a".repeat(70)}@x`)).toThrow(
      "local part is 70 octets, the limit is 64 (RFC 5321 §4.5.3.1.1)",
    );
    expect(reason(() => parseMailbox(`${"a".repeat(65)}@x`))).toBe("length");
  });

  test("the local-part limit counts octets, not characters", () => {
    const local = "é".repeat(33); // 66 octets
    expect(() => parseMailbox(`${local}@x`, { utf8: true })).toThrow(/66 octets/);
  });
});

describe("parseMailbox: domain", () => {
  test("LDH labels", () => {
    expect(parseMailbox("a@mail-1.example.co.uk").domain).toBe("mail-1.example.co.uk");
    expect(parseMailbox("a@localhost").domain).toBe("localhost");
    expect(parseMailbox("a@1.2.3.4").domain).toBe("1.2.3.4");
  });

  test("bad labels are rejected", () => {
    expect(() => parseMailbox("a@")).toThrow(/empty domain/);
    expect(() => parseMailbox("a@-x.com")).toThrow(/hyphen/);
    expect(() => parseMailbox("a@x-.com")).toThrow(/hyphen/);
    expect(() => parseMailbox("a@x..com")).toThrow(/empty label/);
    expect(() => parseMailbox("a@x.com.")).toThrow(/empty label/);
    expect(() => parseMailbox("a@x_y.com")).toThrow(/"_" \(U\+005F\) is not allowed in a domain/);
    expect(() => parseMailbox("a@x y")).toThrow(/not allowed in a domain/);
  });

  test("u@d@x is rejected", () => {
    expect(() => parseMailbox("u@d@x")).toThrow(/more than one @/);
  });

  test("label and domain limits", () => {
    expect(parseDomain(`${"a".repeat(63)}.com`)).toHaveLength(67);
    expect(() => parseDomain(`${"a".repeat(64)}.com`)).toThrow(/64 octets, the limit is 63 \(RFC 1035/);
    const label = "a".repeat(63);
    const domain255 = [label, label, label, label].join(".");
    expect(domain255).toHaveLength(255);
    expect(parseDomain(domain255)).toBe(domain255);
    expect(() => parseDomain(`${domain255}a`)).toThrow(
      "domain is 256 octets, the limit is 255 (RFC 5321 §4.5.3.1.2)",
    );
    expect(reason(() => parseDomain(`${domain255}a`))).toBe("length");
  });

  test("IPv4 address literals", () => {
    expect(parseMailbox("a@[192.0.2.1]").domain).toBe("[192.0.2.1]");
    expect(parseMailbox("a@[0.0.0.0]").domain).toBe("[0.0.0.0]");
    for (const bad of [
      "[256.0.0.1]",
      "[1.2.3]",
      "[1.2.3.4.5]",
      "[1.2.3.04444]",
      "[]",
      "[1.2.3.4",
      "1.2.3.4]",
    ]) {
      expect(() => parseDomainOrLiteral(bad)).toThrow(AddressError);
    }
  });

  test("IPv6 address literals: full, compressed, with IPv4 tail", () => {
    const good = [
      "[IPv6:2001:db8:0:0:0:0:0:1]",
      "[IPv6:2001:db8::1]",
      "[IPv6:::1]",
      "[IPv6:::]",
      "[IPv6:fe80::]",
      "[ipv6:FE80::A:b]",
      "[IPv6:::ffff:192.0.2.1]",
      "[IPv6:0:0:0:0:0:ffff:192.0.2.1]",
      "[IPv6:1:2:3:4::192.0.2.1]",
      "[IPv6:1:2:3::4:5:6]",
    ];
    for (const literal of good) expect(parseMailbox(`a@${literal}`).domain).toBe(literal);
    const bad = [
      "[IPv6:1:2:3:4:5:6:7]",
      "[IPv6:1:2:3:4:5:6:7:8:9]",
      "[IPv6:1::2::3]",
      "[IPv6:12345::]",
      "[IPv6:g::1]",
      "[IPv6:1:2:3:4:5:6:7::]",
      "[IPv6:1:2:3:4:5::192.0.2.1]",
      "[IPv6:::300.0.0.1]",
      "[IPv6:]",
      "[2001:db8::1]",
    ];
    for (const literal of bad) expect(() => parseMailbox(`a@${literal}`)).toThrow(AddressError);
  });

  test("general address literals: only the registered IPv6 tag is accepted", () => {
    expect(() => parseAddressLiteral("[x-tag:some.thing]")).toThrow('unknown address literal tag "x-tag"');
    expect(() => parseAddressLiteral("[2001:db8::1]")).toThrow(/only IPv6 is registered/);
    expect(() => parseAddressLiteral("[:x]")).toThrow(/malformed address literal/);
    expect(() => parseAddressLiteral("[host]")).toThrow(/malformed address literal/);
    expect(parseAddressLiteral("[IPv6:::1]")).toBe("[IPv6:::1]");
  });
});

describe("UTF-8 (RFC 6531)", () => {
  test("non-ASCII needs the utf8 option, and says so", () => {
    expect(() => parseMailbox("jörg@example.com")).toThrow(/needs SMTPUTF8/);
    expect(reason(() => parseMailbox("jörg@example.com"))).toBe("utf8");
    expect(reason(() => parseMailbox("user@bücher.de"))).toBe("utf8");
    expect(reason(() => parseMailbox('"jö rg"@x'))).toBe("utf8");
    expect(reason(() => parseDomain("bücher.de"))).toBe("utf8");
  });

  test("with utf8 the local part, quoted strings and U-labels may hold UTF-8", () => {
    expect(parseMailbox("jörg@bücher.de", { utf8: true })).toEqual({ local: "jörg", domain: "bücher.de" });
    expect(parseMailbox("用户@例子.广告", { utf8: true })).toEqual({ local: "用户", domain: "例子.广告" });
    expect(parseMailbox('"jö rg"@x', { utf8: true }).local).toBe('"jö rg"');
  });

  test("UTF-8 is never allowed inside an address literal", () => {
    expect(() => parseMailbox("a@[IPv6:ü::1]", { utf8: true })).toThrow(/malformed/);
  });

  test("mailboxNeedsUtf8", () => {
    expect(mailboxNeedsUtf8({ local: "a", domain: "b" })).toBe(false);
    expect(mailboxNeedsUtf8({ local: "ä", domain: "b" })).toBe(true);
    expect(mailboxNeedsUtf8({ local: "a", domain: "bä" })).toBe(true);
    expect(pathNeedsUtf8({ mailbox: null })).toBe(false);
  });
});

describe("parsePath", () => {
  test("the null path", () => {
    expect(parsePath("<>")).toEqual({ mailbox: null });
  });

  test("an ordinary path", () => {
    expect(parsePath("<u@d>")).toEqual({ mailbox: { local: "u", domain: "d" } });
  });

  test("a quoted local part containing > and @", () => {
    expect(parsePath('<"a>b@c"@d>')).toEqual({ mailbox: { local: '"a>b@c"', domain: "d" } });
  });

  test("the obsolete source route is parsed and kept", () => {
    expect(parsePath("<@a,@b:u@d>")).toEqual({ mailbox: { local: "u", domain: "d" }, route: ["a", "b"] });
    expect(parsePath("<@relay.example:u@d>").route).toEqual(["relay.example"]);
    expect(() => parsePath("<@a,b:u@d>")).toThrow(/lacks its "@"/);
    expect(() => parsePath("<@a,@:u@d>")).toThrow(/empty domain/);
    expect(() => parsePath("<@a u@d>")).toThrow(/source route/);
    expect(() => parsePath("<@a:>")).toThrow(AddressError);
  });

  test("angle brackets are required and must balance", () => {
    for (const bad of ["u@d", "<u@d", "u@d>", "<", ">", "", " <u@d>", "<u@d> "]) {
      expect(() => parsePath(bad)).toThrow(/angle brackets/);
    }
    expect(() => parsePath("<<u@d>>")).toThrow(AddressError);
    expect(() => parsePath("<u@d>x>")).toThrow(AddressError);
  });

  test("hostile paths", () => {
    expect(() => parsePath("<u@d@x>")).toThrow(/more than one @/);
    expect(() => parsePath("<u\0@d>")).toThrow(/U\+0000/);
    expect(() => parsePath("<u@d\r\nRCPT TO:<x@y>>")).toThrow(/U\+000D/);
    expect(() => parsePath('<"unbalanced@d>')).toThrow(/unbalanced quote/);
  });

  test("the path limit is 256 octets including the brackets", () => {
    const local = "a".repeat(64);
    const label = "b".repeat(63);
    const domain = [label, label, label.slice(0, 60)].join("."); // 188
    const path = `<${local}@${domain}>`; // 1 + 64 + 1 + 188 + 1 = 255
    expect(path).toHaveLength(255);
    expect(parsePath(path).mailbox?.domain).toBe(domain);
    expect(parsePath(`<${local}@${domain}b>`).mailbox).not.toBeNull();
    expect(() => parsePath(`<${local}@${domain}bb>`)).toThrow(
      "path is 257 octets, the limit is 256 (RFC 5321 §4.5.3.1.3)",
    );
  });
});

describe("formatting", () => {
  test("formatMailbox and formatPath", () => {
    expect(formatMailbox({ local: '"a b"', domain: "x" })).toBe('"a b"@x');
    expect(formatMailbox({ local: "Postmaster", domain: "" })).toBe("Postmaster");
    expect(formatPath({ mailbox: null })).toBe("<>");
    expect(formatPath({ mailbox: { local: "u", domain: "d" } })).toBe("<u@d>");
    expect(formatPath({ mailbox: { local: "u", domain: "d" }, route: ["a", "b"] })).toBe("<@a,@b:u@d>");
    expect(formatPath({ mailbox: { local: "u", domain: "d" }, route: [] })).toBe("<u@d>");
  });

  test("quoteLocalPart and unquoteLocalPart", () => {
    expect(quoteLocalPart("john.doe")).toBe("john.doe");
    expect(quoteLocalPart("john doe")).toBe('"john doe"');
    expect(quoteLocalPart('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(quoteLocalPart("a..b")).toBe('"a..b"');
    expect(quoteLocalPart("")).toBe('""');
    expect(unquoteLocalPart('"a\\"b\\\\c"')).toBe('a"b\\c');
    expect(unquoteLocalPart("plain")).toBe("plain");
  });

  test("sameMailbox compares the domain case-insensitively only", () => {
    expect(sameMailbox({ local: "u", domain: "EXAMPLE.com" }, { local: "u", domain: "example.COM" })).toBe(
      true,
    );
    expect(sameMailbox({ local: "U", domain: "x" }, { local: "u", domain: "x" })).toBe(false);
  });

  const printableLocal = fc.string({
    unit: fc.integer({ min: 32, max: 126 }).map((c) => String.fromCharCode(c)),
    maxLength: 40,
  });
  const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
  const domain = fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => labels.join("."));

  test("property: any printable local-part value survives quote -> parse -> unquote", () => {
    fc.assert(
      fc.property(printableLocal, domain, (value, d) => {
        const local = quoteLocalPart(value);
        fc.pre(local.length <= 64);
        const parsed = parsePath(formatPath({ mailbox: { local, domain: d } }));
        expect(parsed.mailbox).toEqual({ local, domain: d });
        expect(unquoteLocalPart(local)).toBe(value);
      }),
    );
  });

  test("property: format(parse(path)) is the identity on valid paths", () => {
    fc.assert(
      fc.property(printableLocal, domain, fc.array(domain, { maxLength: 2 }), (value, d, route) => {
        const local = quoteLocalPart(value);
        fc.pre(local.length <= 64);
        const text = formatPath(
          route.length > 0 ? { mailbox: { local, domain: d }, route } : { mailbox: { local, domain: d } },
        );
        expect(formatPath(parsePath(text))).toBe(text);
      }),
    );
  });

  test("property: parsing arbitrary text either succeeds or throws AddressError", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), fc.boolean(), (text, utf8) => {
        try {
          const path = parsePath(`<${text}>`, { utf8 });
          expect(parsePath(formatPath(path), { utf8 })).toEqual(path);
        } catch (error) {
          expect(error).toBeInstanceOf(AddressError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
