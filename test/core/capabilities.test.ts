import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  type Capabilities,
  emptyCapabilities,
  formatEhloLines,
  parseEhloReply,
} from "../../src/core/capabilities.ts";
import { parseReply } from "../../src/core/reply.ts";
import { formatReply } from "../../src/core/reply-format.ts";

const ehlo = (...lines: string[]) => parseEhloReply({ code: 250, lines });

describe("parseEhloReply", () => {
  test("a Postfix-like reply", () => {
    const wire =
      "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n" +
      "250-AUTH PLAIN LOGIN\r\n250-AUTH=PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n" +
      "250-SMTPUTF8\r\n250 CHUNKING\r\n";
    const { domain, greeting, capabilities } = parseEhloReply(parseReply(wire));
    expect(domain).toBe("mx.example.com");
    expect(greeting).toBe("");
    expect(capabilities).toEqual({
      size: 10240000,
      pipelining: true,
      eightBitMime: true,
      smtpUtf8: true,
      startTls: true,
      auth: ["PLAIN", "LOGIN"],
      chunking: true,
      binaryMime: false,
      dsn: true,
      enhancedStatusCodes: true,
      unknown: [
        { keyword: "VRFY", params: "" },
        { keyword: "ETRN", params: "" },
      ],
    });
  });

  test("greeting text after the domain", () => {
    expect(ehlo("smtp.example.com at your service, [192.0.2.1]")).toMatchObject({
      domain: "smtp.example.com",
      greeting: "at your service, [192.0.2.1]",
    });
  });

  test("only the old AUTH= form", () => {
    expect(ehlo("x", "AUTH=LOGIN PLAIN").capabilities.auth).toEqual(["LOGIN", "PLAIN"]);
  });

  test("keywords and mechanisms are case-insensitive", () => {
    const caps = ehlo("x", "pipelining", "auth cram-md5 Plain", "8bitmime", "BinaryMIME").capabilities;
    expect([caps.pipelining, caps.eightBitMime, caps.binaryMime]).toEqual([true, true, true]);
    expect(caps.auth).toEqual(["CRAM-MD5", "PLAIN"]);
  });

  test("SIZE without a number, or with junk, means no fixed limit", () => {
    expect(ehlo("x", "SIZE").capabilities.size).toBe(0);
    expect(ehlo("x", "SIZE 0").capabilities.size).toBe(0);
    expect(ehlo("x", "SIZE lots").capabilities.size).toBe(0);
    expect(ehlo("x").capabilities.size).toBeUndefined();
  });

  test("unknown extensions keep their parameters; junk lines are ignored", () => {
    const caps = ehlo(
      "x",
      "X-EXPS GSSAPI NTLM",
      "MT-PRIORITY MIXER",
      "REQUIRETLS",
      "",
      "-bad",
      "??",
    ).capabilities;
    expect(caps.unknown).toEqual([
      { keyword: "X-EXPS", params: "GSSAPI NTLM" },
      { keyword: "MT-PRIORITY", params: "MIXER" },
      { keyword: "REQUIRETLS", params: "" },
    ]);
  });

  test("an empty reply gives empty capabilities", () => {
    expect(parseEhloReply({ code: 250, lines: [] })).toEqual({
      domain: "",
      greeting: "",
      capabilities: emptyCapabilities(),
    });
  });
});

describe("formatEhloLines", () => {
  test("a full set", () => {
    const caps: Capabilities = {
      ...emptyCapabilities(),
      size: 35882577,
      pipelining: true,
      eightBitMime: true,
      smtpUtf8: true,
      startTls: true,
      auth: ["PLAIN", "LOGIN"],
      chunking: true,
      binaryMime: true,
      dsn: true,
      enhancedStatusCodes: true,
      unknown: [{ keyword: "VRFY", params: "" }],
    };
    expect(formatEhloLines("mx.example", "hello", caps)).toEqual([
      "mx.example hello",
      "SIZE 35882577",
      "PIPELINING",
      "8BITMIME",
      "SMTPUTF8",
      "STARTTLS",
      "AUTH PLAIN LOGIN",
      "CHUNKING",
      "BINARYMIME",
      "DSN",
      "ENHANCEDSTATUSCODES",
      "VRFY",
    ]);
  });

  test("SIZE 0 is written as bare SIZE; nothing advertised gives the domain alone", () => {
    expect(formatEhloLines("mx", "", { ...emptyCapabilities(), size: 0 })).toEqual(["mx", "SIZE"]);
    expect(formatEhloLines("mx", "", emptyCapabilities())).toEqual(["mx"]);
  });

  test("property: parse(format(caps)) = caps through the wire", () => {
    const mech = fc.stringMatching(/^[A-Z0-9_-]{1,20}$/);
    const keyword = fc.stringMatching(/^X-[A-Z0-9-]{1,10}$/).filter((k) => !k.endsWith("-") || k.length > 2);
    fc.assert(
      fc.property(
        fc.record({
          size: fc.option(fc.nat(), { nil: undefined }),
          pipelining: fc.boolean(),
          eightBitMime: fc.boolean(),
          smtpUtf8: fc.boolean(),
          startTls: fc.boolean(),
          auth: fc.uniqueArray(mech, { maxLength: 4 }),
          chunking: fc.boolean(),
          binaryMime: fc.boolean(),
          dsn: fc.boolean(),
          enhancedStatusCodes: fc.boolean(),
          unknown: fc.array(
            fc.record({ keyword, params: fc.stringMatching(/^([A-Za-z0-9=]{1,6}( [A-Za-z0-9]{1,6})?)?$/) }),
            {
              maxLength: 3,
            },
          ),
        }),
        (drawn) => {
          const caps: Capabilities = { ...drawn };
          if (caps.size === undefined) delete caps.size;
          const wire = formatReply(250, undefined, formatEhloLines("mx.example", "hi there", caps));
          const parsed = parseEhloReply(parseReply(wire));
          expect(parsed.domain).toBe("mx.example");
          expect(parsed.greeting).toBe("hi there");
          expect(parsed.capabilities).toEqual(caps);
        },
      ),
    );
  });
});

describe("extension line grammar", () => {
  /** The grammar as the parser once wrote it with a regex; the hand-written one must agree on every line. */
  const EHLO_LINE = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?$/;
  const KNOWN = [
    "SIZE",
    "PIPELINING",
    "8BITMIME",
    "SMTPUTF8",
    "STARTTLS",
    "AUTH",
    "CHUNKING",
    "BINARYMIME",
    "DSN",
  ];
  const lines = fc
    .tuple(
      fc.constantFrom("", " ", "\u00a0", "X-FOO", "x0", "0", "-X", "a-b-", "_X", "é"),
      fc.constantFrom("", " ", "=", "  ", "\t", ":"),
      fc.string({
        unit: fc.constantFrom(
          "a",
          "1",
          "-",
          "=",
          " ",
          "\t",
          "\r",
          "\n",
          "\u2028",
          "\u2029",
          "\u00a0",
          "\ufeff",
          "é",
        ),
        maxLength: 8,
      }),
    )
    .map((parts) => parts.join(""));

  test("keywords and parameters as the regex reads them", () => {
    fc.assert(
      fc.property(lines, (line) => {
        const m = EHLO_LINE.exec(line.trim());
        const keyword = m?.[1]?.toUpperCase() ?? "";
        fc.pre(!KNOWN.includes(keyword) && keyword !== "ENHANCEDSTATUSCODES");
        const unknown = m === null ? [] : [{ keyword, params: (m[2] ?? "").trim() }];
        expect(ehlo("mx.example", line).capabilities).toEqual({ ...emptyCapabilities(), unknown });
      }),
      { numRuns: 2000 },
    );
  });

  test("AUTH mechanisms split at any white space, as \\s+ splits", () => {
    expect(ehlo("mx", "AUTH \u00a0PLAIN\u3000LOGIN\ufeff\tCRAM-MD5 ").capabilities.auth).toEqual([
      "PLAIN",
      "LOGIN",
      "CRAM-MD5",
    ]);
  });
});
