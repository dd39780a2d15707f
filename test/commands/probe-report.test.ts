import { describe, expect, test } from "bun:test";
import {
  formatReply,
  formatReport,
  styleFor,
  wantsColor,
  wrapList,
} from "../../src/commands/probe-report.ts";
import { replyReport } from "../../src/commands/probe-report-data.ts";
import type { HostReport, ProbeReport } from "../../src/commands/probe-types.ts";
import { emptyCapabilities } from "../../src/core/capabilities.ts";

const plain = styleFor(false);

function host(fields: Partial<HostReport>): HostReport {
  return {
    host: "mx.test",
    port: 25,
    preference: null,
    connect: {
      address: "192.0.2.1",
      port: 25,
      family: 4,
      localAddress: "192.0.2.9",
      localPort: 40000,
      ms: 1.234,
    },
    banner: { reply: replyReport({ code: 220, lines: ["mx.test ESMTP"] }), ms: 2 },
    ehlo: null,
    tls: null,
    ehloAfterTls: null,
    auth: null,
    envelope: null,
    relayCheck: null,
    quit: { command: "QUIT", reply: replyReport({ code: 221, enhanced: "2.0.0", lines: ["Bye"] }), ms: 0.5 },
    quitAfter: null,
    error: null,
    expectations: [],
    exitCode: 0,
    transcript: [],
    ...fields,
  };
}

function report(hosts: HostReport[], fields: Partial<ProbeReport> = {}): ProbeReport {
  return { target: "mx.test", mx: false, hosts, error: null, exitCode: hosts[0]?.exitCode ?? 0, ...fields };
}

describe("formatReply", () => {
  test("code, enhanced code, text, then what they mean", () => {
    const lines = formatReply(
      replyReport({ code: 550, enhanced: "5.1.1", lines: ["No such user", "(really)"] }),
      plain,
    );
    expect(lines).toEqual([
      "550 5.1.1 No such user",
      "            (really)",
      "          = 550: Requested action not taken: mailbox unavailable; 5.1.1: Bad destination mailbox address",
    ]);
  });
});

describe("formatReport", () => {
  test("one labelled line per stage, with the time it took", () => {
    const text = formatReport(report([host({})]));
    expect(text).toContain("connect   192.0.2.1:25 over IPv4, from 192.0.2.9:40000  (1.2 ms)\n");
    expect(text).toContain("banner    220 mx.test ESMTP  (2.0 ms)\n          = 220: Service ready\n");
    expect(text).toContain("quit      221 2.0.0 Bye  (0.5 ms)\n");
    expect(text.endsWith("result    exit 0 (probe complete)\n")).toBe(true);
  });

  test("EHLO: extensions listed, STARTTLS's effect shown as added and removed lines", () => {
    const caps = emptyCapabilities();
    const ehloReply = replyReport({ code: 250, lines: ["mx.test", "PIPELINING", "STARTTLS"] });
    const text = formatReport(
      report([
        host({
          ehlo: {
            command: "EHLO",
            reply: ehloReply,
            ms: 1,
            ehloReply: null,
            domain: "mx.test",
            extensions: ["PIPELINING", "STARTTLS"],
            capabilities: caps,
          },
          ehloAfterTls: {
            command: "EHLO",
            reply: ehloReply,
            ms: 1,
            ehloReply: null,
            domain: "mx.test",
            extensions: ["PIPELINING", "AUTH PLAIN"],
            capabilities: caps,
            changes: { added: ["AUTH PLAIN"], removed: ["STARTTLS"] },
          },
        }),
      ]),
    );
    expect(text).toContain("ehlo      250 mx.test  (1.0 ms)\n          PIPELINING · STARTTLS\n");
    expect(text).toContain("          + AUTH PLAIN\n          - STARTTLS\n");
  });

  test("HELO after a refused EHLO shows both replies", () => {
    const text = formatReport(
      report([
        host({
          ehlo: {
            command: "HELO",
            reply: replyReport({ code: 250, lines: ["mx.test"] }),
            ms: 1,
            ehloReply: replyReport({ code: 502, lines: ["no"] }),
            domain: "mx.test",
            extensions: [],
            capabilities: emptyCapabilities(),
          },
        }),
      ]),
    );
    expect(text).toContain("ehlo      EHLO 502 no");
    expect(text).toContain("          HELO 250 mx.test");
  });

  test("an error and failed expectations come after the stages, then the exit code", () => {
    const text = formatReport(
      report([
        host({
          quit: null,
          error: { stage: "rcpt", kind: "closed", message: "the server closed the connection" },
          expectations: [
            { expectation: "banner=220", stage: "banner", ok: true, actual: [220], reason: "" },
            {
              expectation: "rcpt=250",
              stage: "rcpt",
              ok: false,
              actual: [],
              reason: "no rcpt reply (stage not reached)",
            },
          ],
          exitCode: 75,
        }),
      ]),
    );
    expect(text).toContain(
      [
        "error     rcpt: the server closed the connection",
        "expect    banner=220 held",
        "          rcpt=250 FAILED: no rcpt reply (stage not reached)",
        "result    exit 75 (connection refused, closed or timed out)",
      ].join("\n"),
    );
  });

  test("--mx: a header per host with its preference, and a count", () => {
    const text = formatReport(
      report([host({ preference: 10 }), host({ host: "mx2.test", preference: 20, exitCode: 75 })], {
        mx: true,
        exitCode: 75,
      }),
    );
    expect(text).toContain("── mx.test port 25 (MX preference 10)");
    expect(text).toContain("\n\n── mx2.test port 25 (MX preference 20)");
    expect(text.startsWith("── mx.test")).toBe(true);
    expect(text).toContain("hosts     1 of 2 probed cleanly");
  });

  test("the relay check names each pattern and the verdict", () => {
    const text = formatReport(
      report([
        host({
          relayCheck: {
            open: true,
            authenticated: false,
            localDomain: "mx.test",
            tests: [
              {
                name: "percent-hack",
                description: "percent hack",
                mailFrom: "<a@example.com>",
                rcptTo: "<u%example.net@mx.test>",
                mail: replyReport({ code: 250, lines: ["ok"] }),
                rcpt: replyReport({ code: 250, lines: ["ok"] }),
                accepted: true,
              },
              {
                name: "foreign-to-foreign",
                description: "foreign",
                mailFrom: "<a@example.com>",
                rcptTo: "<u@example.net>",
                mail: replyReport({ code: 550, lines: ["no"] }),
                rcpt: null,
                accepted: false,
              },
            ],
          },
        }),
      ]),
    );
    expect(text).toContain("relay     OPEN RELAY: 1 of 2 patterns accepted");
    expect(text).toContain("accepted 250        at RCPT  <u%example.net@mx.test>  percent hack");
    expect(text).toContain("refused  550        at MAIL  <u@example.net>  foreign");
  });

  test("no escape codes without color", () => {
    expect(formatReport(report([host({})]))).not.toContain("\x1b[");
  });
});

describe("color", () => {
  test("only on a terminal, and never with NO_COLOR set", () => {
    expect(wantsColor(true, {})).toBe(true);
    expect(wantsColor(false, {})).toBe(false);
    expect(wantsColor(true, { NO_COLOR: "1" })).toBe(false);
    // no-color.org: an empty NO_COLOR does not count.
    expect(wantsColor(true, { NO_COLOR: "" })).toBe(true);
  });

  test("the color style wraps text in SGR codes", () => {
    expect(styleFor(true).bad("x")).toBe("\x1b[31mx\x1b[39m");
  });
});

describe("wrapList", () => {
  test("joins with a middle dot and wraps long lists", () => {
    expect(wrapList(["A", "B"])).toEqual(["A · B"]);
    const long = Array.from({ length: 30 }, (_, i) => `EXT${i}`);
    const lines = wrapList(long);
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(100);
    expect(lines.join(" · ").split(" · ")).toEqual(long);
  });
});
