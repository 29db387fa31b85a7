/**
 * `GET /sse`: one event stream on `everyone`, the topics asked for, and the signed-in user's
 * own channel and groups. Refusals are cheap and come before any stream is set up.
 */
import type { Server } from "bun";
import { EVERYONE, groupChannel, parseTopicList, topicChannel, userChannel, type Channel } from "../channel.ts";
import { clientAddress, currentUser, type AppContext } from "../context.ts";
import { HttpError } from "../errors.ts";
import { principalOf } from "../policy.ts";
import { encodeRetry } from "../sse.ts";
import { subscriberStream } from "../subscriber.ts";

const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  // nginx buffers proxied responses unless told not to, which would hold events back.
  "x-accel-buffering": "no",
};

/** Throws the right refusal when opening one more stream would pass a limit. */
function checkLimits(ctx: AppContext, address: string, userId: string | null): void {
  const { limits } = ctx.config;
  const wait = ctx.rates.streamsPerIp.take(address);
  if (wait > 0) {
    throw new HttpError(429, `Too many new streams from your address; try again in ${wait} s.`, { "retry-after": String(wait) });
  }
  if (ctx.hub.clientCount >= limits.maxClients) {
    throw new HttpError(503, "The server holds as many streams as it may; try again shortly.", { "retry-after": "30" });
  }
  if (userId && ctx.hub.subscriberCount(userChannel(userId)) >= limits.maxStreamsPerUser) {
    throw new HttpError(429, `You already have ${limits.maxStreamsPerUser} streams open, the most one user may; close a tab and try again.`, { "retry-after": "30" });
  }
}

/**
 * Opens a stream. Topics come from `?topic=a&topic=b` or `?topic=a,b`; the user and group
 * channels only from the verified session.
 */
export function openStream(ctx: AppContext, req: Request, server: Server<unknown>): Response {
  const user = currentUser(ctx, req);
  if (!user && !ctx.config.anonymous) throw new HttpError(401, "Sign in to open a stream.");
  const topics = parseTopicList(new URL(req.url).searchParams.getAll("topic"), ctx.config.maxTopicsPerStream);
  const principal = principalOf(user);
  const asked: Channel[] = [EVERYONE, ...topics.map(topicChannel)];
  for (const channel of asked) ctx.policy.check(principal, "subscribe", channel);
  const own: Channel[] = user ? [userChannel(user.id), ...user.groups.map(groupChannel)] : [];
  const channels = [...asked, ...own.filter((channel) => ctx.policy.allows(principal, "subscribe", channel))];

  const address = clientAddress(ctx, req, server);
  checkLimits(ctx, address, user?.id ?? null);

  // Bun closes connections idle for 10 s by default; a stream is idle between events by nature.
  server.timeout(req, 0);
  const userId = user?.id ?? null;
  const body = subscriberStream({ channels, userId }, encodeRetry(ctx.config.retryMs), req.signal, (subscriber) => {
    ctx.hub.subscribe(subscriber);
    ctx.log.info("stream opened", { stream: subscriber.id, user: userId, ip: address, topics: topics.join(","), clients: ctx.hub.clientCount });
    subscriber.onClose(() =>
      ctx.log.info("stream closed", {
        stream: subscriber.id,
        user: userId,
        seconds: Math.round((Date.now() - subscriber.connectedAt) / 1000),
        events: subscriber.eventsSent,
      }),
    );
  });
  return new Response(body, { headers: SSE_HEADERS });
}
