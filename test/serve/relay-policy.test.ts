import { describe, expect, test } from "bun:test";
import { parsePath } from "../../src/core/address.ts";
import {
  mayRelay,
  RELAY_DENIED,
  type RelayPolicy,
  RelayPolicyError,
  relayPolicy,
  relaysNothing,
} from "../../src/serve/relay-policy.ts";

const to = (text: string) => parsePath(text, { utf8: true });

function refusal(build: () => RelayPolicy): RelayPolicyError {
  try {
    build();
  } catch (error) {
    if (error instanceof RelayPolicyError) return error;
    throw error;
  }
  throw new Error("the policy was accepted");
}

describe("relayPolicy", () => {
  test("550 5.7.1 is the refusal (RFC 3463 X.7.1: delivery not authorized)", () => {
    expect(RELAY_DENIED.code).toBe(550);
    expect(RELAY_DENIED.enhanced).toBe("5.7.1");
  });

  test("domains are lower-cased A-labels; a trailing dot is dropped; literals are kept", () => {
    const policy = relayPolicy([" Example.COM ", "bücher.example", "relay.test.", "[127.0.0.1]"], [], false);
    expect(policy.domains).toEqual(["example.com", "xn--bcher-kva.example", "relay.test", "[127.0.0.1]"]);
  });

  test("addresses become comparison keys: angle brackets, quotes and case do not matter", () => {
    const policy = relayPolicy([], ["<Bob@Example.com>", '"ann"@b.test'], false);
    expect(policy.addresses).toEqual(["bob@example.com", "ann@b.test"]);
  });

  test("entries that are not domains or addresses are refused, naming the list", () => {
    const asAddress = refusal(() => relayPolicy(["bob@example.com"], [], false));
    expect(asAddress.list).toBe("domains");
    expect(asAddress.message).toContain("is an address, not a domain");
    expect(refusal(() => relayPolicy([".example.com"], [], false)).message).toContain("leading dot");
    expect(refusal(() => relayPolicy(["exa mple.com"], [], false)).message).toContain("is not a domain");
    expect(refusal(() => relayPolicy(["-bad.test"], [], false)).list).toBe("domains");
    const address = refusal(() => relayPolicy([], ["example.com"], false));
    expect(address.list).toBe("addresses");
    expect(address.message).toContain("'example.com' is not an address");
    expect(refusal(() => relayPolicy([], ["a@@b"], false)).list).toBe("addresses");
  });

  test("relaysNothing: no domains, no addresses and no checked credentials", () => {
    expect(relaysNothing(relayPolicy([], [], false))).toBe(true);
    expect(relaysNothing(relayPolicy([], [], true))).toBe(false);
    expect(relaysNothing(relayPolicy(["a.test"], [], false))).toBe(false);
    expect(relaysNothing(relayPolicy([], ["x@a.test"], false))).toBe(false);
  });
});

describe("mayRelay", () => {
  const policy = relayPolicy(["example.com", "bücher.example", "[192.0.2.1]"], ["ann@other.org"], false);

  test("a listed domain and its subdomains, in any case", () => {
    expect(mayRelay(policy, to("<bob@example.com>"), false)).toBe(true);
    expect(mayRelay(policy, to("<bob@mail.EXAMPLE.com>"), false)).toBe(true);
    expect(mayRelay(policy, to("<bob@a.b.example.com>"), false)).toBe(true);
  });

  test("not a domain that merely ends with the same letters, nor a parent of a listed domain", () => {
    expect(mayRelay(policy, to("<bob@badexample.com>"), false)).toBe(false);
    expect(mayRelay(policy, to("<bob@example.com.evil.test>"), false)).toBe(false);
    expect(mayRelay(policy, to("<bob@com>"), false)).toBe(false);
  });

  test("listed addresses only, not their neighbours", () => {
    expect(mayRelay(policy, to("<ann@other.org>"), false)).toBe(true);
    expect(mayRelay(policy, to("<ANN@Other.Org>"), false)).toBe(true);
    expect(mayRelay(policy, to('<"ann"@other.org>'), false)).toBe(true);
    expect(mayRelay(policy, to("<y@other.org>"), false)).toBe(false);
    expect(mayRelay(policy, to("<ann@sub.other.org>"), false)).toBe(false);
  });

  test("an SMTPUTF8 recipient matches the domain given as U-label or A-label", () => {
    expect(mayRelay(policy, to("<leser@bücher.example>"), false)).toBe(true);
    expect(mayRelay(policy, to("<leser@xn--bcher-kva.example>"), false)).toBe(true);
    expect(mayRelay(policy, to("<leser@BÜCHER.example>"), false)).toBe(true);
  });

  test("address literals match exactly", () => {
    expect(mayRelay(policy, to("<x@[192.0.2.1]>"), false)).toBe(true);
    expect(mayRelay(policy, to("<x@[192.0.2.2]>"), false)).toBe(false);
  });

  test("authentication counts only when the credentials are checked", () => {
    expect(mayRelay(policy, to("<y@anywhere.test>"), true)).toBe(false);
    const checked = relayPolicy(["example.com"], [], true);
    expect(mayRelay(checked, to("<y@anywhere.test>"), true)).toBe(true);
    expect(mayRelay(checked, to("<y@anywhere.test>"), false)).toBe(false);
  });

  test("the null path and a domain-less <Postmaster> are never relayed", () => {
    const checked = relayPolicy(["example.com"], [], true);
    expect(mayRelay(checked, { mailbox: null }, true)).toBe(false);
    expect(mayRelay(checked, { mailbox: { local: "Postmaster", domain: "" } }, true)).toBe(false);
  });

  test("a source route is ignored (RFC 5321 §3.3): the mailbox decides", () => {
    expect(mayRelay(policy, to("<@relay.example.com:bob@evil.test>"), false)).toBe(false);
    expect(mayRelay(policy, to("<@evil.test:bob@example.com>"), false)).toBe(true);
  });
});
