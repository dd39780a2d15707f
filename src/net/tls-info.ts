import type * as tls from "node:tls";
import { ipVersion } from "./endpoint.ts";
import { describeVerifyError, errorCode } from "./net-error.ts";

export interface CertificateInfo {
  /** "CN=mx.example.com, O=Example", attributes in the order the certificate lists them. */
  subject: string;
  issuer: string;
  /** "DNS:mx.example.com", "IP:192.0.2.1", ... */
  subjectAltNames: string[];
  notBefore: Date;
  notAfter: Date;
  /** Colon-separated upper-case hex, "AA:BB:..". */
  fingerprintSha256: string;
  /** Upper-case hex. */
  serialNumber: string;
}

export interface TlsInfo {
  /** "TLSv1.3" */
  protocol: string;
  cipher: string;
  /** The peer's chain verified against the CA set and, on the client side, the name matched. */
  authorized: boolean;
  /**
   * The chain verifies to a trusted root and every certificate in it is within its dates,
   * whatever names the leaf carries (on the server side: the client's certificate, if it sent one).
   */
  chainVerified: boolean;
  authorizationError?: string;
  /** Leaf first, then each issuer as far as it is known (sent by the peer or found in the CA set). */
  chain: CertificateInfo[];
  /** Client side: the name verified against (SNI unless it is an IP address); server side: the SNI the client sent. */
  servername?: string;
  /** Client side only: whether the leaf certificate is valid for `servername`. */
  nameMatches?: boolean;
  /** Client side only: trusted because its fingerprint is the pinned one (tls-fingerprint.ts), whatever `authorized` says. */
  pinned?: boolean;
  /** STARTTLS only: plaintext bytes that had arrived but were dropped at the switch (RFC 3207 §4.2). */
  discardedBytes?: number;
}

/** A malicious or broken peer cannot make us loop: real chains are far shorter. */
const MAX_CHAIN_DEPTH = 16;

type DistinguishedName = Record<string, string | string[] | undefined>;

function formatName(name: DistinguishedName | undefined): string {
  if (name === undefined) return "";
  const parts: string[] = [];
  for (const [attribute, value] of Object.entries(name)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) parts.push(`${attribute}=${one}`);
  }
  return parts.join(", ");
}

/** Node writes "DNS:a, IP Address:1.2.3.4", quoting entries that contain a comma. */
function splitAltNames(altNames: string | undefined): string[] {
  if (altNames === undefined || altNames === "") return [];
  const entries = altNames.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) ?? [];
  return entries.map((entry) => entry.trim().replace(/^IP Address:/, "IP:")).filter((entry) => entry !== "");
}

export function certificateInfo(peer: tls.PeerCertificate): CertificateInfo {
  return {
    subject: formatName(peer.subject as DistinguishedName | undefined),
    issuer: formatName(peer.issuer as DistinguishedName | undefined),
    subjectAltNames: splitAltNames(peer.subjectaltname),
    notBefore: new Date(peer.valid_from),
    notAfter: new Date(peer.valid_to),
    fingerprintSha256: peer.fingerprint256,
    serialNumber: peer.serialNumber.toUpperCase(),
  };
}

function isPresent(peer: tls.PeerCertificate | null | undefined): peer is tls.PeerCertificate {
  return peer !== undefined && peer !== null && typeof peer.fingerprint256 === "string";
}

/**
 * What is read from an established TLS socket of Bun's (native, from Bun.listen, Bun.connect or
 * upgradeTLS). Its getPeerCertificate takes Node's internal `abbreviated` flag, which Bun's types
 * leave out: false gives the detailed certificate with its issuers.
 */
export interface NativeTlsSocket {
  readonly authorized: boolean;
  getTLSVersion(): string | null;
  getCipher(): { name: string } | null | undefined;
  getPeerCertificate(abbreviated: boolean): tls.DetailedPeerCertificate | null | undefined;
  getServername(): string | null | undefined;
}

/** Walk issuerCertificate from the leaf until the self-signed root points at itself. */
export function peerChain(socket: NativeTlsSocket): CertificateInfo[] {
  const chain: CertificateInfo[] = [];
  let current: tls.DetailedPeerCertificate | null | undefined = socket.getPeerCertificate(false);
  while (isPresent(current) && chain.length < MAX_CHAIN_DEPTH) {
    chain.push(certificateInfo(current));
    const issuer: tls.DetailedPeerCertificate | undefined = current.issuerCertificate;
    if (!isPresent(issuer) || issuer === current || issuer.fingerprint256 === current.fingerprint256) break;
    current = issuer;
  }
  return chain;
}

export interface ClientCheck {
  /** The name the certificate must be valid for; an IP address is checked against IP SANs. */
  expectedName: string | undefined;
}

/**
 * The name check OpenSSL reports when it checked the name itself; the name is checked here against
 * the expected name instead, so this code leaves the chain verified.
 */
const NAME_MISMATCH = ["ERR_TLS_CERT_ALTNAME_INVALID", "HOSTNAME_MISMATCH"];

/**
 * TLS facts of an established socket. `verifyError` is the verification result the handshake
 * reported. On the client side `chainVerified` and `nameMatches` are checked apart and
 * `authorized` is both; `authorizationError` gives the chain's error first.
 */
export function tlsInfoOf(
  socket: NativeTlsSocket,
  verifyError: Error | null,
  client: ClientCheck | undefined,
): TlsInfo {
  const protocol = socket.getTLSVersion() ?? "unknown";
  const cipher = socket.getCipher()?.name ?? "unknown";
  const chain = peerChain(socket);
  const verifyCode = verifyError === null ? undefined : (errorCode(verifyError) ?? verifyError.message);

  if (client === undefined) {
    const info: TlsInfo = {
      protocol,
      cipher,
      authorized: socket.authorized,
      chainVerified: socket.authorized,
      chain,
    };
    const sni = socket.getServername();
    if (typeof sni === "string" && sni !== "") info.servername = sni;
    if (chain.length > 0 && verifyCode !== undefined)
      info.authorizationError = describeVerifyError(verifyCode);
    return info;
  }

  const chainError = verifyCode !== undefined && NAME_MISMATCH.includes(verifyCode) ? undefined : verifyCode;
  const chainVerified = chainError === undefined && chain.length > 0;
  const info: TlsInfo = { protocol, cipher, authorized: false, chainVerified, chain };
  let nameError: string | undefined;
  if (client.expectedName !== undefined) {
    info.servername = client.expectedName;
    const leaf = socket.getPeerCertificate(true);
    // node:tls only now that there is a certificate to check: loading it costs start-up time.
    const { checkServerIdentity } = process.getBuiltinModule("node:tls");
    const mismatch = isPresent(leaf) ? checkServerIdentity(client.expectedName, leaf) : undefined;
    info.nameMatches = isPresent(leaf) && mismatch === undefined;
    if (mismatch !== undefined) nameError = mismatch.message;
  }
  info.authorized = chainVerified && info.nameMatches !== false;
  if (chainError !== undefined) info.authorizationError = describeVerifyError(chainError);
  else if (nameError !== undefined) info.authorizationError = nameError;
  else if (!info.authorized) info.authorizationError = "peer certificate not verified";
  return info;
}

/** SNI carries host names only (RFC 6066 §3); IP literals are still checked against the certificate. */
export function sniFor(name: string | undefined): string | undefined {
  return name === undefined || ipVersion(name) !== 0 ? undefined : name;
}
