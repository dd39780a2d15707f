import { describe, expect, test } from "bun:test";
import { UsageError } from "../../src/commands/exit-codes.ts";
import {
  codeMatches,
  type ExpectStage,
  evaluateExpectations,
  parseCodePattern,
  parseExpectation,
} from "../../src/commands/probe-expectations.ts";

describe("parseExpectation", () => {
  test("an exact code", () => {
    expect(parseExpectation("rcpt=250")).toEqual({
      text: "rcpt=250",
      stage: "rcpt",
      codes: [{ prefix: "250", text: "250" }],
    });
  });

  test("a class written 2xx, 2XX or 2", () => {
    for (const text of ["rcpt=2xx", "rcpt=2XX", "rcpt=2"]) {
      expect(parseExpectation(text).codes[0]?.prefix).toBe("2");
    }
  });

  test("a prefix of two digits: 25x and 25", () => {
    expect(parseExpectation("mail=25x").codes[0]?.prefix).toBe("25");
    expect(parseExpectation("mail=25").codes[0]?.prefix).toBe("25");
  });

  test("alternatives separated by commas", () => {
    expect(parseExpectation("rcpt=250,251,4xx").codes.map((c) => c.prefix)).toEqual(["250", "251", "4"]);
  });

  test("stage names are case-insensitive and have aliases", () => {
    expect(parseExpectation("BANNER=220").stage).toBe("banner");
    expect(parseExpectation("greeting=220").stage).toBe("banner");
    expect(parseExpectation("tls=220").stage).toBe("starttls");
  });

  test("spaces around the parts are ignored", () => {
    expect(parseExpectation(" rcpt = 250 ").codes[0]?.prefix).toBe("250");
  });

  test.each([
    ["rcpt", "wants STAGE=CODE"],
    ["rcpt=", "no code"],
    ["data=250", "unknown stage 'data'"],
    ["rcpt=1xx", "not a reply code"],
    ["rcpt=6", "not a reply code"],
    ["rcpt=2500", "not a reply code"],
    ["rcpt=2x5", "not a reply code"],
    ["rcpt=25xx", "not a reply code"],
    ["rcpt=abc", "not a reply code"],
  ])("%s is a usage error (%s)", (text, message) => {
    expect(() => parseExpectation(text)).toThrow(UsageError);
    expect(() => parseExpectation(text)).toThrow(message);
  });
});

describe("codeMatches", () => {
  test("exact, prefix and class", () => {
    expect(codeMatches(parseCodePattern("250"), 250)).toBe(true);
    expect(codeMatches(parseCodePattern("250"), 251)).toBe(false);
    expect(codeMatches(parseCodePattern("25x"), 251)).toBe(true);
    expect(codeMatches(parseCodePattern("2xx"), 221)).toBe(true);
    expect(codeMatches(parseCodePattern("5"), 554)).toBe(true);
    expect(codeMatches(parseCodePattern("5"), 454)).toBe(false);
  });
});

describe("evaluateExpectations", () => {
  const seen = (entries: [ExpectStage, number[]][]) => new Map(entries);

  test("every reply at the stage must match", () => {
    const [outcome] = evaluateExpectations([parseExpectation("rcpt=2xx")], seen([["rcpt", [250, 550, 251]]]));
    expect(outcome).toEqual({
      expectation: "rcpt=2xx",
      stage: "rcpt",
      ok: false,
      actual: [250, 550, 251],
      reason: "rcpt replied 550, expected 2xx",
    });
  });

  test("holds when all match one of the alternatives", () => {
    const [outcome] = evaluateExpectations([parseExpectation("rcpt=250,251")], seen([["rcpt", [250, 251]]]));
    expect(outcome?.ok).toBe(true);
    expect(outcome?.reason).toBe("");
  });

  test("a stage never reached fails", () => {
    const [outcome] = evaluateExpectations([parseExpectation("mail=250")], seen([["banner", [220]]]));
    expect(outcome).toMatchObject({ ok: false, actual: [], reason: "no mail reply (stage not reached)" });
  });

  test("several expectations are reported in the order given", () => {
    const outcomes = evaluateExpectations(
      [parseExpectation("banner=220"), parseExpectation("rcpt=5")],
      seen([
        ["banner", [220]],
        ["rcpt", [250]],
      ]),
    );
    expect(outcomes.map((o) => o.ok)).toEqual([true, false]);
  });
});
