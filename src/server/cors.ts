/**
 * Cross-origin embedding: pages on the origins in `HERALD_CORS_ORIGINS` may open herald's streams
 * and fetch its embed fragments. htmx-ext-sse opens EventSource `withCredentials`, so the answer
 * names the exact origin and allows credentials; any other origin gets no CORS headers, and the
 * browser keeps the response from it.
 */
import type { AppContext } from "./context.ts";
import { madeWithCors } from "./respond.ts";

// htmx reads these from every answer; on another origin the browser hides them (and logs an
// error for each) unless they are exposed.
const HTMX_RESPONSE_HEADERS = [
  "HX-Trigger",
  "HX-Trigger-After-Swap",
  "HX-Trigger-After-Settle",
  "HX-Location",
  "HX-Redirect",
  "HX-Refresh",
  "HX-Push",
  "HX-Push-Url",
  "HX-Replace-Url",
  "HX-Retarget",
  "HX-Reswap",
  "HX-Reselect",
].join(", ");

/** The CORS headers for this request, or none when its origin is not allowed. */
export function corsHeaders(ctx: AppContext, req: Request): Record<string, string> {
  const origin = req.headers.get("origin");
  if (!origin || !ctx.config.corsOrigins.includes(origin)) return {};
  return {
    "access-control-allow-origin": origin,
    "access-control-allow-credentials": "true",
    "access-control-expose-headers": HTMX_RESPONSE_HEADERS,
    vary: "Origin",
  };
}

/**
 * Adds the CORS headers to a response for an allowed origin, and `Vary: Origin` to every one:
 * the headers depend on the origin, so a cache must not hand one origin's answer to another.
 */
export function withCors(ctx: AppContext, req: Request, response: Response): Response {
  if (madeWithCors(response)) return response;
  for (const [name, value] of Object.entries(corsHeaders(ctx, req))) response.headers.set(name, value);
  const vary = response.headers.get("vary");
  if (!vary?.split(",").some((name) => name.trim().toLowerCase() === "origin"))
    response.headers.append("vary", "Origin");
  return response;
}

/** `OPTIONS`: the preflight htmx's cross-origin requests need (they carry `HX-*` headers). */
export function preflight(ctx: AppContext, req: Request): Response {
  const headers = corsHeaders(ctx, req);
  if (!headers["access-control-allow-origin"]) return new Response(null, { status: 204, headers: { vary: "Origin" } });
  const asked = req.headers.get("access-control-request-headers") ?? "";
  // Only htmx's own headers and the Last-Event-ID a stream may send.
  const allowed = asked
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h.startsWith("hx-") || h === "last-event-id" || h === "cache-control");
  return new Response(null, {
    status: 204,
    headers: {
      "access-control-allow-origin": headers["access-control-allow-origin"],
      "access-control-allow-credentials": "true",
      vary: "Origin",
      "access-control-allow-methods": "GET",
      "access-control-allow-headers": allowed.join(", "),
      "access-control-max-age": "600",
    },
  });
}
