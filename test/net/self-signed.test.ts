import { describe, expect, test } from "bun:test";
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { Connection } from "../../src/net/connection.ts";
import { listen } from "../../src/net/listener.ts";
import { makeSelfSignedCertificate } from "../../src/net/self-signed.ts";
import { connect } from "../../src/net/tcp-client.ts";

const DAY_MS = 86_400_000;

describe("makeSelfSignedCertificate", () => {
  test("is valid now, for the host name and the extra names, for the days asked", async () => {
    const { cert, key } = await makeSelfSignedCertificate("mail.example.test", {
      altNames: ["127.0.0.1", "localhost"],
      days: 10,
    });
    expect(key).toStartWith("-----BEGIN PRIVATE KEY-----");
    const x509 = new X509Certificate(cert);
    expect(x509.subject).toBe("CN=mail.example.test");
    expect(x509.issuer).toBe(x509.subject);
    expect(x509.checkHost("mail.example.test")).toBe("mail.example.test");
    expect(x509.checkHost("localhost")).toBe("localhost");
    expect(x509.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(x509.checkHost("other.example.test")).toBeUndefined();
    expect(x509.ca).toBe(false);
    const from = new Date(x509.validFrom).getTime();
    const to = new Date(x509.validTo).getTime();
    expect(from).toBeLessThanOrEqual(Date.now());
    expect(Math.round((to - Date.now()) / DAY_MS)).toBe(10);
    expect(x509.checkPrivateKey(createPrivateKey(key))).toBe(true);
  });

  test("two certificates get different serial numbers", async () => {
    const a = new X509Certificate((await makeSelfSignedCertificate("a.test")).cert);
    const b = new X509Certificate((await makeSelfSignedCertificate("a.test")).cert);
    expect(a.serialNumber).not.toBe(b.serialNumber);
  });

  test("serves STARTTLS: a verifying client is refused, an insecure one is told why", async () => {
    const pem = await makeSelfSignedCertificate("localhost");
    const accepted: Connection[] = [];
    const listener = await listen({
      host: "127.0.0.1",
      port: 0,
      tls: pem,
      onConnection: (c) => accepted.push(c),
      onError: () => {},
    });
    const refused = await connect({ host: "localhost", port: listener.port, family: 4, tls: {} }).then(
      () => "connected",
      (error: Error) => error.message,
    );
    expect(refused).toContain("self-signed certificate");

    const insecure = await connect({
      host: "localhost",
      port: listener.port,
      family: 4,
      tls: { insecure: true },
    });
    expect(insecure.tls?.authorized).toBe(false);
    expect(insecure.tls?.nameMatches).toBe(true);
    expect(insecure.tls?.authorizationError).toContain("DEPTH_ZERO_SELF_SIGNED_CERT");

    const pinned = await connect({
      host: "localhost",
      port: listener.port,
      family: 4,
      tls: { ca: pem.cert },
    });
    expect(pinned.tls?.authorized).toBe(true);
    insecure.destroy();
    pinned.destroy();
    await listener.close({ force: true });
  });
});
