import { expect, test } from "bun:test";
import { cramMd5Digest } from "../../src/core/cram-md5.ts";

const CHALLENGE = "<1896.697170952@postoffice.reston.mci.net>";

test("RFC 2195 §2 example, from the challenge text or its bytes", () => {
  expect(cramMd5Digest("tanstaaftanstaaf", CHALLENGE)).toBe("b913a602c7eda7a495b4e6e7334d3890");
  expect(cramMd5Digest("tanstaaftanstaaf", new TextEncoder().encode(CHALLENGE))).toBe(
    "b913a602c7eda7a495b4e6e7334d3890",
  );
});

test("bytes that are not UTF-8 are hashed as they are", () => {
  const raw = Uint8Array.from([0x3c, 0xff, 0xfe, 0x3e]);
  const asText = new TextDecoder().decode(raw);
  expect(cramMd5Digest("pw", raw)).toMatch(/^[0-9a-f]{32}$/);
  expect(cramMd5Digest("pw", raw)).not.toBe(cramMd5Digest("pw", asText));
});
