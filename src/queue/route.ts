/**
 * Where a queued message goes and how to connect there. Routes are stored with the message, so
 * everything in them must be safe on disk: certificate files and secrets are kept by reference
 * (paths, an environment variable's name, a command), never their contents, and are read only
 * when a connection is made.
 */
import type { SecretSource } from "../config/accounts.ts";

export interface RouteTls {
  /** Do not fail when the certificate does not verify. */
  insecure?: boolean;
  /** "AA:BB:...": trust the certificate with this SHA-256 fingerprint, and no other. */
  fingerprint?: string;
  /** Name to verify the certificate against (and SNI). */
  servername?: string;
  /** PEM files, read at connection time. */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface RouteAuth {
  username: string;
  /** PLAIN, LOGIN, CRAM-MD5 or XOAUTH2; default: the best the server offers. */
  mechanism?: string;
  /** Where the password lives; the queue never stores it. */
  secret: SecretSource;
}

interface RouteCommon {
  /** EHLO name; default: the worker's host name. */
  helo?: string;
  /** STARTTLS: "auto" (default), "always" or "never". */
  starttls?: "auto" | "always" | "never";
  tls?: RouteTls;
  family?: 4 | 6;
  /** One timeout for every reply, instead of RFC 5321 §4.5.3.2's per-stage ones. */
  timeoutMs?: number;
  /** Use CHUNKING/BDAT when offered (default true). */
  chunking?: boolean;
}

/** Through one server (a smarthost, an account's server, `serve --relay smtp://...`). */
export interface SmarthostRoute extends RouteCommon {
  kind: "smarthost";
  host: string;
  port: number;
  /** TLS from the first byte (smtps, RFC 8314). */
  implicitTls?: boolean;
  auth?: RouteAuth;
  allowPlaintextAuth?: boolean;
}

/** Directly to each recipient domain's MX hosts (RFC 5321 §5.1). */
export interface MxRoute extends RouteCommon {
  kind: "mx";
  /**
   * Port on the MX hosts; 25 unless set. Real delivery always uses 25: this exists so tests can
   * point MX delivery at a loopback peer.
   */
  port?: number;
  /** DNS server ("IP[:PORT]") for the MX lookups, unless the worker is given one. */
  dns?: string;
}

export type QueueRoute = SmarthostRoute | MxRoute;

/** RFC 5321 §4.5.4.1 / RFC 8314 §3.3: the standard ports. */
export const SMTP_PORT = 25;
export const SMTPS_PORT = 465;

/** JSON with sorted keys and no undefined values: equal routes give equal text (one row each). */
export function canonicalRoute(route: QueueRoute): string {
  return JSON.stringify(sortKeys(route));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const inner = (value as Record<string, unknown>)[key];
    if (inner !== undefined) out[key] = sortKeys(inner);
  }
  return out;
}

export function parseStoredRoute(text: string): QueueRoute {
  const route = JSON.parse(text) as QueueRoute;
  if (route.kind !== "smarthost" && route.kind !== "mx") throw new Error(`unknown route kind in ${text}`);
  return route;
}

/**
 * The key the worker groups recipients by: one connection may carry mail for every recipient
 * with the same key. It names the stored route (so two accounts on one server never share an
 * authenticated connection) and, for MX delivery, the recipient's domain.
 */
export function destinationKey(routeId: number, route: QueueRoute, domain: string): string {
  return `${routeId}|${destinationName(route, domain)}`;
}

function destinationName(route: QueueRoute, domain: string): string {
  if (route.kind === "mx") return domain.toLowerCase();
  return route.host.includes(":") ? `[${route.host}]:${route.port}` : `${route.host}:${route.port}`;
}

/** What a person reads for a destination key: "host:port" for a smarthost, the domain for MX. */
export function describeDestination(key: string): string {
  const bar = key.indexOf("|");
  return bar < 0 ? key : key.slice(bar + 1);
}

/** The domain of an MX destination key. */
export function destinationDomain(key: string): string {
  return describeDestination(key);
}

export class RouteTargetError extends Error {
  override name = "RouteTargetError";
}

export interface RouteTargetDefaults {
  /** Where the password for `user@` comes from. */
  secret?: SecretSource;
  helo?: string;
  tls?: RouteTls;
  dns?: string;
}

/**
 * `smtp://[user@]host[:port][?starttls=always|auto|never&auth=MECH]`, `smtps://...`, or `mx`:
 * the TARGET of `serve --relay` and of `queue run --dsn-route`. STARTTLS defaults to "always"
 * for smtp:// (a relay should not leak mail in clear text by surprise); `?starttls=auto` relaxes it.
 */
export function parseRouteTarget(target: string, defaults: RouteTargetDefaults = {}): QueueRoute {
  const common = {
    ...(defaults.helo === undefined ? {} : { helo: defaults.helo }),
    ...(defaults.tls === undefined ? {} : { tls: defaults.tls }),
  };
  if (target.toLowerCase() === "mx") {
    return { kind: "mx", ...common, ...(defaults.dns === undefined ? {} : { dns: defaults.dns }) };
  }
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new RouteTargetError(`'${target}' is not smtp://[user@]host[:port], smtps://... or mx`);
  }
  const scheme = url.protocol.toLowerCase();
  if (scheme !== "smtp:" && scheme !== "smtps:") {
    throw new RouteTargetError(`'${target}': the scheme must be smtp:// or smtps://`);
  }
  if (url.hostname === "") throw new RouteTargetError(`'${target}' names no host`);
  if (url.password !== "") {
    throw new RouteTargetError(
      `'${target}' holds a password: give it by reference (a -env, -file or -cmd option) instead`,
    );
  }
  if (url.pathname !== "" && url.pathname !== "/") {
    throw new RouteTargetError(`'${target}': a relay target has no path`);
  }
  const implicitTls = scheme === "smtps:";
  const port = url.port === "" ? (implicitTls ? SMTPS_PORT : SMTP_PORT) : Number(url.port);
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const route: SmarthostRoute = { kind: "smarthost", host, port, ...common };
  if (implicitTls) route.implicitTls = true;
  const starttls = url.searchParams.get("starttls") ?? (implicitTls ? undefined : "always");
  if (starttls !== undefined && starttls !== null) {
    if (starttls !== "auto" && starttls !== "always" && starttls !== "never") {
      throw new RouteTargetError(`'${target}': starttls must be auto, always or never`);
    }
    route.starttls = starttls;
  }
  for (const key of url.searchParams.keys()) {
    if (key !== "starttls" && key !== "auth") {
      throw new RouteTargetError(`'${target}': unknown parameter '${key}' (starttls and auth are known)`);
    }
  }
  if (url.username !== "") {
    const secret = defaults.secret;
    if (secret === undefined || Object.values(secret).every((v) => v === undefined)) {
      throw new RouteTargetError(`'${target}' names a user: say where the password is (-env, -file or -cmd)`);
    }
    const mechanism = url.searchParams.get("auth");
    route.auth = {
      username: decodeURIComponent(url.username),
      secret,
      ...(mechanism === null ? {} : { mechanism: mechanism.toUpperCase() }),
    };
  }
  return route;
}
