import type { Server } from "bun";
import type { MessageStore } from "../store/types.ts";
import { StoreClosedError } from "../store/types.ts";
import { authGate } from "./auth-gate.ts";
import { type ChaosHooks, registerChaosRoute } from "./chaos-route.ts";
import { registerEventsRoute } from "./events-route.ts";
import type { HtpasswdUsers } from "./htpasswd.ts";
import { registerMailHogRoutes } from "./mailhog-routes.ts";
import { registerMessageRoutes } from "./message-routes.ts";
import { type ReleaseHook, registerReleaseRoute } from "./release-route.ts";
import { errorResponse, HttpError, HttpStatus } from "./responses.ts";
import { Router } from "./router.ts";
import { registerSendRoute, type SendRouteOptions } from "./send-route.ts";
import { registerStatusRoutes, type SmtpStats } from "./status-routes.ts";
import { registerTagRoutes } from "./tag-routes.ts";
import { registerViewRoutes } from "./view-routes.ts";
import { registerWaitRoute } from "./wait-route.ts";

/** Loopback unless asked otherwise: the API shows every caught message to whoever can reach it. */
export const DEFAULT_HTTP_HOST = "127.0.0.1";
/** The port Mailpit and MailHog taught people. */
export const DEFAULT_HTTP_PORT = 8025;
/**
 * The largest request is a message for POST /api/v1/send, its attachments in base64: room for
 * serve's default --max-size of 25 MiB once encoded (4/3), and the JSON around it.
 */
export const MAX_REQUEST_BODY_BYTES = 36 * 1024 * 1024;
/** Idle keep-alive connections close after this; held requests (wait, events) lift it. */
const IDLE_TIMEOUT_SECONDS = 30;

export interface HttpApiOptions extends ChaosHooks {
  host?: string;
  /** 0 picks a free port (tests). */
  port: number;
  store: MessageStore;
  version: string;
  getSmtpStats?: () => SmtpStats;
  /** POST /api/v1/message/{ID}/release; without it the endpoint answers 400 (no relay). */
  onRelease?: ReleaseHook;
  /** Largest message POST /api/v1/send stores (serve's --max-size); 0 or absent for no limit. */
  maxSize?: number;
  /** Told about each message POST /api/v1/send stored. */
  onStored?: SendRouteOptions["onStored"];
  /** Users of --http-auth-file; without them the API asks for no credentials. */
  users?: HtpasswdUsers;
  /** Serve HTTPS with this certificate (PEM) instead of HTTP. */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

export interface HttpApi {
  port: number;
  /** Base URL, e.g. http://127.0.0.1:8025/ */
  url: string;
  /** Ends held requests and event streams, then stops listening. The store stays open. */
  close(): Promise<void>;
}

/** Serves Mailpit's API v1 (and MailHog's v2) over `store` with Bun.serve. */
export async function startHttpApi(options: HttpApiOptions): Promise<HttpApi> {
  const router = new Router();
  const closing = new AbortController();
  let server: Server<undefined> | undefined;
  const hooks = {
    keepOpen: (request: Request) => server?.timeout(request, 0),
    closing: closing.signal,
  };
  registerMessageRoutes(router, options.store);
  registerMailHogRoutes(router, options.store);
  registerWaitRoute(router, options.store, hooks);
  registerEventsRoute(router, options.store, hooks);
  registerStatusRoutes(router, options.store, {
    version: options.version,
    getSmtpStats: options.getSmtpStats,
    chaosEnabled: options.onChaos !== undefined,
  });
  registerChaosRoute(router, { onChaos: options.onChaos, getChaos: options.getChaos });
  registerReleaseRoute(router, options.store, options.onRelease);
  registerViewRoutes(router, options.store);
  registerTagRoutes(router, options.store);
  registerSendRoute(router, options.store, {
    clientAddress: (request) => server?.requestIP(request)?.address ?? "",
    maxSize: options.maxSize ?? 0,
    onStored: options.onStored,
  });

  const gate = options.users ? authGate(options.users) : undefined;
  server = Bun.serve({
    hostname: options.host ?? DEFAULT_HTTP_HOST,
    port: options.port,
    ...(options.tls ? { tls: options.tls } : {}),
    maxRequestBodySize: MAX_REQUEST_BODY_BYTES,
    idleTimeout: IDLE_TIMEOUT_SECONDS,
    fetch: async (request) => (await gate?.(request)) ?? respond(router, request),
    error: (error) => errorResponse(HttpStatus.internalError, error.message),
  });
  const running = server;
  return {
    port: running.port ?? options.port,
    url: running.url.href,
    async close() {
      closing.abort();
      await running.stop(true);
    },
  };
}

async function respond(router: Router, request: Request): Promise<Response> {
  try {
    return await router.handle(request);
  } catch (error) {
    if (error instanceof HttpError) return errorResponse(error.status, error.message, error.headers);
    if (error instanceof StoreClosedError) return errorResponse(HttpStatus.unavailable, error.message);
    return errorResponse(HttpStatus.internalError, error instanceof Error ? error.message : String(error));
  }
}
