import { expect, test } from "bun:test";
import { errorCode } from "../../src/net/net-error.ts";

test("errorCode: a Node error's string code, else undefined", () => {
  expect(errorCode(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }))).toBe("ECONNREFUSED");
  expect(errorCode({ code: "ENOTFOUND" })).toBe("ENOTFOUND");
  expect(errorCode(new Error("no code"))).toBeUndefined();
  expect(errorCode({ code: 7 })).toBeUndefined();
  expect(errorCode(null)).toBeUndefined();
  expect(errorCode("ECONNRESET")).toBeUndefined();
});
