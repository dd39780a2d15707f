import { describe, expect, test } from "bun:test";
import { protocolName, type ReceivedFacts, receivedHeader } from "../../src/serve/received-header.ts";

const DATE = new Date("2026-11-27T13:14:48Z");

function facts(overrides: Partial<ReceivedFacts> = {}): ReceivedFacts {
  return {
    heloName: "client.test",
    remoteAddress: "127.0.0.1",
    hostname: "mx.test",
    esmtp: true,
    tls: false,
    authenticated: false,
    utf8: false,
    id: "abc123",
    date: DATE,
    ...overrides,
  };
}

describe("protocolName (RFC 3848, RFC 6531 §3.7.3)", () => {
  test.each([
    [{ esmtp: false, tls: false, authenticated: false, utf8: false }, "SMTP"],
    [{ esmtp: true, tls: false, authenticated: false, utf8: false }, "ESMTP"],
    [{ esmtp: true, tls: true, authenticated: false, utf8: false }, "ESMTPS"],
    [{ esmtp: true, tls: false, authenticated: true, utf8: false }, "ESMTPA"],
    [{ esmtp: true, tls: true, authenticated: true, utf8: false }, "ESMTPSA"],
    [{ esmtp: true, tls: false, authenticated: false, utf8: true }, "UTF8SMTP"],
    [{ esmtp: true, tls: true, authenticated: false, utf8: true }, "UTF8SMTPS"],
    [{ esmtp: true, tls: false, authenticated: true, utf8: true }, "UTF8SMTPA"],
    [{ esmtp: true, tls: true, authenticated: true, utf8: true }, "UTF8SMTPSA"],
    // HELO has no extensions, so neither TLS nor AUTH nor SMTPUTF8 can be named.
    [{ esmtp: false, tls: true, authenticated: true, utf8: true }, "SMTP"],
  ])("%o is %s", (given, name) => {
    expect(protocolName(given)).toBe(name);
  });
});

describe("receivedHeader", () => {
  test("one recipient: from, by, with, id, for, and the date, folded with tabs", () => {
    expect(receivedHeader(facts({ recipient: "bob@b.test" }))).toBe(
      "Received: from client.test ([127.0.0.1])\r\n" +
        "\tby mx.test (smtpkit) with ESMTP id abc123\r\n" +
        "\tfor <bob@b.test>; Fri, 27 Nov 2026 13:14:48 +0000\r\n",
    );
  });

  test("no recipient given (several in the envelope): no for clause, the date after the id", () => {
    expect(receivedHeader(facts({ tls: true, authenticated: true }))).toBe(
      "Received: from client.test ([127.0.0.1])\r\n" +
        "\tby mx.test (smtpkit) with ESMTPSA id abc123; Fri, 27 Nov 2026 13:14:48 +0000\r\n",
    );
  });

  test.each([
    ["::1", "[IPv6:::1]"],
    ["2001:db8::25", "[IPv6:2001:db8::25]"],
    ["::ffff:192.0.2.7", "[192.0.2.7]"],
    ["192.0.2.7", "[192.0.2.7]"],
  ])("client address %s is written as the address literal %s (RFC 5321 §4.1.3)", (address, literal) => {
    expect(receivedHeader(facts({ remoteAddress: address }))).toStartWith(
      `Received: from client.test (${literal})\r\n`,
    );
  });

  test("without HELO the client is 'unknown'", () => {
    const { heloName: _, ...rest } = facts();
    expect(receivedHeader(rest)).toStartWith("Received: from unknown ([127.0.0.1])\r\n");
  });

  test("a HELO name cannot break out of the header: spaces, controls, CR/LF and non-ASCII become '?'", () => {
    const header = receivedHeader(facts({ heloName: "evil\r\nBcc: x@y (ü)", recipient: "b@b.test" }));
    expect(header).toStartWith("Received: from evil??Bcc:?x@y?(?) ([127.0.0.1])\r\n");
    // Exactly three lines, each continuation starting with a tab: one header field.
    const lines = header.split("\r\n");
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe("");
    expect(lines.slice(1, 3).every((line) => line.startsWith("\t"))).toBe(true);
  });

  test("a UTF-8 recipient stays as it is (the message travels with SMTPUTF8)", () => {
    const header = receivedHeader(facts({ utf8: true, recipient: "bø@b.test" }));
    expect(header).toContain(" with UTF8SMTP id abc123\r\n\tfor <bø@b.test>; ");
  });

  test("every line ends with CRLF and stays far below 998 octets for ordinary names", () => {
    const header = receivedHeader(
      facts({
        heloName: "h".repeat(255),
        hostname: "m".repeat(255),
        recipient: `${"l".repeat(64)}@${"d".repeat(190)}`,
      }),
    );
    expect(header.endsWith("\r\n")).toBe(true);
    for (const line of header.split("\r\n")) expect(line.length).toBeLessThan(998);
    expect(header.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/);
  });
});
