import { describe, expect, test } from "bun:test";
import { UsageError } from "../../src/commands/exit-codes.ts";
import { mxPortFromEnvironment } from "../../src/commands/mx-port.ts";
import { parseDuration } from "../../src/commands/option-values.ts";
import { engineOptions, readIds } from "../../src/commands/queue-options.ts";
import { newQueueId } from "../../src/queue/queue-id.ts";

describe("parseDuration", () => {
  test.each([
    ["300", 300_000],
    ["300s", 300_000],
    ["4000s", 4_000_000],
    ["5m", 300_000],
    ["1.5h", 5_400_000],
    ["5d", 432_000_000],
    ["1w", 604_800_000],
    ["1h30m", 5_400_000],
    ["250ms", 250],
    [" 2D ", 172_800_000],
  ])("%s", (text, ms) => {
    expect(parseDuration(text, "--x")).toBe(ms);
  });

  test.each(["", "five", "5y", "5m3", "-5m", "m5"])("refuses %j", (text) => {
    expect(() => parseDuration(text, "--max-age")).toThrow(UsageError);
    expect(() => parseDuration(text, "--max-age")).toThrow("--max-age");
  });
});

describe("readIds", () => {
  test("arguments and standard input, any case, duplicates dropped", async () => {
    const [a, b, c] = [newQueueId(), newQueueId(), newQueueId()];
    const ids = await readIds([a.toLowerCase(), "-", b], async () => `${b}\n  ${c}\t${a}\n`);
    expect(ids).toEqual([a, b, c]);
  });

  test("anything that is not an ID is a usage error", async () => {
    await expect(readIds(["nope"])).rejects.toThrow("'nope' is not a queue ID");
  });
});

describe("engineOptions", () => {
  test("flags become engine settings", () => {
    const engine = engineOptions({
      concurrency: "7",
      perDestination: "2",
      backoffMin: "1m",
      backoffMax: "1h",
      maxAge: "2d",
      delayWarning: "4h",
      hostname: "me.test",
      dsnRoute: "smtp://catcher.test:2525?starttls=never",
    });
    expect(engine).toMatchObject({
      concurrency: 7,
      perDestination: 2,
      backoffMinMs: 60_000,
      backoffMaxMs: 3_600_000,
      maxAgeMs: 172_800_000,
      delayWarningMs: 14_400_000,
      hostname: "me.test",
      dsnRoute: { kind: "smarthost", host: "catcher.test", port: 2525, starttls: "never" },
      mxPort: 25,
    });
  });

  test("contradictions and bad values are usage errors", () => {
    expect(() => engineOptions({ backoffMin: "2h", backoffMax: "1h" })).toThrow("--backoff-min");
    expect(() => engineOptions({ concurrency: "0" })).toThrow("--concurrency");
    expect(() => engineOptions({ dsnRoute: "smtp://u@x.test" })).toThrow("--dsn-route");
    expect(() => engineOptions({ dns: "not an address" })).toThrow("--dns");
  });

  test("SMTPKIT_MX_PORT, the test hook send also reads", () => {
    expect(mxPortFromEnvironment({})).toBe(25);
    expect(mxPortFromEnvironment({ SMTPKIT_MX_PORT: "2525" })).toBe(2525);
    expect(() => mxPortFromEnvironment({ SMTPKIT_MX_PORT: "99999" })).toThrow("SMTPKIT_MX_PORT");
  });
});
