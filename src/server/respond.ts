/**
 * Turning results and errors into responses, in one place, and the security headers every
 * response carries.
 */
import type { Viewer } from "./context.ts";
import { HttpError } from "./errors.ts";
import type { Logger } from "./logger.ts";
import type { Html } from "../../views/html.ts";
import { errorFragment, errorPage } from "../../views/status.ts";

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

/** A JSON response, made with the security headers (`secure` then has nothing to add). */
export function jsonResponse(body: unknown, { status = 200, headers }: ResponseOptions = {}): Response {
  return madeWithHeaders(
    new Response(JSON.stringify(body), { status, headers: headers ? { ...JSON_HEADERS, ...headers } : jsonHeaders }),
  );
}

/** Responses made with headers that `secure` (1) and `withCors` (2) would otherwise add. */
const madeWith = new WeakMap<Response, number>();

/**
 * Notes that `response` was made with the security headers (`SECURITY_HEADERS` in its init) and,
 * with `cors`, with `corsHeaders` and `Vary: Origin`, so that `secure` and `withCors` need not
 * read its headers: reading them makes Bun keep a `Headers` object for the response, which for a
 * stream lasts as long as the stream.
 */
export function madeWithHeaders(response: Response, { cors = false }: { cors?: boolean } = {}): Response {
  madeWith.set(response, cors ? 3 : 1);
  return response;
}

/** Whether `response` was made with the CORS headers (see `madeWithHeaders`). */
export function madeWithCors(response: Response): boolean {
  return ((madeWith.get(response) ?? 0) & 2) !== 0;
}

/** A 303 back to a page: the answer to a plain (non-htmx) form post. */
export function seeOther(location: string, headers: Record<string, string> = {}): Response {
  return new Response(null, { status: 303, headers: { ...headers, location } });
}

/** The request's path, also for an address that does not parse (the error path must not throw). */
export function pathOf(req: Request): string {
  try {
    return new URL(req.url).pathname;
  } catch {
    return req.url.startsWith("/") ? req.url.split("?")[0]! : "/";
  }
}

/** Whether the asker wants JSON: the API, and clients that ask for JSON rather than HTML. */
function wantsJson(req: Request, path: string): boolean {
  const accept = req.headers.get("accept") ?? "";
  return (
    path.startsWith("/api/") ||
    path === "/healthz" ||
    (accept.includes("application/json") && !accept.includes("text/html"))
  );
}

/**
 * The response for a refused request: JSON for the API and for clients that ask for JSON; for
 * event streams a cheap `text/event-stream` body whose `retry:` asks the browser to wait; an htmx
 * fragment for htmx; and a whole page otherwise.
 */
export function errorResponse(req: Request, error: HttpError, viewer: () => Viewer, retryMs: number): Response {
  const init = { status: error.status, headers: error.headers };
  const path = pathOf(req);
  if (wantsJson(req, path)) return jsonResponse({ error: error.message, status: error.status }, init);
  if (path === "/sse") {
    // EventSource ignores the body of a non-200 answer, but other clients and logs read it; the
    // Retry-After header says the same for proxies and scripts.
    const retry = Number(error.headers["retry-after"] ?? 0) * 1000 || retryMs;
    const message = error.message.replace(/[\r\n]+/g, " ");
    // htmx 4 reads this body and retries whatever the status, unless told to stop: a refusal that
    // will not change (401, 403, 400) ends with a `close` event, which its pages close on.
    const final = error.status < 429 ? `event: close\ndata: ${message}\n\n` : "";
    return new Response(`retry: ${retry}\n: ${message}\n\n${final}`, {
      ...init,
      headers: { ...error.headers, "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" },
    });
  }
  if (isHtmx(req)) return htmlResponse(errorFragment(error.status, error.message, error.status === 401), init);
  const who = viewer();
  const headers = who.setCookie ? { ...error.headers, "set-cookie": who.setCookie } : error.headers;
  return htmlResponse(errorPage(error.status, error.message, who), { status: error.status, headers });
}

/** Logs an unexpected failure and answers 500 without details. */
export function internalError(req: Request, error: unknown, log: Logger, viewer: () => Viewer): Response {
  log.error("unhandled error", {
    method: req.method,
    path: pathOf(req),
    error: String(error instanceof Error ? error.stack : error),
  });
  return errorResponse(req, new HttpError(500, "Something went wrong on the server; it has been logged."), viewer, 0);
}

/**
 * Headers for every response. The CSP allows only herald's own scripts, styles and connections;
 * htmx runs under it because its config turns off injected styles and eval.
 */
export const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
};

/** `Strict-Transport-Security` for answers herald sends over its own TLS: a year, this host only. */
export const HSTS = "max-age=31536000";

/**
 * Whether an answer to `req` gets HSTS when herald serves TLS: not for loopback names, because
 * HSTS holds for a host on every port, and would turn every other `http://localhost` server the
 * browser visits into https for a year.
 */
export function wantsHsts(req: Request): boolean {
  const host = URL.canParse(req.url) ? new URL(req.url).hostname : "";
  return !(host === "localhost" || host.endsWith(".localhost") || host === "[::1]" || /^127\./.test(host));
}

/** `SECURITY_HEADERS` as pairs, made once rather than for every response. */
const SECURITY_ENTRIES = Object.entries(SECURITY_HEADERS);

/** A JSON answer's headers: the security headers and its content type. */
const JSON_HEADERS: Record<string, string> = { ...SECURITY_HEADERS, "content-type": "application/json;charset=utf-8" };
/**
 * The same as one `Headers`, for every answer without headers of its own: a response copies it,
 * while a record of headers is turned into one afresh for each response.
 */
const jsonHeaders = new Headers(JSON_HEADERS);

/** Adds the security headers to a response (unless a route already set its own), and HSTS when `hsts`. */
export function secure(response: Response, hsts = false): Response {
  if (!hsts && madeWith.has(response)) return response;
  for (const [name, value] of SECURITY_ENTRIES) {
    if (!response.headers.has(name)) response.headers.set(name, value);
  }
  if (hsts && !response.headers.has("strict-transport-security"))
    response.headers.set("strict-transport-security", HSTS);
  return response;
}
