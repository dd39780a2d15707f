import { describe, expect, test } from "bun:test";
import {
  addressLiteral,
  FOREIGN_DOMAIN,
  FOREIGN_SENDER,
  relayPatterns,
} from "../../src/commands/probe-relay-patterns.ts";

describe("relayPatterns", () => {
  const patterns = relayPatterns({ localDomain: "mx.local.test", address: "192.0.2.25" });
  const byName = new Map(patterns.map((p) => [p.name, p]));

  test("the classic list, with stable names", () => {
    expect(patterns.map((p) => p.name)).toEqual([
      "foreign-to-foreign",
      "null-sender",
      "local-sender",
      "percent-hack",
      "source-route",
      "bang-path",
      "quoted",
      "quoted-local",
      "percent-hack-literal",
    ]);
  });

  test("names are unique and every pattern has a description", () => {
    expect(new Set(patterns.map((p) => p.name)).size).toBe(patterns.length);
    for (const p of patterns) expect(p.description.length).toBeGreaterThan(0);
  });

  test("paths are bracketed and aim at the foreign domain", () => {
    for (const p of patterns) {
      expect(p.mailFrom).toMatch(/^<.*>$/);
      expect(p.rcptTo).toMatch(/^<.*>$/);
      expect(p.rcptTo).toContain(FOREIGN_DOMAIN);
    }
  });

  test("each trick as written", () => {
    expect(byName.get("foreign-to-foreign")).toMatchObject({
      mailFrom: `<${FOREIGN_SENDER}>`,
      rcptTo: "<relay-check@example.net>",
    });
    expect(byName.get("null-sender")?.mailFrom).toBe("<>");
    expect(byName.get("local-sender")?.mailFrom).toBe("<postmaster@mx.local.test>");
    expect(byName.get("percent-hack")?.rcptTo).toBe("<relay-check%example.net@mx.local.test>");
    expect(byName.get("source-route")?.rcptTo).toBe("<@mx.local.test:relay-check@example.net>");
    expect(byName.get("bang-path")?.rcptTo).toBe("<example.net!relay-check@mx.local.test>");
    expect(byName.get("quoted")?.rcptTo).toBe('<"relay-check@example.net">');
    expect(byName.get("quoted-local")?.rcptTo).toBe('<"relay-check@example.net"@mx.local.test>');
    expect(byName.get("percent-hack-literal")?.rcptTo).toBe("<relay-check%example.net@[192.0.2.25]>");
  });

  test("only RFC 2606 reserved domains play the foreigner", () => {
    for (const p of patterns) {
      for (const path of [p.mailFrom, p.rcptTo]) {
        const foreign = path.match(/example\.[a-z]+/g) ?? [];
        for (const domain of foreign) expect(["example.com", "example.net"]).toContain(domain);
      }
    }
  });

  test("no CR or LF can reach a command line", () => {
    for (const p of patterns) expect(`${p.mailFrom}${p.rcptTo}`).not.toMatch(/[\r\n]/);
  });

  test("without an address the literal pattern is left out", () => {
    expect(relayPatterns({ localDomain: "x.test" }).map((p) => p.name)).not.toContain("percent-hack-literal");
  });

  test("address literals follow RFC 5321 §4.1.3", () => {
    expect(addressLiteral("192.0.2.1")).toBe("[192.0.2.1]");
    expect(addressLiteral("2001:db8::1")).toBe("[IPv6:2001:db8::1]");
  });
});
