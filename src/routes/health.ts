/**
 * `GET /healthz`: a liveness answer with the hub's headline figures.
 */
import type { AppContext } from "../context.ts";
import { jsonResponse } from "../respond.ts";

/** JSON `{status, clients, uptime_s, channels}`. */
export function health(ctx: AppContext): Response {
  const stats = ctx.hub.stats();
  return jsonResponse({
    status: "ok",
    clients: stats.clients,
    uptime_s: Math.floor((Date.now() - ctx.startedAt) / 1000),
    channels: stats.channels,
  });
}
