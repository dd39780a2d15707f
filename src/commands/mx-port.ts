import { UsageError } from "./exit-codes.ts";

/** RFC 5321 §4.5.4.1 / IANA: MX hosts take mail on port 25. */
export const MX_PORT = 25;

/**
 * A test hook, not a feature: interop tests run MX hosts on loopback ports other than 25, which
 * only root could bind. Deliberately an environment variable, so no flag shows in --help. Read by
 * `send` and by the queue's delivery (`queue run/flush`, `serve --relay mx`).
 */
export function mxPortFromEnvironment(env: Record<string, string | undefined> = process.env): number {
  const text = env.SMTPKIT_MX_PORT;
  if (text === undefined || text === "") return MX_PORT;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`SMTPKIT_MX_PORT must be a port 1-65535, not '${text}'`);
  }
  return port;
}
