/** Response helpers shared by the API routes; errors are JSON `{ "Error": message }`, Mailpit's JSON error shape. */

export const HttpStatus = {
  ok: 200,
  badRequest: 400,
  unauthorized: 401,
  notFound: 404,
  methodNotAllowed: 405,
  requestTimeout: 408,
  internalError: 500,
  unavailable: 503,
} as const;

/** Thrown by a route to answer with this status and message. */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A 400 with this message. */
export function badRequest(message: string): HttpError {
  return new HttpError(HttpStatus.badRequest, message);
}

export function json(body: unknown, status: number = HttpStatus.ok): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

/** Mailpit answers successful changes with a plain-text "ok". */
export function ok(): Response {
  return new Response("ok", { headers: { "Content-Type": "text/plain; charset=utf-8" } });
}

export function errorResponse(
  status: number,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify({ Error: message }), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

/** The request body as JSON, or undefined when there is none; malformed JSON is a 400. */
export async function readJson(request: Request): Promise<unknown> {
  const text = await request.text();
  if (text.trim().length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(HttpStatus.badRequest, "the request body is not valid JSON");
  }
}
