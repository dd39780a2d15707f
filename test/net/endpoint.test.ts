import { expect, test } from "bun:test";
import { formatEndpoint, ipVersion } from "../../src/net/endpoint.ts";

test("host:port, with an IPv6 address in brackets", () => {
  expect(formatEndpoint("mx.example.com", 25)).toBe("mx.example.com:25");
  expect(formatEndpoint("192.0.2.1", 587)).toBe("192.0.2.1:587");
  expect(formatEndpoint("::1", 25)).toBe("[::1]:25");
  expect(formatEndpoint("2001:db8::25", 465)).toBe("[2001:db8::25]:465");
  expect(formatEndpoint("::ffff:127.0.0.1", 2525)).toBe("[::ffff:127.0.0.1]:2525");
});

test("ipVersion tells IP addresses from host names, as node:net's isIP does", () => {
  const { isIP } = process.getBuiltinModule("node:net");
  const samples = [
    "127.0.0.1",
    "255.255.255.255",
    "256.1.1.1",
    "1.2.3",
    "::1",
    "::",
    "2001:db8::25",
    "fe80::1%eth0",
    "::ffff:127.0.0.1",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8:9",
    "localhost",
    "mx.example.com",
    "[::1]",
    "",
    "gggg::1",
  ];
  for (const host of samples) expect(`${host} ${ipVersion(host)}`).toBe(`${host} ${isIP(host)}`);
});
