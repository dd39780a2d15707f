import type * as X509 from "@peculiar/x509";
import { ipVersion } from "./endpoint.ts";

/**
 * @peculiar/x509 uses tsyringe, which throws unless the Reflect polyfill ran first. In a
 * `bun build --compile` binary the bundler evaluated x509 before its own `import "reflect-metadata"`,
 * so both are loaded here, in order, and only when a certificate is made.
 */
async function loadX509(): Promise<typeof X509> {
  await import("reflect-metadata");
  return import("@peculiar/x509");
}

export interface SelfSignedOptions {
  /** More names for the subjectAltName; host names or IP addresses. */
  altNames?: string[];
  /** Validity from an hour ago (clock skew), default 365 days. */
  days?: number;
}

export interface PemCertificate {
  cert: string;
  key: string;
}

/** ECDSA P-256: generated in milliseconds, accepted by every TLS stack an SMTP client uses. */
const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DEFAULT_DAYS = 365;
const DAY_MS = 86_400_000;
const SKEW_MS = 3_600_000;
/** RFC 5280 §4.1.2.2: positive, at most 20 octets; 16 random ones make collisions moot. */
const SERIAL_BYTES = 16;

function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(SERIAL_BYTES));
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString("hex");
}

function generalName(name: string): X509.JsonGeneralName {
  return ipVersion(name) !== 0 ? { type: "ip", value: name } : { type: "dns", value: name };
}

/** CN carries at most 64 characters (RFC 5280 upper bound); the SAN carries the real name anyway. */
function commonName(hostname: string): string {
  const clipped = hostname.slice(0, 64);
  return `CN=${clipped.replace(/([,+"\\<>;=])/g, "\\$1")}`;
}

/**
 * A self-signed server certificate for `hostname`, for `serve` STARTTLS when no certificate is
 * configured. Clients that verify will reject it; it gives privacy against passive listeners only.
 */
export async function makeSelfSignedCertificate(
  hostname: string,
  options: SelfSignedOptions = {},
): Promise<PemCertificate> {
  const x509 = await loadX509();
  const keys = await crypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"]);
  const now = Date.now();
  const names = [hostname, ...(options.altNames ?? [])].filter((name, i, all) => all.indexOf(name) === i);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: commonName(hostname),
    notBefore: new Date(now - SKEW_MS),
    notAfter: new Date(now + (options.days ?? DEFAULT_DAYS) * DAY_MS),
    keys,
    signingAlgorithm: KEY_ALGORITHM,
    // No keyUsage: with one lacking keyCertSign, OpenSSL stops treating the certificate as
    // self-signed, so clients report "unknown issuer" and cannot pin it as their CA.
    extensions: [
      new x509.SubjectAlternativeNameExtension(names.map(generalName)),
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    ],
  });
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { cert: certificate.toString("pem"), key: x509.PemConverter.encode(pkcs8, "PRIVATE KEY") };
}
