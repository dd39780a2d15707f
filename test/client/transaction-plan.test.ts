import { describe, expect, test } from "bun:test";
import { SmtpClientError } from "../../src/client/errors.ts";
import { planTransaction } from "../../src/client/transaction-plan.ts";
import { parsePath } from "../../src/core/address.ts";
import { type Capabilities, emptyCapabilities } from "../../src/core/capabilities.ts";
import type { Envelope } from "../../src/core/envelope.ts";

function caps(extra: Partial<Capabilities> = {}): Capabilities {
  return { ...emptyCapabilities(), ...extra };
}

function envelope(extra: Partial<Envelope> = {}): Envelope {
  return {
    from: parsePath("<a@x.test>"),
    mailParams: { other: [] },
    recipients: [{ path: parsePath("<b@y.test>"), params: { other: [] } }],
    ...extra,
  };
}

function refusal(run: () => unknown): SmtpClientError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(SmtpClientError);
    return error as SmtpClientError;
  }
  throw new Error("expected a refusal");
}

describe("planTransaction", () => {
  test("SIZE is announced only when offered; a larger message is refused", () => {
    expect(planTransaction(caps(), envelope(), { size: 100 }, true).envelope.mailParams.size).toBeUndefined();
    expect(planTransaction(caps({ size: 0 }), envelope(), { size: 100 }, true).envelope.mailParams.size).toBe(
      100,
    );
    expect(
      planTransaction(caps({ size: 100 }), envelope(), { size: 100 }, true).envelope.mailParams.size,
    ).toBe(100);
    const e = refusal(() => planTransaction(caps({ size: 99 }), envelope(), { size: 100 }, true));
    expect(e).toMatchObject({ kind: "size-exceeded", temporary: false });
  });

  test("BODY=8BITMIME only when the message needs it and the server offers it", () => {
    expect(
      planTransaction(caps({ eightBitMime: true }), envelope(), {}, true).envelope.mailParams.body,
    ).toBeUndefined();
    expect(
      planTransaction(caps({ eightBitMime: true }), envelope(), { eightBit: true }, true).envelope.mailParams
        .body,
    ).toBe("8BITMIME");
    expect(refusal(() => planTransaction(caps(), envelope(), { eightBit: true }, true)).kind).toBe(
      "8bitmime-unsupported",
    );
  });

  test("BINARYMIME needs CHUNKING and forces BDAT", () => {
    const full = caps({ chunking: true, binaryMime: true });
    const plan = planTransaction(full, envelope(), { binary: true }, true);
    expect(plan).toMatchObject({ useBdat: true, envelope: { mailParams: { body: "BINARYMIME" } } });
    expect(refusal(() => planTransaction(full, envelope(), { binary: true }, false)).kind).toBe(
      "binarymime-unsupported",
    );
    expect(
      refusal(() => planTransaction(caps({ chunking: true }), envelope(), { binary: true }, true)).kind,
    ).toBe("binarymime-unsupported");
  });

  test("BDAT when CHUNKING is offered and allowed", () => {
    expect(planTransaction(caps({ chunking: true }), envelope(), {}, true).useBdat).toBe(true);
    expect(planTransaction(caps({ chunking: true }), envelope(), {}, false).useBdat).toBe(false);
    expect(planTransaction(caps(), envelope(), {}, true).useBdat).toBe(false);
  });

  test("SMTPUTF8 for UTF-8 addresses or headers, refused when not offered", () => {
    const utf8 = envelope({ from: parsePath("<ngọc@x.test>", { utf8: true }) });
    expect(planTransaction(caps({ smtpUtf8: true }), utf8, {}, true).envelope.mailParams.smtpUtf8).toBe(true);
    expect(
      planTransaction(caps({ smtpUtf8: true }), envelope(), {}, true).envelope.mailParams.smtpUtf8,
    ).toBeUndefined();
    expect(
      planTransaction(caps({ smtpUtf8: true }), envelope(), { smtpUtf8: true }, true).envelope.mailParams
        .smtpUtf8,
    ).toBe(true);
    expect(refusal(() => planTransaction(caps(), utf8, {}, true))).toMatchObject({
      kind: "smtputf8-unsupported",
      temporary: false,
    });
  });

  test("DSN and AUTH= parameters are kept when offered, dropped with a warning otherwise", () => {
    const env = envelope({
      mailParams: { ret: "FULL", envid: "x", auth: "<>", other: [{ name: "X-CUSTOM", value: "1" }] },
      recipients: [{ path: parsePath("<b@y.test>"), params: { notify: ["NEVER"], other: [] } }],
    });
    const kept = planTransaction(caps({ dsn: true, auth: ["PLAIN"] }), env, {}, true);
    expect(kept.warnings).toEqual([]);
    expect(kept.envelope.mailParams).toMatchObject({ ret: "FULL", envid: "x", auth: "<>" });
    expect(kept.envelope.recipients[0]?.params.notify).toEqual(["NEVER"]);
    const dropped = planTransaction(caps(), env, {}, true);
    expect(dropped.warnings).toHaveLength(3);
    expect(dropped.envelope.mailParams).toEqual({ other: [{ name: "X-CUSTOM", value: "1" }] });
    expect(dropped.envelope.recipients[0]?.params).toEqual({ other: [] });
    // The caller's envelope is left as it was.
    expect(env.recipients[0]?.params.notify).toEqual(["NEVER"]);
  });
});
