/**
 * `GET /api/presence?topic=<name>`: who is connected to a topic, for whoever may follow it. The
 * members are listed only for topics in `HERALD_PRESENCE_TOPICS` (a chat room's, say); for others,
 * the count alone. With Redis the figures are every live process's, as of their last write
 * (`HERALD_PRESENCE_MS`).
 */
import { parseTopic, topicChannel } from "../../core/channel.ts";
import { currentUser, type AppContext } from "../context.ts";
import { HttpError } from "../errors.ts";
import { principalOf } from "../policy.ts";
import { jsonResponse } from "../respond.ts";

export async function presence(ctx: AppContext, req: Request): Promise<Response> {
  const text = new URL(req.url).searchParams.get("topic");
  if (text === null) throw new HttpError(400, "Say which topic: /api/presence?topic=<name>.");
  const topic = parseTopic(text);
  const channel = topicChannel(topic);
  ctx.policy.check(principalOf(currentUser(ctx, req)), "subscribe", channel);
  const listed = ctx.policy.isPresenceTopic(topic);
  if (ctx.presence) {
    const totals = await ctx.presence.totals();
    return jsonResponse({
      topic,
      streams: totals.topics[topic] ?? 0,
      ...(listed ? { users: totals.members[topic] ?? [] } : {}),
      processes: totals.processes,
    });
  }
  const here = ctx.hub.usersOn(channel);
  return jsonResponse({
    topic,
    streams: ctx.hub.subscriberCount(channel),
    ...(listed ? { users: here.users.sort() } : {}),
  });
}
