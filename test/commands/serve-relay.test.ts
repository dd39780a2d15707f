import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CliError, ExitCode } from "../../src/commands/exit-codes.ts";
import { type Relay, relayPolicyFromFlags, relayRoute, startRelay } from "../../src/commands/serve-relay.ts";
import { formatPath, parsePath } from "../../src/core/address.ts";
import type { Envelope } from "../../src/core/envelope.ts";
import { SmtpError } from "../../src/core/errors.ts";
import { emptyMailParams, emptyRcptParams } from "../../src/core/esmtp-params.ts";
import { ReleaseRefused } from "../../src/http/release-route.ts";
import type { QueueRoute } from "../../src/queue/route.ts";
import { RELAY_DENIED } from "../../src/serve/relay-policy.ts";
import type { Backend, SessionInfo } from "../../src/server/backend.ts";
import { createTestCa } from "../helpers/certs.ts";

let dir: string;
let caFile: string;
let passwordFile: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "smtpkit-serve-relay-"));
  caFile = join(dir, "ca.pem");
  await writeFile(caFile, (await createTestCa()).cert);
  passwordFile = join(dir, "password");
  await writeFile(passwordFile, "secret\n");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Flags as cac hands them over: repeatable ones as arrays. */
type Flags = Record<string, unknown>;
const ENV = { RELAY_PASSWORD: "secret" };

function failure(call: () => unknown): CliError {
  try {
    call();
  } catch (error) {
    if (error instanceof CliError) return error;
    throw error;
  }
  throw new Error("no error was thrown");
}

describe("relayRoute", () => {
  test("no --relay, no route", () => {
    expect(relayRoute({})).toBeUndefined();
  });

  test("a smarthost with a user: STARTTLS always by default, the secret by reference, the CA by path", () => {
    const route = relayRoute(
      {
        relay: ["smtp://relay%40user@127.0.0.1:2525"],
        relayPasswordEnv: ["RELAY_PASSWORD"],
        relayCa: [caFile],
        relayDomains: ["example.com"],
      },
      ENV,
    );
    expect(route).toEqual({
      kind: "smarthost",
      host: "127.0.0.1",
      port: 2525,
      starttls: "always",
      tls: { caFile },
      auth: {
        username: "relay@user",
        secret: { env: "RELAY_PASSWORD", file: undefined, command: undefined },
      },
    });
  });

  test("smtps:// and mx", () => {
    expect(relayRoute({ relay: "smtps://smarthost.test", relayInsecure: true, relayTo: "a@b.test" })).toEqual(
      {
        kind: "smarthost",
        host: "smarthost.test",
        port: 465,
        implicitTls: true,
        tls: { insecure: true },
      },
    );
    expect(relayRoute({ relay: ["mx"], relayDomains: ["example.com"] })).toEqual({ kind: "mx" });
  });

  test("--relay-tls-fingerprint pins the target's certificate; a bad value, or one beside --relay-insecure, is a usage error", () => {
    const pin = Array(32).fill("0F").join(":");
    const flags = { relay: "smtp://smarthost.test", relayTo: "a@b.test" };
    expect(relayRoute({ ...flags, relayTlsFingerprint: "0f".repeat(32) })).toMatchObject({
      tls: { fingerprint: pin },
    });
    expect(failure(() => relayRoute({ ...flags, relayTlsFingerprint: "0f" })).message).toBe(
      "--relay-tls-fingerprint wants the certificate's SHA-256 fingerprint (64 hex digits, colons allowed), not '0f'",
    );
    expect(
      failure(() => relayRoute({ ...flags, relayTlsFingerprint: pin, relayInsecure: true })).message,
    ).toBe("give --relay-tls-fingerprint or --relay-insecure, not both");
  });

  test("the last --relay wins, as for every flag that takes one value", () => {
    const route = relayRoute({ relay: ["mx", "smtp://b.test:26?starttls=never"], relayDomains: "x.test" });
    expect(route).toMatchObject({ kind: "smarthost", host: "b.test", port: 26, starttls: "never" });
  });

  test.each([
    [{ relayAndKeep: true }, "--relay-and-keep needs --relay TARGET"],
    [{ relayDomains: ["example.com"] }, "--relay-domains needs --relay TARGET"],
    [{ relayTo: ["a@b.test"] }, "--relay-to needs --relay TARGET"],
    [{ relayPasswordEnv: ["X"] }, "--relay-password-env needs --relay TARGET"],
    [{ relayCa: ["ca.pem"] }, "--relay-ca needs --relay TARGET"],
    [{ relayInsecure: true }, "--relay-insecure needs --relay TARGET"],
    [{ relayTlsFingerprint: "ab" }, "--relay-tls-fingerprint needs --relay TARGET"],
  ])("%j without --relay is a usage error", (flags, message) => {
    const error = failure(() => relayRoute(flags));
    expect(error.exitCode).toBe(ExitCode.usage);
    expect(error.message).toBe(message);
  });

  test.each([
    [{ relay: "http://relay.test" }, "--relay: 'http://relay.test': the scheme must be smtp:// or smtps://"],
    [{ relay: "relay.test" }, "--relay: 'relay.test' is not smtp://[user@]host[:port], smtps://... or mx"],
    [{ relay: "smtp://u:pw@relay.test" }, "holds a password: give it by reference"],
    [{ relay: "smtp://u@relay.test" }, "names a user: say where the password is"],
    [{ relay: "smtp://relay.test?starttls=sometimes" }, "starttls must be auto, always or never"],
    [{ relay: "smtp://relay.test?tls=1" }, "unknown parameter 'tls'"],
    [{ relay: "smtp://relay.test/path" }, "a relay target has no path"],
    [
      { relay: "smtp://u@relay.test", relayPasswordEnv: "RELAY_PASSWORD", relayPasswordFile: "f" },
      "give one of --relay-password-env, --relay-password-file, --relay-password-cmd, not 2",
    ],
    [
      { relay: "smtp://relay.test", relayPasswordEnv: "RELAY_PASSWORD" },
      "--relay-password-env: --relay smtp://relay.test names no user (smtp://user@host[:port])",
    ],
    [{ relay: "mx", relayPasswordCmd: "pass show relay" }, "--relay-password-cmd: --relay mx names no user"],
    [
      { relay: "smtp://u@relay.test", relayPasswordEnv: "NOT_SET_ANYWHERE" },
      "--relay-password-env: environment variable NOT_SET_ANYWHERE is not set",
    ],
    [
      { relay: "mx", relayDomains: undefined },
      "--relay: say who may relay with --relay-domains, --relay-to or --auth-users",
    ],
    [{ relay: "mx", relayDomains: "u@example.com" }, "--relay-domains: 'u@example.com' is an address"],
    [{ relay: "mx", relayDomains: "a..b" }, "--relay-domains: 'a..b' is not a domain"],
    [{ relay: "mx", relayTo: "example.com" }, "--relay-to: 'example.com' is not an address"],
  ])("%j is a usage error (64)", (flags, message) => {
    const error = failure(() => relayRoute({ relayDomains: "example.com", ...flags }, ENV));
    expect(error.exitCode).toBe(ExitCode.usage);
    expect(error.message).toContain(message);
  });

  test("file paths are made absolute: the route is stored, and queue flush may run elsewhere", () => {
    const here = process.cwd();
    process.chdir(dir);
    try {
      const route = relayRoute({
        relay: "smtp://u@relay.test",
        relayPasswordFile: "password",
        relayCa: "ca.pem",
        relayTo: "a@b.test",
      });
      expect(route).toMatchObject({ tls: { caFile }, auth: { secret: { file: passwordFile } } });
    } finally {
      process.chdir(here);
    }
  });

  test("with --auth-users, authenticated clients may relay: no list is needed", () => {
    expect(relayRoute({ relay: "mx", authUsers: "users.txt" })).toEqual({ kind: "mx" });
  });

  test("a missing password file or CA file is missing input (66); a CA that is not PEM a config error (78)", async () => {
    const noFile = failure(() =>
      relayRoute({ relay: "smtp://u@relay.test", relayPasswordFile: join(dir, "nope"), relayTo: "a@b.test" }),
    );
    expect(noFile.exitCode).toBe(ExitCode.noInput);
    expect(noFile.message).toBe(`--relay-password-file: ${join(dir, "nope")} does not exist`);
    expect(
      relayRoute({ relay: "smtp://u@relay.test", relayPasswordFile: passwordFile, relayTo: "a@b.test" }),
    ).toMatchObject({ auth: { username: "u", secret: { file: passwordFile } } });

    const noCa = failure(() =>
      relayRoute({ relay: "mx", relayCa: join(dir, "ca-nope.pem"), relayTo: "a@b.test" }),
    );
    expect(noCa.exitCode).toBe(ExitCode.noInput);
    expect(noCa.message).toBe(`--relay-ca: ${join(dir, "ca-nope.pem")} does not exist`);
    const garbage = join(dir, "garbage.pem");
    await writeFile(garbage, "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n");
    const badCa = failure(() => relayRoute({ relay: "mx", relayCa: garbage, relayTo: "a@b.test" }));
    expect(badCa.exitCode).toBe(ExitCode.config);
    expect(badCa.message).toStartWith(`--relay-ca ${garbage}: `);
  });
});

describe("relayPolicyFromFlags", () => {
  test("comma-separated and repeated lists", () => {
    const policy = relayPolicyFromFlags(
      { relayDomains: ["a.test,b.test", "C.test"], relayTo: ["x@d.test, y@e.test"] },
      false,
    );
    expect(policy).toEqual({
      domains: ["a.test", "b.test", "c.test"],
      addresses: ["x@d.test", "y@e.test"],
      trustAuthenticated: false,
    });
  });
});

// The relay's queue is in memory; its worker delivers to a port nothing listens on, so whatever
// it tries is deferred and the queue keeps every message for the assertions.
const NOWHERE: QueueRoute = { kind: "smarthost", host: "127.0.0.1", port: 1, starttls: "never" };
const relays: Relay[] = [];
afterEach(async () => {
  await Promise.all(relays.splice(0).map((relay) => relay.close()));
});

function relay(flags: Flags, checkedAuth = false): Relay {
  const started = startRelay(flags, NOWHERE, { dataDir: undefined, hostname: "relay.test", checkedAuth });
  relays.push(started);
  return started;
}

function envelope(from: string, ...to: string[]): Envelope {
  return {
    from: parsePath(from, { utf8: true }),
    mailParams: { ...emptyMailParams(), envid: "env-1" },
    recipients: to.map((t) => ({
      path: parsePath(t, { utf8: true }),
      params: { ...emptyRcptParams(), notify: ["FAILURE" as const] },
    })),
  };
}

const MESSAGE = new TextEncoder().encode("Subject: hi\r\n\r\nbody\r\n");

async function queued(r: Relay, id: string | undefined) {
  if (id === undefined) throw new Error("nothing was queued");
  const entry = await r.queue.get(id);
  if (!entry) throw new Error(`${id} is not in the queue`);
  return {
    from: formatPath(entry.from),
    to: entry.recipients.map((recipient) => formatPath(recipient.path)),
    notify: entry.recipients.map((recipient) => recipient.params.notify),
    envid: entry.mailParams.envid,
    route: entry.route,
    raw: new TextDecoder().decode(await r.queue.raw(id)),
  };
}

describe("forward", () => {
  test("queues the relayable recipients only, with their parameters, on the relay's route", async () => {
    const r = relay({ relayDomains: "example.com", relayTo: "ann@other.org" });
    const id = await r.forward(
      MESSAGE,
      envelope("<a@a.test>", "<x@example.com>", "<y@other.org>", "<ann@other.org>", "<z@mail.example.com>"),
      false,
    );
    expect(await queued(r, id)).toEqual({
      from: "<a@a.test>",
      to: ["<x@example.com>", "<ann@other.org>", "<z@mail.example.com>"],
      notify: [["FAILURE"], ["FAILURE"], ["FAILURE"]],
      envid: "env-1",
      route: NOWHERE,
      raw: "Subject: hi\r\n\r\nbody\r\n",
    });
  });

  test("authenticated clients relay anywhere when credentials are checked, not otherwise", async () => {
    const checked = relay({ relayDomains: "example.com" }, true);
    const all = await checked.forward(MESSAGE, envelope("<a@a.test>", "<y@other.org>"), true);
    expect((await queued(checked, all)).to).toEqual(["<y@other.org>"]);
    const unchecked = relay({ relayDomains: "example.com", relayAndKeep: true }, false);
    expect(await unchecked.forward(MESSAGE, envelope("<a@a.test>", "<y@other.org>"), true)).toBeUndefined();
  });

  test("nothing relayable: with --relay-and-keep nothing is queued; without it the message is refused", async () => {
    const keep = relay({ relayDomains: "example.com", relayAndKeep: true });
    expect(keep.keep).toBe(true);
    expect(await keep.forward(MESSAGE, envelope("<a@a.test>", "<y@other.org>"), false)).toBeUndefined();
    expect((await keep.queue.stats()).messages).toBe(0);

    const only = relay({ relayDomains: "example.com" });
    const refusal = await only
      .forward(MESSAGE, envelope("<a@a.test>", "<y@other.org>"), false)
      .catch((e) => e);
    expect(refusal).toBeInstanceOf(SmtpError);
    expect(refusal).toMatchObject({ code: 550, enhanced: "5.7.1" });
    expect((await only.queue.stats()).messages).toBe(0);
  });

  test("source routes are dropped, so a smarthost cannot be steered past the policy", async () => {
    const r = relay({ relayDomains: "example.com" });
    const id = await r.forward(
      MESSAGE,
      envelope("<@hop.test:a@a.test>", "<@evil.test:x@example.com>"),
      false,
    );
    const entry = await queued(r, id);
    expect(entry.from).toBe("<a@a.test>");
    expect(entry.to).toEqual(["<x@example.com>"]);
  });
});

describe("release", () => {
  test("to given recipients, from the stored sender, with fresh parameters; duplicates once", async () => {
    const r = relay({ relayDomains: "example.com" });
    const id = await r.release(MESSAGE, "a@a.test", [
      "x@example.com",
      "Ann Example <ann@mail.example.com>",
      "X@Example.com",
    ]);
    const entry = await queued(r, id);
    expect(entry.from).toBe("<a@a.test>");
    expect(entry.to).toEqual(["<x@example.com>", "<ann@mail.example.com>"]);
    expect(entry.notify).toEqual([undefined, undefined]);
    expect(entry.envid).toBeUndefined();
  });

  test("the null sender stays null", async () => {
    const r = relay({ relayDomains: "example.com" });
    expect((await queued(r, await r.release(MESSAGE, "", ["x@example.com"]))).from).toBe("<>");
  });

  test("only where an unauthenticated client could relay, even when credentials are checked", async () => {
    const r = relay({ relayDomains: "example.com" }, true);
    const refused = await r.release(MESSAGE, "a@a.test", ["x@example.com", "y@other.org"]).catch((e) => e);
    expect(refused).toBeInstanceOf(ReleaseRefused);
    expect(refused.message).toBe("may not relay to <y@other.org>: not in --relay-domains or --relay-to");
    expect((await r.queue.stats()).messages).toBe(0);
  });

  test("something that is not an address is refused with the reason", async () => {
    const r = relay({ relayDomains: "example.com" });
    const refused = await r.release(MESSAGE, "a@a.test", ["not an address"]).catch((e) => e);
    expect(refused).toBeInstanceOf(ReleaseRefused);
    expect(refused.message).toStartWith("'not an address' is not an address: ");
  });
});

describe("guard", () => {
  const session = (authUser?: string): SessionInfo => ({
    id: "s1",
    remoteAddress: "127.0.0.1",
    remotePort: 40000,
    localAddress: "127.0.0.1",
    localPort: 2525,
    ...(authUser === undefined ? {} : { authUser }),
  });

  function inner() {
    const seen: string[] = [];
    const backend: Backend = {
      rcpt: (_session, to) => {
        seen.push(formatPath(to));
      },
      data: async () => "id",
    };
    return { backend, seen };
  }

  async function refusal(call: () => unknown): Promise<SmtpError | undefined> {
    try {
      await call();
      return undefined;
    } catch (error) {
      if (error instanceof SmtpError) return error;
      throw error;
    }
  }

  test("refuses RCPT outside the policy with 550 5.7.1; passes the rest on to the backend", async () => {
    const { backend, seen } = inner();
    const guarded = relay({ relayDomains: "example.com" }, true).guard(backend);
    const params = emptyRcptParams();
    expect(
      await refusal(() => guarded.rcpt?.(session(), parsePath("<x@example.com>"), params)),
    ).toBeUndefined();
    const denied = await refusal(() => guarded.rcpt?.(session(), parsePath("<y@other.org>"), params));
    expect(denied).toMatchObject({ code: 550, enhanced: "5.7.1" });
    expect(
      await refusal(() => guarded.rcpt?.(session("ann"), parsePath("<y@other.org>"), params)),
    ).toBeUndefined();
    expect(seen).toEqual(["<x@example.com>", "<y@other.org>"]);
    expect(guarded.data).toBe(backend.data);
  });

  test("a backend without its own rcpt hook is guarded too", async () => {
    const guarded = relay({ relayTo: "ann@other.org" }).guard({ data: async () => "id" });
    const params = emptyRcptParams();
    expect(
      await refusal(() => guarded.rcpt?.(session(), parsePath("<ann@other.org>"), params)),
    ).toBeUndefined();
    expect(await refusal(() => guarded.rcpt?.(session(), parsePath("<bob@other.org>"), params))).toBe(
      RELAY_DENIED,
    );
  });

  test("with --relay-and-keep every recipient is accepted (kept, relayed only within the policy)", () => {
    const { backend } = inner();
    expect(relay({ relayDomains: "example.com", relayAndKeep: true }).guard(backend)).toBe(backend);
  });
});

describe("startRelay", () => {
  test("refuses a policy under which nothing may be relayed, before opening anything", () => {
    const error = failure(() =>
      startRelay({}, NOWHERE, { dataDir: join(dir, "never"), hostname: "relay.test", checkedAuth: false }),
    );
    expect(error.exitCode).toBe(ExitCode.usage);
    expect(Bun.file(join(dir, "never", "queue.sqlite")).size).toBe(0);
  });

  test("the queue lives in the data directory", async () => {
    const dataDir = join(dir, "data");
    const r = startRelay({ relayDomains: "example.com" }, NOWHERE, {
      dataDir,
      hostname: "relay.test",
      checkedAuth: false,
    });
    relays.push(r);
    expect(r.queue.path).toBe(join(dataDir, "queue.sqlite"));
  });
});
