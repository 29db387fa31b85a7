/**
 * Turning results and errors into responses, in one place.
 */
import { HttpError } from "./errors.ts";
import type { Html } from "../views/html.ts";
import { errorFragment, errorPage } from "../views/status.ts";
import type { Principal } from "./session.ts";

/** Whether htmx sent the request (it sets `HX-Request: true`), so a fragment is the right answer. */
export function isHtmx(req: Request): boolean {
  return req.headers.get("hx-request") === "true";
}

/** Status and extra headers of a response. */
export interface ResponseOptions {
  status?: number;
  headers?: Record<string, string>;
}

/** An HTML response. */
export function htmlResponse(body: Html, { status = 200, headers = {} }: ResponseOptions = {}): Response {
  return new Response(body.value, { status, headers: { ...headers, "content-type": "text/html; charset=utf-8" } });
}

/** A JSON response. */
export function jsonResponse(body: unknown, { status = 200, headers = {} }: ResponseOptions = {}): Response {
  return Response.json(body, { status, headers });
}

/** A 303 back to a page: the answer to a plain (non-htmx) form post. */
export function seeOther(location: string, headers: Record<string, string> = {}): Response {
  return new Response(null, { status: 303, headers: { ...headers, location } });
}

/**
 * The response for a refused request: JSON for the API and for clients that ask for JSON, plain
 * text for event streams, an htmx fragment for htmx, and a whole page otherwise.
 */
export function errorResponse(req: Request, error: HttpError, user: Principal | null): Response {
  const init = { status: error.status, headers: error.headers };
  const path = new URL(req.url).pathname;
  const accept = req.headers.get("accept") ?? "";
  if (path.startsWith("/api/") || path === "/healthz" || (accept.includes("application/json") && !accept.includes("text/html"))) {
    return jsonResponse({ error: error.message, status: error.status }, init);
  }
  if (accept.includes("text/event-stream") && !isHtmx(req)) {
    return new Response(`${error.message}\n`, { ...init, headers: { ...error.headers, "content-type": "text/plain; charset=utf-8" } });
  }
  if (isHtmx(req)) return htmlResponse(errorFragment(error.status, error.message, error.status === 401), init);
  return htmlResponse(errorPage(error.status, error.message, user), init);
}

/** Logs an unexpected failure and answers 500 without details. */
export function internalError(req: Request, error: unknown): Response {
  console.error(JSON.stringify({ level: "error", msg: "unhandled error", method: req.method, path: new URL(req.url).pathname, error: String(error instanceof Error ? error.stack : error) }));
  return errorResponse(req, new HttpError(500, "Something went wrong on the server; it has been logged."), null);
}
