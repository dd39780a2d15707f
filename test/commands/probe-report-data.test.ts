import { describe, expect, test } from "bun:test";
import { certificateReport, replyReport, tlsReport } from "../../src/commands/probe-report-data.ts";
import type { CertificateInfo, TlsInfo } from "../../src/net/connection.ts";

const DAY = 86_400_000;
const NOW = Date.UTC(2030, 0, 15, 12);

function cert(notAfter: number): CertificateInfo {
  return {
    subject: "CN=mx.test",
    issuer: "CN=CA",
    subjectAltNames: ["DNS:mx.test"],
    notBefore: new Date(NOW - 10 * DAY),
    notAfter: new Date(notAfter),
    fingerprintSha256: "AA:BB",
    serialNumber: "01",
  };
}

describe("replyReport", () => {
  test("codes with their meanings", () => {
    expect(replyReport({ code: 550, enhanced: "5.1.1", lines: ["No such user"] })).toEqual({
      code: 550,
      enhanced: "5.1.1",
      lines: ["No such user"],
      meaning: "Requested action not taken: mailbox unavailable",
      enhancedMeaning: "Bad destination mailbox address",
    });
  });

  test("no enhanced code gives null, not undefined (stable JSON)", () => {
    const report = replyReport({ code: 220, lines: ["hi"] });
    expect(report.enhanced).toBeNull();
    expect(report.enhancedMeaning).toBeNull();
    expect(JSON.parse(JSON.stringify(report))).toHaveProperty("enhanced", null);
  });
});

describe("certificateReport daysLeft", () => {
  test.each([
    [NOW + 30 * DAY + 1000, 30],
    [NOW + DAY / 2, 0],
    [NOW - 1000, -1],
    [NOW - DAY - 1000, -2],
  ])("notAfter %p gives %p", (notAfter, days) => {
    expect(certificateReport(cert(notAfter), NOW).daysLeft).toBe(days);
  });

  test("dates in ISO 8601", () => {
    expect(certificateReport(cert(NOW), NOW).notAfter).toBe("2030-01-15T12:00:00.000Z");
  });
});

function info(fields: Partial<TlsInfo>): TlsInfo {
  return {
    protocol: "TLSv1.3",
    cipher: "TLS_AES_128_GCM_SHA256",
    authorized: true,
    chainVerified: true,
    chain: [],
    ...fields,
  };
}

/** src/net decides chainVerified and nameMatches (test/net/tls-info.test.ts); the report carries them. */
describe("tlsReport: chain and name apart", () => {
  const chainVerified = (fields: Partial<TlsInfo>) =>
    tlsReport("starttls", true, null, info(fields), null, null).chainVerified;

  test("authorized means chain and name are fine", () => {
    expect(chainVerified({ authorized: true, chainVerified: true, nameMatches: true })).toBe(true);
  });

  test("a name mismatch alone leaves the chain verified", () => {
    const mismatch = info({
      authorized: false,
      chainVerified: true,
      nameMatches: false,
      authorizationError:
        "Hostname/IP does not match certificate's altnames: Host: a. is not in the cert's altnames: DNS:b",
    });
    expect(tlsReport("starttls", true, null, mismatch, null, null)).toMatchObject({
      chainVerified: true,
      nameMatches: false,
      verified: false,
      verifyError: mismatch.authorizationError,
    });
  });

  test("a chain error is a chain error, whatever the name", () => {
    const expired = "certificate has expired (CERT_HAS_EXPIRED)";
    expect(
      chainVerified({
        authorized: false,
        chainVerified: false,
        nameMatches: true,
        authorizationError: expired,
      }),
    ).toBe(false);
    expect(
      chainVerified({
        authorized: false,
        chainVerified: false,
        nameMatches: false,
        authorizationError: expired,
      }),
    ).toBe(false);
  });
});

describe("tlsReport", () => {
  test("without a session every TLS fact is null", () => {
    const report = tlsReport("none", true, { code: 454, lines: ["no"] }, undefined, 3.04, "refused");
    expect(report).toMatchObject({
      mode: "none",
      offered: true,
      established: false,
      protocol: null,
      chainVerified: null,
      verified: null,
      verifyError: null,
      error: "refused",
      certificates: [],
      ms: 3,
    });
    expect(report.starttls?.code).toBe(454);
  });

  test("with a session: versions, verification and the chain leaf first", () => {
    const report = tlsReport(
      "starttls",
      true,
      null,
      info({ servername: "mx.test", nameMatches: true, chain: [cert(NOW + DAY), cert(NOW + 9 * DAY)] }),
      null,
      null,
    );
    expect(report).toMatchObject({
      established: true,
      protocol: "TLSv1.3",
      servername: "mx.test",
      chainVerified: true,
      nameMatches: true,
      verified: true,
      verifyError: null,
    });
    expect(report.certificates).toHaveLength(2);
  });
});
