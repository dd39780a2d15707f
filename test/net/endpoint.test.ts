import { expect, test } from "bun:test";
import { formatEndpoint } from "../../src/net/endpoint.ts";

test("host:port, with an IPv6 address in brackets", () => {
  expect(formatEndpoint("mx.example.com", 25)).toBe("mx.example.com:25");
  expect(formatEndpoint("192.0.2.1", 587)).toBe("192.0.2.1:587");
  expect(formatEndpoint("::1", 25)).toBe("[::1]:25");
  expect(formatEndpoint("2001:db8::25", 465)).toBe("[2001:db8::25]:465");
  expect(formatEndpoint("::ffff:127.0.0.1", 2525)).toBe("[::ffff:127.0.0.1]:2525");
});
