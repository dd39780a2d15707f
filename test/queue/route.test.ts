import { describe, expect, test } from "bun:test";
import {
  canonicalRoute,
  describeDestination,
  destinationKey,
  parseRouteTarget,
  parseStoredRoute,
  RouteTargetError,
} from "../../src/queue/route.ts";

describe("parseRouteTarget", () => {
  test("smtp:// defaults to port 25 and STARTTLS always", () => {
    expect(parseRouteTarget("smtp://relay.test")).toEqual({
      kind: "smarthost",
      host: "relay.test",
      port: 25,
      starttls: "always",
    });
  });

  test("smtps:// is implicit TLS on 465", () => {
    expect(parseRouteTarget("smtps://relay.test")).toEqual({
      kind: "smarthost",
      host: "relay.test",
      port: 465,
      implicitTls: true,
    });
  });

  test("a port, a relaxed STARTTLS policy, an IPv6 literal", () => {
    expect(parseRouteTarget("smtp://[::1]:2525?starttls=auto")).toEqual({
      kind: "smarthost",
      host: "::1",
      port: 2525,
      starttls: "auto",
    });
  });

  test("a user keeps the secret by reference only", () => {
    const route = parseRouteTarget("smtp://me%40corp@relay.test:587?auth=plain", {
      secret: { env: "RELAY_PASSWORD" },
    });
    expect(route).toEqual({
      kind: "smarthost",
      host: "relay.test",
      port: 587,
      starttls: "always",
      auth: { username: "me@corp", mechanism: "PLAIN", secret: { env: "RELAY_PASSWORD" } },
    });
    expect(canonicalRoute(route)).not.toContain("hunter2");
  });

  test("mx, with defaults passed through", () => {
    expect(parseRouteTarget("MX", { dns: "127.0.0.1:5353", helo: "me.test" })).toEqual({
      kind: "mx",
      helo: "me.test",
      dns: "127.0.0.1:5353",
    });
  });

  test.each([
    ["relay.test", "not smtp://"],
    ["http://relay.test", "scheme"],
    ["smtp://user:hunter2@relay.test", "holds a password"],
    ["smtp://user@relay.test", "where the password is"],
    ["smtp://relay.test/path", "no path"],
    ["smtp://relay.test?starttls=sometimes", "starttls must be"],
    ["smtp://relay.test?tls=1", "unknown parameter"],
  ])("refuses %s", (target, message) => {
    expect(() => parseRouteTarget(target)).toThrow(RouteTargetError);
    expect(() => parseRouteTarget(target)).toThrow(message);
  });
});

describe("canonical routes and destinations", () => {
  test("equal routes give equal text whatever the key order; undefined values vanish", () => {
    const a = canonicalRoute({ kind: "smarthost", host: "h", port: 25, starttls: "never", helo: undefined });
    const b = canonicalRoute({ starttls: "never", port: 25, host: "h", kind: "smarthost" });
    expect(a).toBe(b);
    expect(parseStoredRoute(a)).toEqual({ kind: "smarthost", host: "h", port: 25, starttls: "never" });
  });

  test("a stored route of an unknown kind is refused", () => {
    expect(() => parseStoredRoute('{"kind":"carrier-pigeon"}')).toThrow("unknown route kind");
  });

  test("smarthost destinations name the host; MX destinations the domain, lower-cased", () => {
    const smarthost = destinationKey(3, { kind: "smarthost", host: "relay.test", port: 587 }, "B.test");
    const v6 = destinationKey(3, { kind: "smarthost", host: "::1", port: 25 }, "b.test");
    const mx = destinationKey(4, { kind: "mx" }, "Example.COM");
    expect([smarthost, v6, mx]).toEqual(["3|relay.test:587", "3|[::1]:25", "4|example.com"]);
    expect([smarthost, v6, mx].map(describeDestination)).toEqual([
      "relay.test:587",
      "[::1]:25",
      "example.com",
    ]);
  });
});

describe("clientOptionsFor", () => {
  test("a route's pinned fingerprint reaches the client's TLS options", async () => {
    const { clientOptionsFor } = await import("../../src/queue/connect.ts");
    const fingerprint = Array(32).fill("0F").join(":");
    const options = await clientOptionsFor(
      { kind: "smarthost", host: "relay.test", port: 25, tls: { fingerprint } },
      "relay.test",
      25,
      { resolver: {} as never, hostname: "worker.test", readSecret: async () => undefined },
    );
    expect(options.tls).toEqual({ fingerprint });
  });
});
