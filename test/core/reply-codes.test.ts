import { describe, expect, test } from "bun:test";
import {
  describeEnhancedClass,
  describeEnhancedCode,
  describeReplyCode,
  ReplyCode,
} from "../../src/core/reply-codes.ts";

describe("describeReplyCode", () => {
  test("RFC 5321 codes", () => {
    expect(describeReplyCode(250)).toBe("Requested mail action okay, completed");
    expect(describeReplyCode(354)).toBe("Start mail input; end with <CRLF>.<CRLF>");
    expect(describeReplyCode(421)).toMatch(/Service not available/);
    expect(describeReplyCode(555)).toMatch(/parameters not recognized/);
  });

  test("unlisted codes are described by class and category", () => {
    expect(describeReplyCode(259)).toBe("Positive completion (mail system)");
    expect(describeReplyCode(441)).toBe("Transient negative completion (unspecified)");
    expect(describeReplyCode(571)).toBe("Permanent negative completion");
    expect(describeReplyCode(999)).toMatch(/Not an SMTP reply code/);
    expect(describeReplyCode(42)).toMatch(/Not an SMTP reply code/);
  });

  test("every named code has a description of its own", () => {
    for (const code of Object.values(ReplyCode)) expect(describeReplyCode(code)).not.toMatch(/\(|Not an/);
  });
});

describe("describeEnhancedCode", () => {
  test("RFC 3463 and later registrations", () => {
    expect(describeEnhancedCode("5.1.1")).toBe("Bad destination mailbox address");
    expect(describeEnhancedCode("4.2.2")).toBe("Mailbox full");
    expect(describeEnhancedCode("5.5.4")).toBe("Invalid command arguments");
    expect(describeEnhancedCode("5.6.7")).toBe("Non-ASCII addresses not permitted for that sender/recipient");
    expect(describeEnhancedCode("5.7.26")).toBe("Multiple authentication checks failed");
    expect(describeEnhancedCode("2.0.0")).toBe("Other undefined status");
  });

  test("leading zeros do not hide a known detail", () => {
    expect(describeEnhancedCode("5.01.001")).toBe("Bad destination mailbox address");
  });

  test("unregistered details fall back to the subject", () => {
    expect(describeEnhancedCode("5.1.99")).toBe("Addressing status (unregistered detail 99)");
    expect(describeEnhancedCode("4.9.1")).toBe("Unregistered status");
  });

  test("malformed codes are named as such", () => {
    expect(describeEnhancedCode("3.1.1")).toMatch(/Not an enhanced status code/);
    expect(describeEnhancedCode("5.1")).toMatch(/Not an enhanced status code/);
  });

  test("class names", () => {
    expect(describeEnhancedClass("2.0.0")).toBe("Success");
    expect(describeEnhancedClass("4.4.1")).toBe("Persistent transient failure");
    expect(describeEnhancedClass("5.1.1")).toBe("Permanent failure");
    expect(describeEnhancedClass("x")).toMatch(/Not an enhanced/);
  });
});
