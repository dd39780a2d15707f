/**
 * Opening a connection for a destination: the stored route becomes client options (certificate
 * files and the password read now, never stored), then the smarthost, or the domain's MX hosts in
 * preference order, falling to the next host on any failure before a session is ready
 * (RFC 5321 §5.1, as src/client/mx-delivery.ts does for `send`).
 */
import { SmtpClientError } from "../client/errors.ts";
import { type ClientOptions, SmtpClient } from "../client/smtp-client.ts";
import { uniformTimeouts } from "../client/timeouts.ts";
import type { SecretSource } from "../config/accounts.ts";
import { mailHostsFor, type Resolver } from "../net/dns.ts";
import { NetError } from "../net/net-error.ts";
import { type QueueRoute, SMTP_PORT } from "./route.ts";

export interface ConnectContext {
  resolver: Resolver;
  /** EHLO name when the route names none. */
  hostname: string;
  /** Reads a route's secret; throws (with a message worth showing) when it cannot. */
  readSecret(source: SecretSource, what: string): Promise<string | undefined>;
  /** Port on MX hosts when the route names none; default 25. */
  mxPort?: number;
}

export interface Connected {
  client: SmtpClient;
  /** The host name we connected to, for Remote-MTA. */
  remoteMta: string;
}

/** The route cannot be used as configured (a secret or file is missing): deferred until fixed. */
export class RouteConfigError extends Error {
  override name = "RouteConfigError";
}

/** A connection could not be made; `remoteMta` is the last host tried, when there was one. */
export class ConnectError extends Error {
  override name = "ConnectError";
  constructor(
    readonly reason: SmtpClientError | RouteConfigError,
    readonly remoteMta: string | undefined,
  ) {
    super(reason.message);
  }
}

async function readPem(path: string | undefined, what: string): Promise<string | undefined> {
  if (path === undefined) return undefined;
  const file = Bun.file(path);
  if (!(await file.exists())) throw new RouteConfigError(`${what} ${path} does not exist`);
  return file.text();
}

/** Client options for one host of the route; reads the files and the secret it refers to. */
export async function clientOptionsFor(
  route: QueueRoute,
  host: string,
  port: number,
  context: ConnectContext,
): Promise<ClientOptions> {
  const [ca, cert, key] = await Promise.all([
    readPem(route.tls?.caFile, "CA file"),
    readPem(route.tls?.certFile, "client certificate"),
    readPem(route.tls?.keyFile, "client key"),
  ]);
  const options: ClientOptions = {
    host,
    port,
    helo: route.helo ?? context.hostname,
    starttls: route.starttls ?? "auto",
    chunking: route.chunking !== false,
    resolver: context.resolver,
    tls: {
      ...(route.tls?.insecure === true ? { insecure: true } : {}),
      ...(route.tls?.fingerprint === undefined ? {} : { fingerprint: route.tls.fingerprint }),
      ...(route.tls?.servername === undefined ? {} : { servername: route.tls.servername }),
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
    },
  };
  if (route.family !== undefined) options.family = route.family;
  if (route.timeoutMs !== undefined) options.timeouts = uniformTimeouts(route.timeoutMs);
  if (route.kind === "smarthost") {
    if (route.implicitTls === true) options.implicitTls = true;
    if (route.allowPlaintextAuth === true) options.allowPlaintextAuth = true;
    if (route.auth !== undefined) {
      let password: string | undefined;
      try {
        password = await context.readSecret(route.auth.secret, `password for ${route.auth.username}`);
      } catch (error) {
        throw new RouteConfigError(error instanceof Error ? error.message : String(error));
      }
      if (password === undefined) {
        throw new RouteConfigError(`the route names user ${route.auth.username} but no password source`);
      }
      options.auth = {
        username: route.auth.username,
        password,
        ...(route.auth.mechanism === undefined ? {} : { mechanism: route.auth.mechanism }),
      };
    }
  }
  return options;
}

function dnsFailure(domain: string, error: unknown): SmtpClientError {
  const net = error instanceof NetError ? error : undefined;
  const text = error instanceof Error ? error.message : String(error);
  return new SmtpClientError("network", "connect", `no mail host for ${domain}: ${text}`, {
    netKind: "dns",
    temporary: net?.temporary ?? true,
    cause: error,
  });
}

function asConnectError(error: unknown, host: string | undefined): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof SmtpClientError || error instanceof RouteConfigError)
    return new ConnectError(error, host);
  const text = error instanceof Error ? error.message : String(error);
  return new ConnectError(
    new SmtpClientError("network", "connect", text, { netKind: "reset", cause: error }),
    host,
  );
}

/**
 * A ready session (EHLO, STARTTLS, AUTH done) for the destination: the smarthost, or the first
 * MX host of `domain` that takes us. Throws ConnectError.
 */
export async function connectDestination(
  route: QueueRoute,
  domain: string,
  context: ConnectContext,
): Promise<Connected> {
  if (route.kind === "smarthost") {
    try {
      const options = await clientOptionsFor(route, route.host, route.port, context);
      return { client: await SmtpClient.connect(options), remoteMta: route.host };
    } catch (error) {
      throw asConnectError(error, route.host);
    }
  }
  let hosts: { exchange: string }[];
  try {
    hosts = await mailHostsFor(domain, context.resolver);
  } catch (error) {
    throw new ConnectError(dnsFailure(domain, error), undefined);
  }
  let last: ConnectError | undefined;
  for (const host of hosts) {
    try {
      const options = await clientOptionsFor(
        route,
        host.exchange,
        route.port ?? context.mxPort ?? SMTP_PORT,
        context,
      );
      return { client: await SmtpClient.connect(options), remoteMta: host.exchange };
    } catch (error) {
      last = asConnectError(error, host.exchange);
      // A missing secret or file fails the same way on every host.
      if (last.reason instanceof RouteConfigError) throw last;
    }
  }
  throw last ?? new ConnectError(dnsFailure(domain, new Error("no hosts")), undefined);
}
