/** Who is connected, summed up for `/api/clients` and the monitor page. */
import { userChannel, type Channel } from "../core/channel.ts";
import type { ClusterCounts } from "../core/presence.ts";
import type { AppContext } from "./context.ts";

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
export async function clientFigures(
  ctx: AppContext,
  filters: { user?: string | null; topic?: Channel | null } = {},
): Promise<ClientFigures> {
  const userFilter = filters.user ?? null;
  const topicFilter = filters.topic ?? null;
  const now = Date.now();
  const rows = [];
  // Null-prototype maps: a user or topic named "constructor" is a key like any other.
  const users: Record<string, number> = Object.create(null);
  const topics: Record<string, number> = Object.create(null);
  let ageSum = 0;
  let eventsSent = 0;
  let lastEventAt: number | null = null;
  for (const s of ctx.hub.subscribers()) {
    if (userFilter !== null && !s.channels.includes(userChannel(userFilter))) continue;
    if (topicFilter !== null && !s.channels.includes(topicFilter)) continue;
    if (s.userId) users[s.userId] = (users[s.userId] ?? 0) + 1;
    for (const channel of s.channels)
      if (channel.startsWith("topic:")) topics[channel.slice(6)] = (topics[channel.slice(6)] ?? 0) + 1;
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
