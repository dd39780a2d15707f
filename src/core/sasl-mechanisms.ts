/**
 * The SASL mechanisms smtpkit speaks in SMTP AUTH (RFC 4954): PLAIN (RFC 4616), LOGIN
 * (draft-murchison-sasl-login), CRAM-MD5 (RFC 2195) and XOAUTH2 (Google's bearer-token profile).
 * The client speaks them all; the server speaks the subset auth-server.ts names.
 */

export const SASL_MECHANISMS = ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"] as const;

export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/** Exact (upper-case) names only; callers upper-case what a user or a server wrote. */
export function isSaslMechanism(name: string): name is SaslMechanism {
  return (SASL_MECHANISMS as readonly string[]).includes(name);
}
