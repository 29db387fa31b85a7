/**
 * `GET /healthz`: a liveness answer with the hub's headline figures.
 */
import type { AppContext } from "../context.ts";
import { jsonResponse } from "../respond.ts";

/**
 * JSON `{status, clients, uptime_s, channels, pid}` for this process (one of several with
 * `HERALD_WORKERS`), and with `REDIS_URL` `cluster: {processes, clients, users}` summed over
 * every live process, the same whichever answers.
 */
export async function health(ctx: AppContext): Promise<Response> {
  const stats = ctx.hub.stats();
  const body: Record<string, unknown> = {
    status: "ok",
    clients: stats.clients,
    uptime_s: Math.floor((Date.now() - ctx.startedAt) / 1000),
    channels: stats.channels,
    pid: process.pid,
  };
  if (ctx.presence) {
    const totals = await ctx.presence.totals().catch(() => null);
    body.cluster = totals
      ? { processes: totals.processes, clients: totals.clients, users: Object.keys(totals.users).length }
      : null;
  }
  return jsonResponse(body);
}
