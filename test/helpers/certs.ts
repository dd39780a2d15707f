import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";

/** Test PKI: a CA and the leaf certificates it signs, all in PEM. ECDSA P-256 keeps it fast. */

const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY_MS = 86_400_000;

export interface PemPair {
  cert: string;
  key: string;
}

export interface LeafOptions {
  /** CN; also the only SAN when `altNames` is left out. */
  commonName: string;
  /** Host names or IP addresses for the subjectAltName. */
  altNames?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** Client certificates get clientAuth instead of serverAuth. */
  usage?: "server" | "client";
}

export interface TestCa extends PemPair {
  subject: string;
  issue(options: LeafOptions): Promise<PemPair>;
}

let serial = 1;
function nextSerial(): string {
  serial += 1;
  return serial.toString(16).padStart(4, "0");
}

async function newKeys(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"]);
}

async function keyPem(keys: CryptoKeyPair): Promise<string> {
  return x509.PemConverter.encode(await crypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY");
}

function generalName(name: string): x509.JsonGeneralName {
  return isIP(name) !== 0 ? { type: "ip", value: name } : { type: "dns", value: name };
}

export async function createTestCa(commonName = "smtpkit test CA"): Promise<TestCa> {
  const keys = await newKeys();
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name: `CN=${commonName}, O=smtpkit tests`,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + 3650 * DAY_MS),
    keys,
    signingAlgorithm: KEY_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });

  return {
    cert: certificate.toString("pem"),
    key: await keyPem(keys),
    subject: certificate.subject,
    async issue(options: LeafOptions): Promise<PemPair> {
      const leafKeys = await newKeys();
      const issued = Date.now();
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: nextSerial(),
        subject: `CN=${options.commonName}`,
        issuer: certificate.subject,
        notBefore: options.notBefore ?? new Date(issued - DAY_MS),
        notAfter: options.notAfter ?? new Date(issued + 30 * DAY_MS),
        publicKey: leafKeys.publicKey,
        signingKey: keys.privateKey,
        signingAlgorithm: KEY_ALGORITHM,
        extensions: [
          new x509.SubjectAlternativeNameExtension(
            (options.altNames ?? [options.commonName]).map(generalName),
          ),
          new x509.BasicConstraintsExtension(false),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([
            options.usage === "client" ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth,
          ]),
          await x509.AuthorityKeyIdentifierExtension.create(certificate),
        ],
      });
      return { cert: leaf.toString("pem"), key: await keyPem(leafKeys) };
    },
  };
}

/** The usual cast for TLS tests: one CA, and leaves that are good, expired, or for another name. */
export interface TestPki {
  ca: TestCa;
  /** localhost, 127.0.0.1 and ::1. */
  server: PemPair;
  /** Valid for localhost, but expired yesterday. */
  expired: PemPair;
  /** Valid, but only for mx.other.test. */
  wrongName: PemPair;
  /** A second CA's leaf for localhost: unknown to clients that trust `ca` only. */
  unknownCa: PemPair;
}

export async function createTestPki(): Promise<TestPki> {
  const ca = await createTestCa();
  const stranger = await createTestCa("some other CA");
  const now = Date.now();
  const localNames = ["localhost", "127.0.0.1", "::1"];
  return {
    ca,
    server: await ca.issue({ commonName: "localhost", altNames: localNames }),
    expired: await ca.issue({
      commonName: "localhost",
      altNames: localNames,
      notBefore: new Date(now - 30 * DAY_MS),
      notAfter: new Date(now - DAY_MS),
    }),
    wrongName: await ca.issue({ commonName: "mx.other.test" }),
    unknownCa: await stranger.issue({ commonName: "localhost", altNames: localNames }),
  };
}

export interface PemFiles {
  dir: string;
  /** Path of each file written, by the name it was given. */
  paths: Record<string, string>;
  remove(): Promise<void>;
}

/** For peers that read certificates from files (aiosmtpd, swaks): `{ "ca.pem": ca.cert, ... }`. */
export async function writePemFiles(files: Record<string, string>): Promise<PemFiles> {
  const dir = await mkdtemp(join(tmpdir(), "smtpkit-certs-"));
  const paths: Record<string, string> = {};
  for (const [name, pem] of Object.entries(files)) {
    const path = join(dir, name);
    await writeFile(path, pem, { mode: 0o600 });
    paths[name] = path;
  }
  return { dir, paths, remove: () => rm(dir, { recursive: true, force: true }) };
}
