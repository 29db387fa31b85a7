/**
 * `GET /sse`: one event stream on `everyone`, the topics asked for, and the signed-in user's
 * own channel.
 */
import type { Server } from "bun";
import { EVERYONE, parseTopicList, topicChannel, userChannel, type Channel } from "../channel.ts";
import { currentUser, type AppContext } from "../context.ts";
import { encodeRetry } from "../sse.ts";
import { subscriberStream } from "../subscriber.ts";

const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  // nginx buffers proxied responses unless told not to, which would hold events back.
  "x-accel-buffering": "no",
};

/** Opens a stream. Topics come from `?topic=a&topic=b` or `?topic=a,b`; the user channel only from the session. */
export function openStream(ctx: AppContext, req: Request, server: Server<unknown>): Response {
  const url = new URL(req.url);
  const topics = parseTopicList(url.searchParams.getAll("topic"), ctx.config.maxTopicsPerStream);
  const user = currentUser(ctx, req);
  const channels: Channel[] = [EVERYONE, ...topics.map(topicChannel)];
  if (user) channels.push(userChannel(user.id));
  // Bun closes connections idle for 10 s by default; a stream is idle between events by nature.
  server.timeout(req, 0);
  const body = subscriberStream({ channels, userId: user?.id ?? null }, encodeRetry(ctx.config.retryMs), req.signal, (subscriber) =>
    ctx.hub.subscribe(subscriber),
  );
  return new Response(body, { headers: SSE_HEADERS });
}
