import { describe, expect, test } from "bun:test";
import { SmtpError } from "../../src/core/errors.ts";
import { CHAOS_STAGES, type ChaosSettings, NO_CHAOS } from "../../src/http/chaos.ts";
import { Chaos } from "../../src/serve/chaos.ts";

/** Resolves to the SmtpError that apply() threw, or undefined when it passed. */
async function outcome(chaos: Chaos, stage: (typeof CHAOS_STAGES)[number]): Promise<SmtpError | undefined> {
  try {
    await chaos.apply(stage);
    return undefined;
  } catch (error) {
    if (error instanceof SmtpError) return error;
    throw error;
  }
}

describe("settings", () => {
  test("idle with nothing configured, busy with a failure or a delay", () => {
    expect(new Chaos().idle).toBe(true);
    expect(new Chaos(NO_CHAOS).current).toEqual({ fail: [], delay: [] });
    expect(new Chaos({ fail: [{ stage: "rcpt", code: 450, probability: 100 }], delay: [] }).idle).toBe(false);
    expect(new Chaos({ fail: [], delay: [{ stage: "data", ms: 1 }] }).idle).toBe(false);
  });

  test("set() replaces the settings at run time (PUT /api/v1/chaos)", async () => {
    const chaos = new Chaos();
    const settings: ChaosSettings = { fail: [{ stage: "mail", code: 451, probability: 100 }], delay: [] };
    chaos.set(settings);
    expect(chaos.current).toBe(settings);
    expect((await outcome(chaos, "mail"))?.code).toBe(451);
    chaos.set(NO_CHAOS);
    expect(chaos.idle).toBe(true);
    expect(await outcome(chaos, "mail")).toBeUndefined();
  });
});

describe("failures", () => {
  test.each([
    [451, "4.3.0"],
    [554, "5.3.0"],
  ])("code %i is thrown as an SmtpError with enhanced code %s", async (code, enhanced) => {
    const chaos = new Chaos({ fail: [{ stage: "rcpt", code, probability: 100 }], delay: [] });
    const error = await outcome(chaos, "rcpt");
    expect(error).toBeInstanceOf(SmtpError);
    expect(error).toMatchObject({ code, enhanced, message: "Injected failure (smtpkit chaos)" });
  });

  test("only the configured stage fails", async () => {
    const chaos = new Chaos({ fail: [{ stage: "dot", code: 554, probability: 100 }], delay: [] });
    for (const stage of CHAOS_STAGES) {
      expect((await outcome(chaos, stage))?.code).toBe(stage === "dot" ? 554 : undefined);
    }
  });

  test("the probability is a percentage compared against the random draw", async () => {
    let draw = 0;
    const chaos = new Chaos({ fail: [{ stage: "mail", code: 450, probability: 30 }], delay: [] }, () => draw);
    for (const [value, fails] of [
      [0, true],
      [0.29, true],
      [0.3, false],
      [0.99, false],
    ] as const) {
      draw = value;
      expect((await outcome(chaos, "mail")) !== undefined).toBe(fails);
    }
  });

  test("probability 0 never fails and 100 always does, whatever the draw", async () => {
    for (const draw of [0, 0.5, 0.999999]) {
      const never = new Chaos(
        { fail: [{ stage: "helo", code: 421, probability: 0 }], delay: [] },
        () => draw,
      );
      const always = new Chaos(
        { fail: [{ stage: "helo", code: 421, probability: 100 }], delay: [] },
        () => draw,
      );
      expect(await outcome(never, "helo")).toBeUndefined();
      expect((await outcome(always, "helo"))?.code).toBe(421);
    }
  });

  test("with two failures for a stage, the first that fires wins", async () => {
    const draws = [0.9, 0.1];
    const chaos = new Chaos(
      {
        fail: [
          { stage: "rcpt", code: 450, probability: 50 },
          { stage: "rcpt", code: 550, probability: 50 },
        ],
        delay: [],
      },
      () => draws.shift() ?? 0,
    );
    expect((await outcome(chaos, "rcpt"))?.code).toBe(550);
  });
});

describe("delays", () => {
  test("apply() waits the configured time before it resolves", async () => {
    const chaos = new Chaos({ fail: [], delay: [{ stage: "data", ms: 200 }] });
    let done = false;
    const applied = chaos.apply("data").then(() => {
      done = true;
    });
    // A zero timer set after the delay's timer still fires first: the delay has not ended yet.
    await Bun.sleep(0);
    expect(done).toBe(false);
    await applied;
    expect(done).toBe(true);
  });

  test("a delay at another stage, or of 0 ms, does not wait", async () => {
    const chaos = new Chaos({
      fail: [],
      delay: [
        { stage: "data", ms: 60_000 },
        { stage: "mail", ms: 0 },
      ],
    });
    let done = false;
    const applied = Promise.all([chaos.apply("rcpt"), chaos.apply("mail")]).then(() => {
      done = true;
    });
    await Bun.sleep(0);
    expect(done).toBe(true);
    await applied;
  });

  test("a delay and a failure at the same stage: the failure comes after the delay", async () => {
    const chaos = new Chaos({
      fail: [{ stage: "connect", code: 421, probability: 100 }],
      delay: [{ stage: "connect", ms: 100 }],
    });
    let settled = false;
    const applied = outcome(chaos, "connect").then((error) => {
      settled = true;
      return error;
    });
    await Bun.sleep(0);
    expect(settled).toBe(false);
    expect((await applied)?.code).toBe(421);
  });
});
