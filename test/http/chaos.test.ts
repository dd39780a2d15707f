import { describe, expect, test } from "bun:test";
import {
  ChaosSettingsError,
  MAX_CHAOS_DELAY_MS,
  parseChaosSettings,
  parseDelaySpec,
  parseFailSpec,
  toMailpitTriggers,
} from "../../src/http/chaos.ts";

describe("flag specs", () => {
  test("--fail STAGE:CODE[:PROBABILITY]", () => {
    expect(parseFailSpec("rcpt:451")).toEqual({ stage: "rcpt", code: 451, probability: 100 });
    expect(parseFailSpec("dot:554:12.5")).toEqual({ stage: "dot", code: 554, probability: 12.5 });
  });

  test("--delay STAGE:MS", () => {
    expect(parseDelaySpec("connect:1500")).toEqual({ stage: "connect", ms: 1500 });
  });

  test("malformed specs say what was expected", () => {
    for (const spec of [
      "rcpt",
      "rcpt:451:10:x",
      "quit:451",
      "rcpt:250",
      "rcpt:abc",
      "rcpt:451:101",
      "rcpt:451:-1",
    ]) {
      expect(() => parseFailSpec(spec)).toThrow(ChaosSettingsError);
    }
    for (const spec of ["data", "data:1.5", "data:-1", `data:${MAX_CHAOS_DELAY_MS + 1}`, "nowhere:10"]) {
      expect(() => parseDelaySpec(spec)).toThrow(ChaosSettingsError);
    }
  });
});

describe("parseChaosSettings", () => {
  test("reads fail and delay lists, filling in the default probability", () => {
    expect(
      parseChaosSettings({ fail: [{ stage: "mail", code: 421 }], delay: [{ stage: "helo", ms: 0 }] }),
    ).toEqual({
      fail: [{ stage: "mail", code: 421, probability: 100 }],
      delay: [{ stage: "helo", ms: 0 }],
    });
    expect(parseChaosSettings({ fail: [] })).toEqual({ fail: [], delay: [] });
  });

  test("Mailpit's triggers replace only the stages they name", () => {
    const current = {
      fail: [
        { stage: "rcpt" as const, code: 452, probability: 5 },
        { stage: "dot" as const, code: 554, probability: 100 },
      ],
      delay: [{ stage: "data" as const, ms: 10 }],
    };
    expect(parseChaosSettings({ Recipient: { ErrorCode: 0, Probability: 0 } }, current)).toEqual({
      fail: [{ stage: "dot", code: 554, probability: 100 }],
      delay: [{ stage: "data", ms: 10 }],
    });
  });

  test("rejects what is not settings", () => {
    for (const body of [
      null,
      [],
      "fail",
      {},
      { fail: {} },
      { fail: [1] },
      { fail: [{ stage: "rcpt", code: 451 }], Sender: { ErrorCode: 451, Probability: 1 } },
      { Sender: "always" },
      { Sender: { ErrorCode: 451, Probability: 200 } },
    ]) {
      expect(() => parseChaosSettings(body)).toThrow(ChaosSettingsError);
    }
  });

  test("toMailpitTriggers reports the mail, rcpt and auth failures with Mailpit's defaults", () => {
    expect(toMailpitTriggers({ fail: [{ stage: "auth", code: 454, probability: 30 }], delay: [] })).toEqual({
      Sender: { ErrorCode: 451, Probability: 0 },
      Recipient: { ErrorCode: 451, Probability: 0 },
      Authentication: { ErrorCode: 454, Probability: 30 },
    });
  });
});
