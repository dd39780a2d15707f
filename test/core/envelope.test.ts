import { describe, expect, test } from "bun:test";
import { parsePath } from "../../src/core/address.ts";
import { type Envelope, envelopeNeedsUtf8 } from "../../src/core/envelope.ts";
import { emptyMailParams, emptyRcptParams } from "../../src/core/esmtp-params.ts";

describe("envelope", () => {
  const ascii: Envelope = {
    from: parsePath("<>"),
    mailParams: emptyMailParams(),
    recipients: [{ path: parsePath("<bob@example.com>"), params: emptyRcptParams() }],
  };

  test("an ASCII envelope does not need SMTPUTF8", () => {
    expect(envelopeNeedsUtf8(ascii)).toBe(false);
  });

  test("a UTF-8 sender or recipient needs SMTPUTF8", () => {
    const utf8From = { ...ascii, from: parsePath("<jörg@example.com>", { utf8: true }) };
    expect(envelopeNeedsUtf8(utf8From)).toBe(true);
    const utf8Rcpt: Envelope = {
      ...ascii,
      recipients: [
        ...ascii.recipients,
        { path: parsePath("<a@bücher.de>", { utf8: true }), params: emptyRcptParams() },
      ],
    };
    expect(envelopeNeedsUtf8(utf8Rcpt)).toBe(true);
  });
});
