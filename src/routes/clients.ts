/**
 * `GET /api/clients`: who is connected, for admins (session in `admins`) and API tokens. JSON:
 * totals, per user and per topic, the average connection age, events sent, the last event time,
 * dropped streams, and one row per open stream. `?user=` and `?topic=` filter the rows and totals.
 * Figures are this process's; with Redis, `cluster` sums every live process.
 */
import { parseTopic, topicChannel, userChannel, USER_ID } from "../channel.ts";
import { currentUser, type AppContext } from "../context.ts";
import { HttpError } from "../errors.ts";
import { ADMINS } from "../policy.ts";
import { jsonResponse } from "../respond.ts";
import { authenticate } from "./api.ts";

export async function clients(ctx: AppContext, req: Request): Promise<Response> {
  const user = currentUser(ctx, req);
  if (!user?.groups.includes(ADMINS)) {
    if (!req.headers.get("authorization")) {
      throw new HttpError(user ? 403 : 401, user ? "Only members of admins may see who is connected." : "Sign in as an admin, or send a publish token.");
    }
    authenticate(ctx, req);
  }
  const url = new URL(req.url);
  const userFilter = url.searchParams.get("user")?.toLowerCase() ?? null;
  if (userFilter !== null && !USER_ID.test(userFilter)) throw new HttpError(400, `"${userFilter}" is not a valid user.`);
  const topicText = url.searchParams.get("topic");
  const topicFilter = topicText === null ? null : topicChannel(parseTopic(topicText));

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
  return jsonResponse({
    clients: rows.length,
    users,
    topics,
    average_age_s: rows.length ? Math.round(ageSum / rows.length / 1000) : 0,
    events_sent: eventsSent,
    last_event_at: lastEventAt === null ? null : new Date(lastEventAt).toISOString(),
    dropped: { slow: stats.droppedSlow, stale: stats.droppedStale },
    streams: rows,
    ...(cluster !== undefined ? { cluster } : {}),
  });
}
