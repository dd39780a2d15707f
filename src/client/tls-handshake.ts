import type { Connection, TlsInfo } from "../net/connection.ts";
import { networkError, SmtpClientError } from "./errors.ts";

/**
 * Waits at most `ms` for the TLS handshake that follows STARTTLS's 220. RFC 3207 and RFC 5321 set
 * no time for it and src/net does not bound it, so a server that never answers the ClientHello
 * would hang the client for good; the client's command timeout bounds it instead. On timeout the
 * connection is destroyed. Rejects with SmtpClientError at stage "tls": kind "timeout", or the
 * network error the handshake failed with.
 */
export async function boundedHandshake(
  handshake: Promise<TlsInfo>,
  connection: Connection,
  ms: number,
): Promise<TlsInfo> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new SmtpClientError("timeout", "tls", `TLS handshake not done within ${ms / 1000} s`, {
          netKind: "timeout",
        }),
      );
      connection.destroy();
    }, ms);
  });
  try {
    return await Promise.race([handshake, timeout]);
  } catch (error) {
    throw networkError("tls", error);
  } finally {
    clearTimeout(timer);
  }
}
