import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { SmtpError } from "../../src/core/errors.ts";
import {
  type EsmtpParam,
  emptyMailParams,
  formatEsmtpParams,
  formatMailParams,
  formatRcptParams,
  type MailParams,
  type NotifyType,
  type RcptParams,
} from "../../src/core/esmtp-params.ts";
import { parseEsmtpParams, parseMailParams, parseRcptParams } from "../../src/core/esmtp-params-parser.ts";

function smtpError(fn: () => unknown): SmtpError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SmtpError) return error;
    throw error;
  }
  throw new Error("expected an SmtpError");
}

const mail = (text: string) => parseMailParams(parseEsmtpParams(text));
const rcpt = (text: string) => parseRcptParams(parseEsmtpParams(text));

describe("parseEsmtpParams", () => {
  test("keywords are upper-cased, values kept, runs of spaces tolerated", () => {
    expect(parseEsmtpParams("size=100  body=8BITMIME SMTPUTF8 ")).toEqual([
      { name: "SIZE", value: "100" },
      { name: "BODY", value: "8BITMIME" },
      { name: "SMTPUTF8" },
    ]);
    expect(parseEsmtpParams("")).toEqual([]);
    expect(parseEsmtpParams("X-FOO=ä")).toEqual([{ name: "X-FOO", value: "ä" }]);
  });

  test("malformed parameters give 555 5.5.4", () => {
    for (const bad of ["=1", "-X=1", "SIZE=", "SI_ZE=1", "A=b=c", "A=\x01"]) {
      const error = smtpError(() => parseEsmtpParams(bad));
      expect([error.code, error.enhanced]).toEqual([555, "5.5.4"]);
    }
  });

  test("formatEsmtpParams", () => {
    expect(formatEsmtpParams([{ name: "SIZE", value: "1" }, { name: "SMTPUTF8" }])).toBe("SIZE=1 SMTPUTF8");
  });
});

describe("parseMailParams", () => {
  test("every known parameter", () => {
    expect(mail("SIZE=1000 BODY=8bitmime SMTPUTF8 RET=hdrs ENVID=QQ+2B1 AUTH=<> X-ODD=1 FLAG")).toEqual({
      size: 1000,
      body: "8BITMIME",
      smtpUtf8: true,
      ret: "HDRS",
      envid: "QQ+1",
      auth: "<>",
      other: [{ name: "X-ODD", value: "1" }, { name: "FLAG" }],
    });
    expect(mail("BODY=7BIT").body).toBe("7BIT");
    expect(mail("BODY=BINARYMIME").body).toBe("BINARYMIME");
    expect(mail("AUTH=e+3Dmc2@example.com").auth).toBe("e=mc2@example.com");
    expect(mail("SIZE=0").size).toBe(0);
  });

  test.each([
    ["SIZE=-1", /SIZE must be a number/],
    ["SIZE=abc", /SIZE must be a number/],
    ["SIZE=1.5", /SIZE must be a number/],
    ["SIZE", /SIZE needs a value/],
    ["BODY=bogus", /BODY must be 7BIT, 8BITMIME, BINARYMIME, not "bogus"/],
    ["BODY", /BODY needs a value/],
    ["RET=ALL", /RET must be FULL, HDRS/],
    ["SMTPUTF8=yes", /SMTPUTF8 takes no value/],
    ["ENVID=a+zz", /ENVID is not valid xtext/],
    ["AUTH=+", /AUTH is not valid xtext/],
    ["SIZE=1 SIZE=2", /duplicate SIZE parameter/],
    ["BODY=7BIT body=8BITMIME", /duplicate BODY/],
    ["X-A=1 X-A=2", /duplicate X-A/],
  ])("%s is rejected with 501 5.5.4", (text, message) => {
    const error = smtpError(() => mail(text));
    expect([error.code, error.enhanced]).toEqual([501, "5.5.4"]);
    expect(error.message).toMatch(message);
  });

  test("ENVID longer than 100 characters is rejected", () => {
    expect(mail(`ENVID=${"a".repeat(100)}`).envid).toHaveLength(100);
    expect(smtpError(() => mail(`ENVID=${"a".repeat(101)}`)).message).toMatch(/limit is 100/);
  });

  test("a SIZE beyond a safe integer is a size problem, not a syntax one", () => {
    expect(smtpError(() => mail("SIZE=99999999999999999999")).code).toBe(552);
  });
});

describe("parseRcptParams", () => {
  test("NOTIFY and ORCPT", () => {
    expect(rcpt("NOTIFY=success,Failure ORCPT=rfc822;bob+40example.com X-Y")).toEqual({
      notify: ["SUCCESS", "FAILURE"],
      orcpt: { type: "rfc822", address: "bob@example.com" },
      other: [{ name: "X-Y" }],
    });
    expect(rcpt("NOTIFY=NEVER").notify).toEqual(["NEVER"]);
    expect(rcpt("NOTIFY=DELAY").notify).toEqual(["DELAY"]);
  });

  test.each([
    ["NOTIFY=NEVER,SUCCESS", /NEVER cannot be combined/],
    ["NOTIFY=FAILURE,NEVER", /NEVER cannot be combined/],
    ["NOTIFY=SUCCESS,SUCCESS", /twice/],
    ["NOTIFY=SOMETIMES", /NOTIFY must be NEVER, SUCCESS, FAILURE, DELAY/],
    ["NOTIFY=SUCCESS,", /empty type/],
    ["NOTIFY=,", /empty type/],
    ["NOTIFY=SUCCESS NOTIFY=DELAY", /duplicate NOTIFY/],
    ["ORCPT=bob@example.com", /addr-type ";" address/],
    ["ORCPT=;bob@example.com", /addr-type ";" address/],
    ["ORCPT=rfc822;bob+4", /ORCPT is not valid xtext/],
  ])("%s is rejected with 501 5.5.4", (text, message) => {
    const error = smtpError(() => rcpt(text));
    expect([error.code, error.enhanced]).toEqual([501, "5.5.4"]);
    expect(error.message).toMatch(message);
  });

  test("ORCPT with the utf-8 address type (RFC 6533) uses its own escapes", () => {
    expect(rcpt("ORCPT=utf-8;j\\x{F6}rg@example.com").orcpt).toEqual({
      type: "utf-8",
      address: "jörg@example.com",
    });
    expect(rcpt("ORCPT=UTF-8;jörg@example.com").orcpt).toEqual({
      type: "UTF-8",
      address: "jörg@example.com",
    });
    expect(formatRcptParams({ orcpt: { type: "utf-8", address: "jörg@x" }, other: [] })).toEqual([
      { name: "ORCPT", value: "utf-8;j\\x{F6}rg@x" },
    ]);
    expect(smtpError(() => rcpt("ORCPT=utf-8;a\\x{zz}")).message).toMatch(/not valid xtext/);
    expect(smtpError(() => rcpt("ORCPT=rfc822;")).message).toMatch(/needs a value|empty address/);
  });

  test("ORCPT over 500 characters is rejected", () => {
    expect(smtpError(() => rcpt(`ORCPT=rfc822;${"a".repeat(500)}`)).message).toMatch(/limit is 500/);
  });
});

describe("formatting", () => {
  test("formatMailParams encodes ENVID and AUTH as xtext, in a stable order", () => {
    const params: MailParams = {
      other: [{ name: "X-Z" }],
      auth: "a=b@x",
      envid: "id 1+",
      ret: "FULL",
      smtpUtf8: true,
      body: "8BITMIME",
      size: 42,
    };
    expect(formatEsmtpParams(formatMailParams(params))).toBe(
      "SIZE=42 BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=id+201+2B AUTH=a+3Db@x X-Z",
    );
    expect(formatMailParams(emptyMailParams())).toEqual([]);
  });

  test("formatRcptParams encodes the ORCPT address", () => {
    expect(
      formatRcptParams({
        notify: ["SUCCESS", "DELAY"],
        orcpt: { type: "rfc822", address: "a+b@x" },
        other: [],
      }),
    ).toEqual([
      { name: "NOTIFY", value: "SUCCESS,DELAY" },
      { name: "ORCPT", value: "rfc822;a+2Bb@x" },
    ]);
  });

  const text = fc.string({ unit: "grapheme", minLength: 1, maxLength: 30 });

  test("property: MAIL parameters survive format -> wire -> parse", () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            size: fc.nat(),
            body: fc.constantFrom("7BIT", "8BITMIME", "BINARYMIME" as const),
            smtpUtf8: fc.constant(true),
            ret: fc.constantFrom("FULL", "HDRS" as const),
            envid: text,
            auth: text,
          },
          { requiredKeys: [] },
        ),
        (partial) => {
          const params: MailParams = { ...partial, other: [] };
          fc.pre(
            params.envid === undefined ||
              (formatMailParams({ envid: params.envid, other: [] })[0]?.value?.length ?? 0) <= 100,
          );
          const wire = formatEsmtpParams(formatMailParams(params));
          expect(parseMailParams(parseEsmtpParams(wire))).toEqual(params);
        },
      ),
    );
  });

  test("property: RCPT parameters survive format -> wire -> parse", () => {
    const notify = fc.oneof(
      fc.constant<NotifyType[]>(["NEVER"]),
      fc.subarray<NotifyType>(["SUCCESS", "FAILURE", "DELAY"], { minLength: 1 }),
    );
    fc.assert(
      fc.property(
        fc.record(
          {
            notify,
            orcpt: fc.record({
              type: fc.constantFrom("rfc822", "RFC822", "x-local", "utf-8"),
              address: text,
            }),
          },
          { requiredKeys: [] },
        ),
        (partial) => {
          const params: RcptParams = { ...partial, other: [] };
          const formatted = formatRcptParams(params);
          fc.pre(formatted.every((p) => p.name !== "ORCPT" || (p.value?.length ?? 0) <= 500));
          const wire = formatEsmtpParams(formatted);
          expect(parseRcptParams(parseEsmtpParams(wire))).toEqual(params);
        },
      ),
    );
  });

  test("unknown parameters pass through untouched", () => {
    const other: EsmtpParam[] = [{ name: "MT-PRIORITY", value: "3" }, { name: "REQUIRETLS" }];
    expect(parseMailParams(parseEsmtpParams(formatEsmtpParams(formatMailParams({ other }))))).toEqual({
      other,
    });
  });
});
