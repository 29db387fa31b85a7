/**
 * `GET /api/clients`: who is connected, for admins (session in `admins`) and API tokens. JSON:
 * totals, per user and per topic, the average connection age, events sent, the last event time,
 * dropped streams, and one row per open stream. `?user=` and `?topic=` filter the rows and totals.
 * Figures are this process's; with Redis, `cluster` sums every live process.
 */
import { groupChannel, parseTopic, topicChannel, userChannel, USER_ID, type Channel } from "../../core/channel.ts";
import { currentUser, pageViewer, viewerOf, type AppContext } from "../context.ts";
import { HttpError } from "../errors.ts";
import { ADMINS } from "../policy.ts";
import type { ClusterCounts } from "../../core/presence.ts";
import { htmlResponse, jsonResponse } from "../respond.ts";
import { monitorFigures, monitorPage } from "../../../views/monitor.ts";
import { authenticate } from "./api.ts";

/** What `/api/clients` and the monitor show. */
export interface ClientFigures {
  clients: number;
  users: Record<string, number>;
  topics: Record<string, number>;
  average_age_s: number;
  events_sent: number;
  last_event_at: string | null;
  dropped: { slow: number; stale: number };
  streams: Array<{
    stream: number;
    user: string | null;
    channels: readonly string[];
    connected_s: number;
    events_sent: number;
    last_event_at: string | null;
    pending_bytes: number;
  }>;
  cluster?: ClusterCounts | null;
}

/** This process's streams (those on user `user` and topic `topic`, when given), summed up. */
export async function clientFigures(ctx: AppContext, filters: { user?: string | null; topic?: Channel | null } = {}): Promise<ClientFigures> {
  const userFilter = filters.user ?? null;
  const topicFilter = filters.topic ?? null;
  const now = Date.now();
  const rows = [];
  const users: Record<string, number> = {};
  const topics: Record<string, number> = {};
  let ageSum = 0;
  let eventsSent = 0;
  let lastEventAt: number | null = null;
  for (const s of ctx.hub.subscribers()) {
    if (userFilter !== null && !s.channels.includes(userChannel(userFilter))) continue;
    if (topicFilter !== null && !s.channels.includes(topicFilter)) continue;
    if (s.userId) users[s.userId] = (users[s.userId] ?? 0) + 1;
    for (const channel of s.channels) if (channel.startsWith("topic:")) topics[channel.slice(6)] = (topics[channel.slice(6)] ?? 0) + 1;
    ageSum += now - s.connectedAt;
    eventsSent += s.eventsSent;
    if (s.lastEventAt !== null && (lastEventAt === null || s.lastEventAt > lastEventAt)) lastEventAt = s.lastEventAt;
    rows.push({
      stream: s.serial,
      user: s.userId,
      channels: s.channels,
      connected_s: Math.round((now - s.connectedAt) / 1000),
      events_sent: s.eventsSent,
      last_event_at: s.lastEventAt === null ? null : new Date(s.lastEventAt).toISOString(),
      pending_bytes: s.pendingBytes,
    });
  }
  const stats = ctx.hub.stats();
  const cluster = ctx.presence ? await ctx.presence.totals().catch(() => null) : undefined;
  return {
    clients: rows.length,
    users,
    topics,
    average_age_s: rows.length ? Math.round(ageSum / rows.length / 1000) : 0,
    events_sent: eventsSent,
    last_event_at: lastEventAt === null ? null : new Date(lastEventAt).toISOString(),
    dropped: { slow: stats.droppedSlow, stale: stats.droppedStale },
    streams: rows,
    ...(cluster !== undefined ? { cluster } : {}),
  };
}

/** Throws 401/403 unless the request comes from an admin's session or carries a publish token. */
export function checkAdmin(ctx: AppContext, req: Request): void {
  const user = currentUser(ctx, req);
  if (user?.groups.includes(ADMINS)) return;
  if (!req.headers.get("authorization")) {
    throw new HttpError(user ? 403 : 401, user ? "Only members of admins may see who is connected." : "Sign in as an admin, or send a publish token.");
  }
  authenticate(ctx, req);
}

/** `GET /monitor`: the page, for admins signed in. */
export async function monitor(ctx: AppContext, req: Request): Promise<Response> {
  const viewer = pageViewer(ctx, req);
  if (!viewer.user) throw new HttpError(401, "Sign in as an admin to see the monitor.");
  if (!viewer.user.groups.includes(ADMINS)) throw new HttpError(403, "Only members of admins may see the monitor.");
  return htmlResponse(monitorPage(viewer, await clientFigures(ctx)), { headers: viewer.setCookie ? { "set-cookie": viewer.setCookie } : {} });
}

/** Every `intervalMs`, while an admin has a stream open, sends the admins the monitor's figures (not logged). */
export function startMonitorFeed(ctx: AppContext, intervalMs = 2_000): () => void {
  const admins = groupChannel(ADMINS);
  const timer = setInterval(async () => {
    if (ctx.hub.subscriberCount(admins) === 0) return;
    try {
      const figures = await clientFigures(ctx);
      ctx.hub.signal(admins, { event: "monitor", data: monitorFigures(figures).value });
    } catch (error) {
      // Redis away: the figures come with a later tick; a rejection here would end the process.
      ctx.log.warn("monitor figures not sent", { error: String(error) });
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

export async function clients(ctx: AppContext, req: Request): Promise<Response> {
  checkAdmin(ctx, req);
  const url = new URL(req.url);
  const user = url.searchParams.get("user")?.toLowerCase() ?? null;
  if (user !== null && !USER_ID.test(user)) throw new HttpError(400, `"${user}" is not a valid user.`);
  const topicText = url.searchParams.get("topic");
  const topic = topicText === null ? null : topicChannel(parseTopic(topicText));
  return jsonResponse(await clientFigures(ctx, { user, topic }));
}
