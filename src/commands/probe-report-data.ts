/** Turns core replies and src/net TLS facts into the report's plain, JSON-ready shapes. */

import type { Reply } from "../core/reply.ts";
import { describeEnhancedCode, describeReplyCode } from "../core/reply-codes.ts";
import type { CertificateInfo, TlsInfo } from "../net/connection.ts";
import type { CertificateReport, ReplyReport, TlsReport } from "./probe-types.ts";

const DAY_MS = 86_400_000;

export function replyReport(reply: Reply): ReplyReport {
  const enhanced = reply.enhanced ?? null;
  return {
    code: reply.code,
    enhanced,
    lines: [...reply.lines],
    meaning: describeReplyCode(reply.code),
    enhancedMeaning: enhanced === null ? null : describeEnhancedCode(enhanced),
  };
}

export function certificateReport(cert: CertificateInfo, now: number = Date.now()): CertificateReport {
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    subjectAltNames: [...cert.subjectAltNames],
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    daysLeft: Math.floor((cert.notAfter.getTime() - now) / DAY_MS),
    fingerprintSha256: cert.fingerprintSha256,
    serialNumber: cert.serialNumber,
  };
}

export function tlsReport(
  mode: TlsReport["mode"],
  offered: boolean,
  starttls: Reply | null,
  info: TlsInfo | undefined,
  ms: number | null,
  error: string | null,
): TlsReport {
  return {
    mode,
    offered,
    starttls: starttls === null ? null : replyReport(starttls),
    ms: ms === null ? null : Math.round(ms * 10) / 10,
    established: info !== undefined,
    protocol: info?.protocol ?? null,
    cipher: info?.cipher ?? null,
    servername: info?.servername ?? null,
    chainVerified: info?.chainVerified ?? null,
    nameMatches: info?.nameMatches ?? null,
    verified: info === undefined ? null : info.authorized,
    verifyError: info === undefined || info.authorized ? null : (info.authorizationError ?? "not verified"),
    error,
    certificates: info === undefined ? [] : info.chain.map((cert) => certificateReport(cert)),
  };
}
