import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createResolver, type MailExchanger, mailHostsFor, type Resolver } from "../../src/net/dns.ts";
import { NetError } from "../../src/net/net-error.ts";
import { type DnsResponder, startDnsResponder } from "../helpers/dns-responder.ts";

let dns: DnsResponder;
let resolver: Resolver;

beforeAll(async () => {
  dns = await startDnsResponder({
    "example.test": {
      mx: [
        { priority: 20, exchange: "mx2.example.test" },
        { priority: 10, exchange: "mx1.example.test" },
        { priority: 30, exchange: "mx3.example.test" },
      ],
    },
    "mx1.example.test": { a: ["127.0.0.1"], aaaa: ["::1"] },
    "v6only.test": { aaaa: ["2001:db8::25"] },
    "tied.test": {
      mx: [
        { priority: 10, exchange: "a.tied.test" },
        { priority: 10, exchange: "b.tied.test" },
        { priority: 10, exchange: "c.tied.test" },
        { priority: 5, exchange: "first.tied.test" },
      ],
    },
    "implicit.test": { a: ["192.0.2.7"] },
    "nullmx.test": { mx: [{ priority: 0, exchange: "." }], a: ["192.0.2.8"] },
    "mixed-null.test": {
      mx: [
        { priority: 0, exchange: "." },
        { priority: 10, exchange: "mx.mixed-null.test" },
      ],
    },
    "broken.test": { servfail: true },
    "nullmx-free.test": { aaaa: [] },
    "slow.test": { silent: true },
    "xn--bcher-kva.test": { mx: [{ priority: 1, exchange: "mx.xn--bcher-kva.test" }] },
  });
  resolver = createResolver(dns.server, 2_000);
});

afterAll(async () => {
  await dns.close();
});

async function rejection(promise: Promise<unknown>): Promise<NetError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof NetError) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}

describe("resolveMx", () => {
  test("returns the records as published, without trailing dots", async () => {
    const records = await resolver.resolveMx("example.test");
    expect(records.map((mx) => mx.exchange).sort()).toEqual([
      "mx1.example.test",
      "mx2.example.test",
      "mx3.example.test",
    ]);
    expect(dns.queries).toContainEqual({ name: "example.test", type: "MX" });
  });

  test("an existing name without MX gives an empty list, or ENOTFOUND where Bun conflates NODATA", async () => {
    try {
      expect(await resolver.resolveMx("implicit.test")).toEqual([]);
    } catch (error) {
      expect(error).toBeInstanceOf(NetError);
      expect((error as NetError).code).toBe("ENOTFOUND");
    }
  });

  test("NXDOMAIN is a permanent dns error", async () => {
    const error = await rejection(resolver.resolveMx("nowhere.test"));
    expect(error.kind).toBe("dns");
    expect(error.temporary).toBe(false);
    expect(error.message).toContain("nowhere.test");
  });

  test("SERVFAIL is a temporary dns error", async () => {
    const error = await rejection(resolver.resolveMx("broken.test"));
    expect(error.kind).toBe("dns");
    expect(error.temporary).toBe(true);
  });

  test("a server that does not answer gives a timeout", async () => {
    const quick = createResolver(dns.server, 200);
    const error = await rejection(quick.resolveMx("slow.test"));
    expect(error.kind).toBe("timeout");
    expect(error.message).toContain(dns.server);
  });

  test("a trailing dot and a U-label name are queried in A-label form", async () => {
    expect(await resolver.resolveMx("example.test.")).toHaveLength(3);
    expect(await resolver.resolveMx("bücher.test")).toEqual([
      { exchange: "mx.xn--bcher-kva.test", priority: 1 },
    ]);
  });
});

describe("resolveAddresses", () => {
  test("A then AAAA, or one family", async () => {
    expect(await resolver.resolveAddresses("mx1.example.test")).toEqual(["127.0.0.1", "::1"]);
    expect(await resolver.resolveAddresses("mx1.example.test", 4)).toEqual(["127.0.0.1"]);
    expect(await resolver.resolveAddresses("mx1.example.test", 6)).toEqual(["::1"]);
    expect(await resolver.resolveAddresses("v6only.test")).toEqual(["2001:db8::25"]);
  });

  test("an IP literal resolves to itself without a query", async () => {
    const before = dns.queries.length;
    expect(await resolver.resolveAddresses("192.0.2.1")).toEqual(["192.0.2.1"]);
    expect(await resolver.resolveAddresses("::1")).toEqual(["::1"]);
    expect(dns.queries.length).toBe(before);
  });

  test("no address record, and no such name, are dns errors", async () => {
    const none = await rejection(resolver.resolveAddresses("v6only.test", 4));
    expect(none.kind).toBe("dns");
    expect(none.message).toContain("no A record");
    expect(none.temporary).toBe(false);
    const missing = await rejection(resolver.resolveAddresses("nowhere.test"));
    expect(missing.kind).toBe("dns");
  });
});

describe("createResolver", () => {
  test("a server that is not an IP address is refused at once", () => {
    expect(() => createResolver("dns.example.com")).toThrow(TypeError);
  });
});

describe("mailHostsFor", () => {
  test("sorts by preference, lowest first", async () => {
    const hosts = await mailHostsFor("example.test", resolver);
    expect(hosts.map((mx) => [mx.priority, mx.exchange])).toEqual([
      [10, "mx1.example.test"],
      [20, "mx2.example.test"],
      [30, "mx3.example.test"],
    ]);
  });

  test("shuffles equal preferences and keeps the groups in order", async () => {
    const orders = new Set<string>();
    let seed = 1;
    // A deterministic generator, so the test does not depend on luck.
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    for (let i = 0; i < 30; i++) {
      const hosts: MailExchanger[] = await mailHostsFor("tied.test", resolver, random);
      expect(hosts[0]?.exchange).toBe("first.tied.test");
      expect(
        hosts
          .slice(1)
          .map((mx) => mx.exchange)
          .sort(),
      ).toEqual(["a.tied.test", "b.tied.test", "c.tied.test"]);
      orders.add(hosts.map((mx) => mx.exchange).join(","));
    }
    expect(orders.size).toBeGreaterThan(1);
  });

  test("no MX: the domain itself, RFC 5321 §5.1 implicit MX", async () => {
    expect(await mailHostsFor("implicit.test", resolver)).toEqual([
      { exchange: "implicit.test", priority: 0, implicit: true },
    ]);
  });

  test("an existing name with neither MX nor address has no mail host", async () => {
    const error = await rejection(mailHostsFor("nullmx-free.test", resolver));
    expect(error.kind).toBe("dns");
    expect(error.temporary).toBe(false);
  });

  test("a SERVFAIL stays a temporary error, not an implicit MX", async () => {
    const error = await rejection(mailHostsFor("broken.test", resolver));
    expect(error.temporary).toBe(true);
  });

  test("NXDOMAIN is an error, not an implicit MX", async () => {
    const error = await rejection(mailHostsFor("nowhere.test", resolver));
    expect(error.kind).toBe("dns");
    expect(error.code).toBe("ENOTFOUND");
  });

  test("a null MX means no mail is accepted (RFC 7505)", async () => {
    const error = await rejection(mailHostsFor("nullmx.test", resolver));
    expect(error.kind).toBe("dns");
    expect(error.temporary).toBe(false);
    expect(error.message).toContain("null MX");
  });

  test("a null MX next to real ones is ignored", async () => {
    expect(await mailHostsFor("mixed-null.test", resolver)).toEqual([
      { exchange: "mx.mixed-null.test", priority: 10 },
    ]);
  });
});
