import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { Path } from "../../src/core/address.ts";
import { type Command, formatCommand } from "../../src/core/command.ts";
import {
  MAX_ANY_COMMAND_LINE,
  maxCommandLine,
  parseCommand,
  parseSaslResponse,
} from "../../src/core/command-parser.ts";
import { SmtpError } from "../../src/core/errors.ts";
import { MAX_COMMAND_LINE } from "../../src/core/limits.ts";

function rejection(line: string, opts?: { utf8?: boolean }): [number, string | undefined, string] {
  try {
    parseCommand(line, opts);
  } catch (error) {
    if (error instanceof SmtpError) return [error.code, error.enhanced, error.message];
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(line)} to be rejected`);
}

/** Parses a MAIL or RCPT line, narrowing the type so tests can read its path and parameters. */
function transaction(line: string, opts?: { utf8?: boolean }): Extract<Command, { verb: "MAIL" | "RCPT" }> {
  const cmd = parseCommand(line, opts);
  if (cmd.verb !== "MAIL" && cmd.verb !== "RCPT") throw new Error(`not MAIL or RCPT: ${cmd.verb}`);
  return cmd;
}

const box = (local: string, domain: string): Path => ({ mailbox: { local, domain } });

describe("parseCommand: simple verbs", () => {
  test("verbs are case-insensitive", () => {
    expect(parseCommand("ehlo client.example")).toEqual({ verb: "EHLO", domain: "client.example" });
    expect(parseCommand("HeLo client")).toEqual({ verb: "HELO", domain: "client" });
    expect(parseCommand("data")).toEqual({ verb: "DATA" });
    expect(parseCommand("Rset")).toEqual({ verb: "RSET" });
    expect(parseCommand("quit")).toEqual({ verb: "QUIT" });
    expect(parseCommand("starttls")).toEqual({ verb: "STARTTLS" });
  });

  test("EHLO accepts literals and odd but printable names, not empty or several words", () => {
    expect(parseCommand("EHLO [192.0.2.1]")).toEqual({ verb: "EHLO", domain: "[192.0.2.1]" });
    expect(parseCommand("EHLO my_host")).toEqual({ verb: "EHLO", domain: "my_host" });
    expect(rejection("EHLO")).toEqual([501, "5.5.4", "EHLO needs a domain name"]);
    expect(rejection("EHLO ")).toEqual([501, "5.5.4", "EHLO needs a domain name"]);
    expect(rejection("HELO a b")[0]).toBe(501);
  });

  test("argument-less verbs refuse arguments but tolerate trailing spaces", () => {
    expect(parseCommand("DATA ")).toEqual({ verb: "DATA" });
    expect(rejection("DATA now")).toEqual([501, "5.5.4", "DATA takes no argument"]);
    expect(rejection("QUIT please")[0]).toBe(501);
    expect(rejection("STARTTLS x")[0]).toBe(501);
  });

  test("NOOP, HELP, VRFY, EXPN", () => {
    expect(parseCommand("NOOP")).toEqual({ verb: "NOOP" });
    expect(parseCommand("NOOP hello there")).toEqual({ verb: "NOOP", argument: "hello there" });
    expect(parseCommand("HELP")).toEqual({ verb: "HELP" });
    expect(parseCommand("HELP MAIL")).toEqual({ verb: "HELP", argument: "MAIL" });
    expect(parseCommand("VRFY Smith")).toEqual({ verb: "VRFY", argument: "Smith" });
    expect(parseCommand("EXPN list@example.com")).toEqual({ verb: "EXPN", argument: "list@example.com" });
    expect(rejection("VRFY")).toEqual([501, "5.5.4", "VRFY needs an argument"]);
    expect(rejection("EXPN  ")[0]).toBe(501);
  });

  test("AUTH", () => {
    expect(parseCommand("AUTH plain")).toEqual({ verb: "AUTH", mechanism: "PLAIN" });
    expect(parseCommand("AUTH PLAIN AHVzZXIAcGFzcw==")).toEqual({
      verb: "AUTH",
      mechanism: "PLAIN",
      initialResponse: "AHVzZXIAcGFzcw==",
    });
    expect(parseCommand("AUTH EXTERNAL =")).toEqual({
      verb: "AUTH",
      mechanism: "EXTERNAL",
      initialResponse: "=",
    });
    expect(parseCommand("AUTH SCRAM-SHA-256")).toEqual({ verb: "AUTH", mechanism: "SCRAM-SHA-256" });
    expect(rejection("AUTH")).toEqual([501, "5.5.4", "AUTH needs a mechanism"]);
    expect(rejection("AUTH PL@IN")[0]).toBe(501);
    expect(rejection("AUTH A23456789012345678901")[0]).toBe(501);
    expect(rejection("AUTH PLAIN !!!")).toEqual([
      501,
      "5.5.2",
      "cannot decode the initial response as base64",
    ]);
    expect(rejection("AUTH PLAIN a b")[0]).toBe(501);
  });

  test("BDAT", () => {
    expect(parseCommand("BDAT 1000")).toEqual({ verb: "BDAT", size: 1000, last: false });
    expect(parseCommand("bdat 0 last")).toEqual({ verb: "BDAT", size: 0, last: true });
    expect(parseCommand("BDAT 12 LAST")).toEqual({ verb: "BDAT", size: 12, last: true });
    for (const bad of ["BDAT", "BDAT -1", "BDAT 1x", "BDAT 1 FIRST", "BDAT LAST", "BDAT 1 LAST x"]) {
      expect(rejection(bad)).toEqual([501, "5.5.4", "Syntax: BDAT <size> [LAST]"]);
    }
  });

  test("unknown verbs and empty lines give 500 5.5.2", () => {
    expect(rejection("ETRN example.com")).toEqual([500, "5.5.2", 'unknown command "ETRN"']);
    expect(rejection("")).toEqual([500, "5.5.2", "empty command"]);
    expect(rejection(" MAIL FROM:<>")[0]).toBe(500);
    expect(rejection("GET / HTTP/1.1")[0]).toBe(500);
  });

  test("CR, LF and NUL inside a line give 500 5.5.2", () => {
    expect(rejection("RSET\rMAIL FROM:<a@b>")).toEqual([
      500,
      "5.5.2",
      "bare CR, LF or NUL in a command line",
    ]);
    expect(rejection("NOOP\nDATA")[0]).toBe(500);
    expect(rejection("NO\0OP")[0]).toBe(500);
    expect(rejection("NOOP a\x01b")).toEqual([501, "5.5.4", "control character in the arguments"]);
  });
});

describe("parseCommand: line length", () => {
  test("512 octets including CRLF is the limit for ordinary commands", () => {
    const ok = `NOOP ${"x".repeat(MAX_COMMAND_LINE - 2 - 5)}`;
    expect(parseCommand(ok).verb).toBe("NOOP");
    expect(rejection(`${ok}x`)).toEqual([
      500,
      "5.5.2",
      "line is 513 octets, the limit is 512 (RFC 5321 §4.5.3.1.4)",
    ]);
    expect(rejection(`X${"y".repeat(600)}`)[2]).toMatch(/limit is 512/);
  });

  test("length is counted in octets", () => {
    expect(rejection(`NOOP ${"é".repeat(255)}`)[2]).toMatch(/^line is 517 octets/);
  });

  test("MAIL, RCPT and AUTH get the room their extensions need", () => {
    expect(maxCommandLine("mail")).toBeGreaterThan(MAX_COMMAND_LINE);
    expect(maxCommandLine("RCPT")).toBeGreaterThan(MAX_COMMAND_LINE);
    expect(maxCommandLine("AUTH")).toBe(12288);
    expect(MAX_ANY_COMMAND_LINE).toBe(12288);
    const params = `SIZE=1000 RET=HDRS ENVID=${"e".repeat(100)} AUTH=${"a".repeat(300)}`;
    expect(parseCommand(`MAIL FROM:<a@b> ${params}`).verb).toBe("MAIL");
    const token = "A".repeat(4000);
    expect(parseCommand(`AUTH XOAUTH2 ${token}`)).toEqual({
      verb: "AUTH",
      mechanism: "XOAUTH2",
      initialResponse: token,
    });
  });
});

describe("parseCommand: MAIL and RCPT", () => {
  test("MAIL FROM with and without parameters", () => {
    expect(parseCommand("MAIL FROM:<a@b>")).toEqual({ verb: "MAIL", path: box("a", "b"), params: [] });
    expect(parseCommand("mail from:<a@b> size=100 BODY=8BITMIME")).toEqual({
      verb: "MAIL",
      path: box("a", "b"),
      params: [
        { name: "SIZE", value: "100" },
        { name: "BODY", value: "8BITMIME" },
      ],
    });
  });

  test("the null reverse-path", () => {
    expect(parseCommand("MAIL FROM:<>")).toEqual({ verb: "MAIL", path: { mailbox: null }, params: [] });
    expect(rejection("RCPT TO:<>")).toEqual([501, "5.1.3", "the null path <> is not a recipient"]);
  });

  test("one space after the colon is tolerated, as Postfix does", () => {
    expect(transaction("MAIL FROM: <a@b>").path).toEqual(box("a", "b"));
    expect(transaction("RCPT TO: <a@b>").path).toEqual(box("a", "b"));
    expect(rejection("MAIL FROM:  <a@b>")[1]).toBe("5.1.7");
  });

  test("angle brackets are required", () => {
    expect(rejection("MAIL FROM:a@b")).toEqual([
      501,
      "5.1.7",
      "Syntax: MAIL FROM:<address> (the address needs angle brackets)",
    ]);
    expect(rejection("RCPT TO:a@b")[1]).toBe("5.1.3");
    expect(rejection("MAIL FROM:<a@b")).toEqual([
      501,
      "5.1.7",
      'Syntax: MAIL FROM:<address> (no closing ">")',
    ]);
  });

  test("missing or wrong FROM:/TO: keyword", () => {
    expect(rejection("MAIL")).toEqual([501, "5.5.4", "Syntax: MAIL FROM:<address>"]);
    expect(rejection("MAIL TO:<a@b>")[2]).toBe("Syntax: MAIL FROM:<address>");
    expect(rejection("RCPT FROM:<a@b>")[2]).toBe("Syntax: RCPT TO:<address>");
    expect(rejection("MAIL FROM <a@b>")[0]).toBe(501);
  });

  test("bad addresses: 501 5.1.7 for MAIL, 501 5.1.3 for RCPT, with the address error's text", () => {
    expect(rejection("MAIL FROM:<u@d@x>")).toEqual([
      501,
      "5.1.7",
      "more than one @ outside a quoted local part",
    ]);
    expect(rejection("RCPT TO:<u@d@x>")).toEqual([
      501,
      "5.1.3",
      "more than one @ outside a quoted local part",
    ]);
    expect(rejection(`RCPT TO:<${"a".repeat(65)}@b>`)).toEqual([
      501,
      "5.1.3",
      "local part is 65 octets, the limit is 64 (RFC 5321 §4.5.3.1.1)",
    ]);
    expect(rejection('RCPT TO:<"a@b>')[0]).toBe(501);
    expect(rejection("RCPT TO:<a..b@c>")[1]).toBe("5.1.3");
  });

  test("text glued to the path is rejected", () => {
    expect(rejection("MAIL FROM:<a@b>SIZE=1")[2]).toMatch(/after the address/);
  });

  test("hostile addresses from DESIGN.md", () => {
    expect(transaction("RCPT TO:<@a,@b:u@d>").path).toEqual({
      mailbox: { local: "u", domain: "d" },
      route: ["a", "b"],
    });
    expect(transaction('RCPT TO:<"quoted \\" > local"@d>').path).toEqual(box('"quoted \\" > local"', "d"));
    expect(transaction("RCPT TO:<u@[IPv6:2001:db8::1]>").path).toEqual(box("u", "[IPv6:2001:db8::1]"));
    expect(transaction("RCPT TO:<u@[192.0.2.1]> NOTIFY=NEVER").params).toEqual([
      { name: "NOTIFY", value: "NEVER" },
    ]);
    expect(rejection("RCPT TO:<u\0@d>")[0]).toBe(500);
    expect(rejection("RCPT TO:<u\x01@d>")[0]).toBe(501);
  });

  test("<Postmaster> without a domain is a valid recipient", () => {
    expect(transaction("RCPT TO:<Postmaster>").path).toEqual({
      mailbox: { local: "Postmaster", domain: "" },
    });
    expect(transaction("RCPT TO:<postmaster>").path.mailbox?.local).toBe("postmaster");
    expect(rejection("MAIL FROM:<Postmaster>")[1]).toBe("5.1.7");
    expect(rejection("RCPT TO:<root>")[1]).toBe("5.1.3");
  });

  test("UTF-8 addresses need SMTPUTF8: 553 5.6.7 otherwise", () => {
    expect(rejection("MAIL FROM:<jörg@example.com>")).toEqual([
      553,
      "5.6.7",
      "a non-ASCII address needs SMTPUTF8 (RFC 6531)",
    ]);
    expect(transaction("MAIL FROM:<jörg@example.com> SMTPUTF8").path).toEqual(box("jörg", "example.com"));
    expect(rejection("RCPT TO:<jörg@bücher.de>")[0]).toBe(553);
    expect(transaction("RCPT TO:<jörg@bücher.de>", { utf8: true }).path).toEqual(box("jörg", "bücher.de"));
  });

  test("malformed parameters give 555 5.5.4; values are checked later by parseMailParams", () => {
    expect(rejection("MAIL FROM:<a@b> =x")).toEqual([555, "5.5.4", 'malformed parameter "=x"']);
    expect(rejection("RCPT TO:<a@b> NOTIFY=")[0]).toBe(555);
    expect(transaction("MAIL FROM:<a@b> SIZE=-1").params).toEqual([{ name: "SIZE", value: "-1" }]);
  });
});

describe("formatCommand", () => {
  test("every verb", () => {
    const cases: [Command, string][] = [
      [{ verb: "EHLO", domain: "client.example" }, "EHLO client.example\r\n"],
      [{ verb: "HELO", domain: "client" }, "HELO client\r\n"],
      [{ verb: "MAIL", path: { mailbox: null }, params: [] }, "MAIL FROM:<>\r\n"],
      [
        { verb: "MAIL", path: box("a", "b"), params: [{ name: "SIZE", value: "10" }, { name: "SMTPUTF8" }] },
        "MAIL FROM:<a@b> SIZE=10 SMTPUTF8\r\n",
      ],
      [{ verb: "RCPT", path: box('"a b"', "c"), params: [] }, 'RCPT TO:<"a b"@c>\r\n'],
      [{ verb: "DATA" }, "DATA\r\n"],
      [{ verb: "RSET" }, "RSET\r\n"],
      [{ verb: "QUIT" }, "QUIT\r\n"],
      [{ verb: "STARTTLS" }, "STARTTLS\r\n"],
      [{ verb: "NOOP" }, "NOOP\r\n"],
      [{ verb: "NOOP", argument: "x" }, "NOOP x\r\n"],
      [{ verb: "HELP", argument: "MAIL" }, "HELP MAIL\r\n"],
      [{ verb: "VRFY", argument: "Smith" }, "VRFY Smith\r\n"],
      [{ verb: "EXPN", argument: "list" }, "EXPN list\r\n"],
      [{ verb: "AUTH", mechanism: "LOGIN" }, "AUTH LOGIN\r\n"],
      [{ verb: "AUTH", mechanism: "PLAIN", initialResponse: "AGEAYg==" }, "AUTH PLAIN AGEAYg==\r\n"],
      [{ verb: "BDAT", size: 42, last: false }, "BDAT 42\r\n"],
      [{ verb: "BDAT", size: 0, last: true }, "BDAT 0 LAST\r\n"],
    ];
    for (const [cmd, wire] of cases) {
      expect(formatCommand(cmd)).toBe(wire);
      expect(parseCommand(wire.slice(0, -2))).toEqual(cmd);
    }
  });

  test("refuses arguments that would inject another command", () => {
    expect(() => formatCommand({ verb: "EHLO", domain: "x\r\nMAIL FROM:<>" })).toThrow(/CR, LF or NUL/);
    expect(() => formatCommand({ verb: "NOOP", argument: "a\nb" })).toThrow(/CR, LF or NUL/);
    expect(() => formatCommand({ verb: "RCPT", path: box("a", "b\r\nDATA"), params: [] })).toThrow(
      /CR, LF or NUL/,
    );
    expect(() => formatCommand({ verb: "BDAT", size: -1, last: false })).toThrow(RangeError);
  });

  test("property: parse(format(cmd)) = cmd for MAIL and RCPT with arbitrary valid parts", () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
    const domain = fc.array(label, { minLength: 1, maxLength: 3 }).map((l) => l.join("."));
    const local = fc.oneof(
      fc.stringMatching(/^[a-z0-9!#$%&'*+\-/=?^_`{|}~]{1,10}(\.[a-z0-9]{1,5}){0,2}$/),
      fc.stringMatching(/^"([ !#-[\]-~]|\\[ -~]){0,15}"$/),
    );
    const keyword = fc.stringMatching(/^[A-Z0-9][A-Z0-9-]{0,8}$/);
    const value = fc.stringMatching(/^[!-<>-~]{1,12}$/);
    const param = fc.record({ name: keyword, value }, { requiredKeys: ["name"] });
    fc.assert(
      fc.property(
        fc.constantFrom("MAIL", "RCPT" as const),
        local,
        domain,
        fc.array(param, { maxLength: 4 }),
        (verb, l, d, params) => {
          const cmd: Command = { verb, path: box(l, d), params };
          const wire = formatCommand(cmd);
          expect(wire.endsWith("\r\n")).toBe(true);
          expect(parseCommand(wire.slice(0, -2))).toEqual(cmd);
        },
      ),
    );
  });

  test("property: arbitrary lines either parse or throw SmtpError with a 5xx code", () => {
    const verbs = fc.constantFrom("MAIL FROM:", "RCPT TO:", "EHLO ", "AUTH ", "BDAT ", "NOOP ", "DATA", "");
    fc.assert(
      fc.property(verbs, fc.string({ maxLength: 60 }), (verb, rest) => {
        try {
          const cmd = parseCommand(verb + rest);
          expect(parseCommand(formatCommand(cmd).slice(0, -2))).toEqual(cmd);
        } catch (error) {
          expect(error).toBeInstanceOf(SmtpError);
          expect((error as SmtpError).code).toBeGreaterThanOrEqual(500);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe("parseSaslResponse", () => {
  test("data, empty response and cancel", () => {
    expect(parseSaslResponse("dXNlcg==")).toEqual({ cancel: false, data: "dXNlcg==" });
    expect(parseSaslResponse("")).toEqual({ cancel: false, data: "" });
    expect(parseSaslResponse("*")).toEqual({ cancel: true });
  });

  test("errors named by RFC 4954", () => {
    expect(() => parseSaslResponse("not base64!")).toThrow(SmtpError);
    const error = (() => {
      try {
        parseSaslResponse("A".repeat(12287));
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(SmtpError);
    expect(error instanceof SmtpError ? [error.code, error.enhanced] : []).toEqual([500, "5.5.6"]);
    expect(parseSaslResponse("A".repeat(12286)).cancel).toBe(false);
  });
});
