/**
 * `GET /healthz`: a liveness answer with the hub's headline figures.
 */
import type { AppContext } from "../context.ts";
import { jsonResponse } from "../respond.ts";

/** JSON `{status, clients, uptime_s, channels, pid}`, for this process (one of several with `HERALD_WORKERS`). */
export function health(ctx: AppContext): Response {
  const stats = ctx.hub.stats();
  return jsonResponse({
    status: "ok",
    clients: stats.clients,
    uptime_s: Math.floor((Date.now() - ctx.startedAt) / 1000),
    channels: stats.channels,
    pid: process.pid,
  });
}
