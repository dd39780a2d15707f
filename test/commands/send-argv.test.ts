import { describe, expect, test } from "bun:test";
import { cac } from "cac";
import fc from "fast-check";
import { expandShortFlags } from "../../src/cli.ts";
import { registerSend } from "../../src/commands/send.ts";
import { parsePlainSendArgs } from "../../src/commands/send-argv.ts";
import { cacSpec, SEND_FLAGS } from "../../src/commands/send-flags.ts";

/** The options cac hands to send's action, set up as src/cli.ts sets it up. */
function cacOptions(args: string[]): Record<string, unknown> {
  const cli = cac("smtpkit");
  registerSend(cli);
  cli.help();
  cli.option("--version", "Print the version");
  cli.parse(expandShortFlags(cli, ["bun", "smtpkit", "send", ...args]), { run: false });
  return cli.options;
}

const wordsOf = (spec: string) => spec.replace(/ <.*$/, "").split(", ");
const flagWords = SEND_FLAGS.flatMap((flag) => wordsOf(cacSpec(flag)));
const valueFlags = SEND_FLAGS.filter((flag) => flag.value !== undefined).flatMap((flag) =>
  wordsOf(cacSpec(flag)),
);
const booleanFlags = flagWords.filter((word) => !valueFlags.includes(word));

describe("parsePlainSendArgs", () => {
  test("the benchmark's command line gives exactly cac's options", () => {
    const args = ["-s", "127.0.0.1:2525", "-f", "a@example.com", "-t", "b@example.com"];
    args.push("--subject", "bench", "--body", "x".repeat(70));
    const options = parsePlainSendArgs(args);
    expect(options).toEqual(cacOptions(args));
    expect(options?.server).toEqual(["127.0.0.1:2525"]);
    expect(options?.s).toBe("127.0.0.1:2525");
  });

  test("mri's quirks are kept: numbers are re-written, repeated flags collect, --no-chunking", () => {
    const args = ["--subject", "0x10", "--body", "", "--to", " 7 ", "-t", "c@d", "--timeout", "30"];
    args.push("--no-chunking", "-4", "-v", "--reply-to", "1e3", "--tls-servername", "mx");
    const options = parsePlainSendArgs(args);
    expect(options).toEqual(cacOptions(args));
    expect(options?.subject).toEqual(["16"]);
    expect(options?.body).toEqual(["0"]);
    expect(options?.to).toEqual(["7", "c@d"]);
    expect(options?.t).toEqual([7, "c@d"]);
    expect(options?.chunking).toBe(false);
    expect(options?.["4"]).toBe(true);
  });

  test("no flags at all: only the defaults, as cac gives them", () => {
    expect(parsePlainSendArgs([])).toEqual(cacOptions([]));
  });

  test("every flag, written each way it can be, gives cac's options", () => {
    for (const word of flagWords) {
      const args = valueFlags.includes(word) ? [word, "value"] : [word];
      expect(parsePlainSendArgs(args)).toEqual(cacOptions(args));
    }
  });

  test("command lines that are not plain are left to cac", () => {
    const notPlain = [
      ["--help"],
      ["-h"],
      ["--version"],
      ["--from=a@b"],
      ["--from"],
      ["--from", "-"],
      ["--subject", "-x"],
      ["-4v"],
      ["--tls", "--tls"],
      ["-v", "--verbose"],
      ["--tls", "yes"],
      ["stray"],
      ["--", "x"],
      ["--bogus"],
      ["--replyTo", "a@b"],
      ["--chunking"],
      [""],
    ];
    for (const args of notPlain) expect(parsePlainSendArgs(args)).toBeUndefined();
  });

  test("whenever it answers, it answers what cac would (arbitrary words)", () => {
    const word = fc.oneof(
      fc.constantFrom(...flagWords, "--help", "--", "-", "--bogus", "-4v", "--from=x"),
      fc.constantFrom("", " 7 ", "0x10", "1e3", "-1", "Infinity", "true", "a@b.test", "Ana <a@b>"),
      fc.string(),
    );
    fc.assert(
      fc.property(fc.array(word, { maxLength: 12 }), (args) => {
        const options = parsePlainSendArgs(args);
        if (options !== undefined) expect(options).toEqual(cacOptions(args));
      }),
    );
  });

  test("plain command lines are always answered, and as cac would (generated)", () => {
    const value = fc.oneof(
      fc.string().filter((s) => !s.startsWith("-")),
      fc.integer({ min: 0 }).map(String),
    );
    const flagWithValue = fc.tuple(fc.constantFrom(...valueFlags), value);
    const line = fc
      .tuple(fc.array(flagWithValue, { maxLength: 8 }), fc.subarray(booleanFlags))
      .map(([withValues, booleans]) => [...withValues.flat(), ...booleans])
      // One boolean given both ways (-v and --verbose) is a repeat, which is not plain.
      .filter((args) => !(args.includes("-v") && args.includes("--verbose")));
    fc.assert(
      fc.property(line, (args) => {
        const options = parsePlainSendArgs(args);
        expect(options).toBeDefined();
        expect(options).toEqual(cacOptions(args));
      }),
    );
  });
});
