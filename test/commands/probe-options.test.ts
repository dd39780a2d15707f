import { describe, expect, test } from "bun:test";
import { CliError, ExitCode, UsageError } from "../../src/commands/exit-codes.ts";
import { buildEnvelope, parseProbeCommand } from "../../src/commands/probe-options.ts";

type Flags = Record<string, string | boolean | string[]>;
/** Nobody at a terminal: a missing password is a usage error, never a prompt. */
const noPrompt = async () => undefined;
const parse = (target: string | undefined, flags: Flags = {}) => parseProbeCommand(target, flags, noPrompt);

describe("TARGET", () => {
  test("HOST alone: port 25; with --tls: 465; HOST:PORT and [v6]:PORT", async () => {
    expect((await parse("mx.test")).settings).toMatchObject({ host: "mx.test", port: 25, mx: false });
    expect((await parse("mx.test", { tls: true })).settings).toMatchObject({ port: 465, implicitTls: true });
    expect((await parse("mx.test:2525")).settings.port).toBe(2525);
    expect((await parse("[::1]:2525")).settings).toMatchObject({ host: "::1", port: 2525 });
  });

  test("--mx takes a domain (the port applies to every MX host)", async () => {
    expect((await parse("example.test:2525", { mx: true })).settings).toMatchObject({
      host: "example.test",
      port: 2525,
      mx: true,
    });
  });

  test("missing or malformed: usage", async () => {
    await expect(parse(undefined)).rejects.toThrow(UsageError);
    await expect(parse("mx.test:99999")).rejects.toThrow(UsageError);
  });
});

describe("flags", () => {
  test("defaults: STARTTLS when offered, 30 s to connect, 60 s per reply", async () => {
    const { settings, output, verbose, interactive } = await parse("mx.test");
    expect(settings.starttls).toBe("auto");
    expect(settings.insecure).toBe(false);
    expect(settings.timeouts.connect).toBe(30_000);
    expect(settings.timeouts.greeting).toBe(60_000);
    expect(settings.timeouts.rcpt).toBe(60_000);
    expect([output, verbose, interactive]).toEqual(["report", false, false]);
  });

  test("--timeout applies to every wait", async () => {
    const { settings } = await parse("mx.test", { timeout: "2.5" });
    expect(Object.values(settings.timeouts).every((ms) => ms === 2500)).toBe(true);
  });

  test("-4 / -6, --json, -v", async () => {
    expect((await parse("mx.test", { "4": true })).settings.family).toBe(4);
    expect((await parse("mx.test", { "6": true })).settings.family).toBe(6);
    await expect(parse("mx.test", { "4": true, "6": true })).rejects.toThrow("exclude");
    const json = await parse("mx.test", { json: true, verbose: true });
    expect([json.output, json.verbose]).toEqual(["json", true]);
  });

  test("--starttls choices; not together with --tls", async () => {
    expect((await parse("mx.test", { starttls: "ALWAYS" })).settings.starttls).toBe("always");
    await expect(parse("mx.test", { starttls: "sometimes" })).rejects.toThrow("auto, always, never");
    await expect(parse("mx.test", { tls: true, starttls: "never" })).rejects.toThrow("exclude");
  });

  test("--quit-after choices", async () => {
    expect((await parse("mx.test", { quitAfter: "tls" })).settings.quitAfter).toBe("tls");
    await expect(parse("mx.test", { quitAfter: "data" })).rejects.toThrow(UsageError);
  });

  test("--dns must be an address", async () => {
    expect((await parse("mx.test", { dns: "127.0.0.1:5353" })).settings.dnsServer).toBe("127.0.0.1:5353");
    await expect(parse("mx.test", { dns: "resolver.example" })).rejects.toThrow("--dns");
  });

  test("--ca that does not exist: exit 66", async () => {
    const error = await parse("mx.test", { ca: "/nonexistent/ca.pem" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(ExitCode.noInput);
  });
});

describe("AUTH flags", () => {
  test("--user with a password source", async () => {
    process.env.PROBE_OPTIONS_PW = "pw";
    const { settings } = await parse("mx.test", {
      user: "u",
      passwordEnv: "PROBE_OPTIONS_PW",
      auth: "login",
    });
    expect(settings.auth).toEqual({
      mechanism: "LOGIN",
      credentials: { username: "u", password: "pw" },
      allowPlaintext: false,
    });
  });

  test("--auth without --user, an unknown mechanism, or no password: usage", async () => {
    await expect(parse("mx.test", { auth: "PLAIN" })).rejects.toThrow("--auth needs --user");
    await expect(parse("mx.test", { user: "u", auth: "GSSAPI", passwordEnv: "X" })).rejects.toThrow(
      "smtpkit speaks",
    );
    await expect(parse("mx.test", { user: "u" })).rejects.toThrow("needs a password");
  });
});

describe("envelope", () => {
  test("MAIL and RCPT lines come from the core's formatter", () => {
    expect(buildEnvelope("alice@a.test", ["<bob@b.test>"])).toEqual({
      mailCommand: "MAIL FROM:<alice@a.test>",
      recipients: [{ address: "<bob@b.test>", command: "RCPT TO:<bob@b.test>" }],
    });
  });

  test("null sender by default; SMTPUTF8 when an address needs it", () => {
    const envelope = buildEnvelope(undefined, ["δοκιμή@παράδειγμα.test"]);
    expect(envelope.mailCommand).toBe("MAIL FROM:<> SMTPUTF8");
  });

  test("a malformed address is bad input data, exit 65", async () => {
    const error = await parse("mx.test", { rcpt: ["not an address"] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(ExitCode.dataError);
  });

  test("several --rcpt, comma lists split", async () => {
    const { settings } = await parse("mx.test", { rcpt: ["a@x.test,b@x.test", "c@x.test"] });
    expect(settings.envelope?.recipients.map((r) => r.command)).toEqual([
      "RCPT TO:<a@x.test>",
      "RCPT TO:<b@x.test>",
      "RCPT TO:<c@x.test>",
    ]);
  });
});

describe("--expect against the other flags", () => {
  test("parsed and kept in order", async () => {
    const { settings } = await parse("mx.test", { expect: ["banner=220", "rcpt=2xx"], rcpt: ["a@x.test"] });
    expect(settings.expectations.map((e) => e.text)).toEqual(["banner=220", "rcpt=2xx"]);
  });

  test.each([
    [{ expect: ["rcpt=250"] }, "needs --rcpt"],
    [{ expect: ["mail=250"] }, "needs --from or --rcpt"],
    [{ expect: ["auth=235"] }, "needs --user"],
    [{ expect: ["starttls=220"], starttls: "never" }, "needs STARTTLS"],
    [{ expect: ["starttls=220"], tls: true }, "needs STARTTLS"],
    [{ expect: ["ehlo=250"], quitAfter: "banner" }, "stops before ehlo"],
    [{ expect: ["rset=250"], quitAfter: "rcpt", rcpt: ["a@x.test"] }, "stops before rset"],
  ] as [Flags, string][])("%o is refused: %s", async (flags, message) => {
    await expect(parse("mx.test", flags)).rejects.toThrow(message);
  });

  test("quit=221 goes with any --quit-after (QUIT is always sent)", async () => {
    await expect(parse("mx.test", { expect: ["quit=221"], quitAfter: "banner" })).resolves.toBeDefined();
  });
});

describe("--interactive", () => {
  test("alone or with connection flags", async () => {
    const { interactive, settings } = await parse("mx.test:587", { interactive: true, starttls: "never" });
    expect(interactive).toBe(true);
    expect(settings.port).toBe(587);
  });

  test.each([["json"], ["expect"], ["relayCheck"], ["quitAfter"], ["rcpt"]])(
    "refuses --%s (those belong to the scripted probe)",
    async (flag) => {
      const value =
        flag === "expect"
          ? ["banner=220"]
          : flag === "quitAfter"
            ? "banner"
            : flag === "rcpt"
              ? ["a@x.test"]
              : true;
      await expect(parse("mx.test", { interactive: true, [flag]: value })).rejects.toThrow("--interactive");
    },
  );
});
