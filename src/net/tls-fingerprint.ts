/**
 * A certificate pinned by its SHA-256 fingerprint (send's --tls-fingerprint, msmtp's
 * tls_fingerprint): that one certificate is trusted whatever its issuer, names or dates, and no
 * other is, not even one that verifies.
 */

/** "AA:BB:..." (the form TlsInfo and openssl print) from 64 hex digits, colons optional; undefined if not one. */
export function normalizeFingerprint(text: string): string | undefined {
  const hex = text.trim().replaceAll(":", "").toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined;
  return hex.match(/../g)?.join(":");
}

/** The code of the NetError a certificate other than the pinned one ends the handshake with. */
export const PIN_MISMATCH = "ERR_TLS_CERT_FINGERPRINT";
