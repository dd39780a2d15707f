import { HttpError, HttpStatus } from "./responses.ts";

/**
 * A small exact-path router: patterns are literal segments and `:name` parameters. It tells a
 * missing path (404) from a method the path does not support (405 with Allow), which Bun's
 * route table does not.
 */

export interface RouteRequest {
  request: Request;
  url: URL;
  params: Record<string, string>;
}

export type RouteHandler = (route: RouteRequest) => Response | Promise<Response>;

interface Route {
  method: string;
  segments: string[];
  handler: RouteHandler;
}

export class Router {
  readonly #routes: Route[] = [];

  on(method: string, pattern: string, handler: RouteHandler): this {
    this.#routes.push({ method, segments: split(pattern), handler });
    return this;
  }

  handle(request: Request): Response | Promise<Response> {
    const url = new URL(request.url);
    const path = split(url.pathname);
    const allowed: string[] = [];
    for (const route of this.#routes) {
      const params = match(route.segments, path);
      if (!params) continue;
      if (route.method === request.method || (route.method === "GET" && request.method === "HEAD")) {
        return route.handler({ request, url, params });
      }
      allowed.push(route.method);
    }
    if (allowed.length > 0) {
      throw new HttpError(HttpStatus.methodNotAllowed, `${request.method} is not allowed here`, {
        Allow: [...new Set(allowed)].join(", "),
      });
    }
    throw new HttpError(HttpStatus.notFound, `no such endpoint: ${url.pathname}`);
  }
}

function split(path: string): string[] {
  return path.split("/").filter((segment) => segment.length > 0);
}

function match(pattern: readonly string[], path: readonly string[]): Record<string, string> | undefined {
  if (pattern.length !== path.length) return undefined;
  const params: Record<string, string> = {};
  for (let index = 0; index < pattern.length; index++) {
    const expected = pattern[index] ?? "";
    const actual = path[index] ?? "";
    if (expected.startsWith(":")) {
      try {
        params[expected.slice(1)] = decodeURIComponent(actual);
      } catch {
        return undefined;
      }
    } else if (expected !== actual) {
      return undefined;
    }
  }
  return params;
}
