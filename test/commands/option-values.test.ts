import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  choiceOption,
  hostPort,
  listOption,
  numberOption,
  splitAddressList,
  stringOption,
} from "../../src/commands/option-values.ts";

describe("option values", () => {
  test("repeatable flags with comma lists flatten, keeping quoted commas", () => {
    expect(listOption(["a@x, b@y", '"Nguyễn, Ana" <ana@z>'])).toEqual([
      "a@x",
      "b@y",
      '"Nguyễn, Ana" <ana@z>',
    ]);
    expect(listOption(undefined)).toEqual([]);
    expect(listOption("a,b", false)).toEqual(["a,b"]);
  });

  test("commas inside angle brackets and escaped quotes do not split", () => {
    expect(splitAddressList('"a\\",b" <x@y>, <@r1,@r2:u@d>')).toEqual(['"a\\",b" <x@y>', "<@r1,@r2:u@d>"]);
  });

  test("single-value flags take the last value as a string", () => {
    expect(stringOption(["1", 2])).toBe("2");
    expect(stringOption(123)).toBe("123");
    expect(stringOption(undefined)).toBeUndefined();
  });

  test("numbers and choices are checked with a clear message", () => {
    expect(numberOption("30", "--timeout")).toBe(30);
    expect(() => numberOption("soon", "--timeout")).toThrow("--timeout wants a number >= 0, not 'soon'");
    expect(choiceOption("ALWAYS", "--starttls", ["auto", "always", "never"] as const)).toBe("always");
    expect(() => choiceOption("maybe", "--starttls", ["auto", "always", "never"] as const)).toThrow(
      "--starttls must be one of auto, always, never, not 'maybe'",
    );
  });

  test("host and port, with IPv6 brackets and defaults", () => {
    expect(hostPort("mx.example.com", "--server", 25)).toEqual({ host: "mx.example.com", port: 25 });
    expect(hostPort("127.0.0.1:2525", "--server", 25)).toEqual({ host: "127.0.0.1", port: 2525 });
    expect(hostPort("[::1]:2525", "--server", 25)).toEqual({ host: "::1", port: 2525 });
    expect(hostPort("::1", "--server", 25)).toEqual({ host: "::1", port: 25 });
    expect(() => hostPort("host:99999", "--server", 25)).toThrow("--server: port must be 1-65535");
  });

  test("host and port as the regexes once read them", () => {
    function expected(text: string, defaultPort: number): { host: string; port: number } | string {
      if ((text.match(/:/g) ?? []).length > 1 && !text.startsWith("["))
        return { host: text, port: defaultPort };
      const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(text);
      if (!match?.[1]) return `--server wants HOST[:PORT], not '${text}'`;
      const port = match[2] === undefined ? defaultPort : Number(match[2]);
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        return `--server: port must be 1-65535 in '${text}'`;
      return { host: match[1], port };
    }
    function actual(text: string, defaultPort: number): { host: string; port: number } | string {
      try {
        return hostPort(text, "--server", defaultPort);
      } catch (error) {
        return (error as Error).message;
      }
    }
    const texts = fc.string({
      unit: fc.constantFrom("[", "]", ":", ":", "2", "5", "0", "a", ".", " ", "\n", "\u2028", "é"),
      maxLength: 10,
    });
    fc.assert(
      fc.property(texts, (text) => {
        expect(actual(text, 25)).toEqual(expected(text, 25));
      }),
      { numRuns: 3000 },
    );
  });
});
