/**
 * `GET /sse`: one event stream on `everyone`, the topics asked for, and the signed-in user's
 * own channel and groups. Refusals are cheap and come before any stream is set up.
 *
 * A stream that arrives with `Last-Event-ID` (or `?lastEventId=`) the log still covers gets every
 * later event of its channels, then live events, with no gap and no duplicate. Any other stream
 * (a page load, htmx-ext-sse's own reconnect, which sends no id, or an id the log no longer
 * covers) starts with a `snapshot` that brings the page up to date, and, when its id was too old
 * or unknown, a `history-cut` notice.
 */
import type { Server } from "bun";
import { channelKind, channelName, parseTopicList, userChannel, type Channel } from "../../core/channel.ts";
import { memberItem, memberLeft } from "../../../views/presence.ts";
import { clientAddress, currentUser, personalChannels, type AppContext, streamChannels } from "../context.ts";
import { URGENT } from "../notification.ts";
import type { User } from "../session.ts";
import { bannerFor } from "../../../views/notification.ts";
import { HttpError } from "../errors.ts";
import { formatEventId } from "../../core/eventlog/index.ts";
import { isHtmx4Stream } from "../htmx.ts";
import { encodeRetry, type SseMessage } from "../../core/sse.ts";
import type { Subscriber } from "../../core/subscriber.ts";
import { historyCutNotice } from "../../../views/status.ts";
import { madeWithHeaders, SECURITY_HEADERS } from "../respond.ts";
import { corsHeaders } from "../cors.ts";

/** A stream's headers, the security headers among them (see `madeWithHeaders`). */
const SSE_HEADERS = {
  ...SECURITY_HEADERS,
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
    throw new HttpError(429, `Too many new streams from your address; try again in ${wait} s.`, {
      "retry-after": String(wait),
    });
  }
  if (ctx.hub.clientCount >= limits.maxClients) {
    throw new HttpError(503, "The server holds as many streams as it may; try again shortly.", { "retry-after": "30" });
  }
  if (userId && ctx.hub.subscriberCount(userChannel(userId)) >= limits.maxStreamsPerUser) {
    throw new HttpError(
      429,
      `You already have ${limits.maxStreamsPerUser} streams open, the most one user may; close a tab and try again.`,
      { "retry-after": "30" },
    );
  }
}

/** The id to resume after: `Last-Event-ID` (what the browser sends) or `?lastEventId=`; `null` when none. */
function resumeId(req: Request, url: URL): string | null {
  const value = req.headers.get("last-event-id") ?? url.searchParams.get("lastEventId");
  return value === null || value.trim() === "" ? null : value.trim();
}

/**
 * Opens a stream. Topics come from `?topic=a&topic=b` or `?topic=a,b` and from the page it backs
 * (`?page=`, see `src/server/pages.ts`); the user and group channels only from the verified session.
 */
export function openStream(ctx: AppContext, req: Request, server: Server<unknown>): Response {
  const user = currentUser(ctx, req);
  if (!user && !ctx.config.anonymous) throw new HttpError(401, "Sign in to open a stream.");
  const url = new URL(req.url);
  const page = ctx.pages.parse(url.searchParams.get("page"), user);
  const asked = parseTopicList(url.searchParams.getAll("topic"), ctx.config.maxTopicsPerStream);
  const topics = [...new Set([...page.topics, ...asked])];
  const channels = streamChannels(ctx, user, topics);

  const address = clientAddress(ctx, req, server);
  checkLimits(ctx, address, user?.id ?? null);
  if (!ctx.hub.ready)
    throw new HttpError(503, "herald cannot reach its event store (Redis) yet; try again shortly.", {
      "retry-after": "5",
    });

  // Bun closes connections idle for 10 s by default; a stream is idle between events by nature.
  server.timeout(req, 0);
  const userId = user?.id ?? null;
  const from = resumeId(req, url);
  const retry = encodeRetry(ctx.config.retryMs);
  const init = {
    channels,
    userId,
    maxBuffer: ctx.config.maxBuffer,
    framing: isHtmx4Stream(req) ? ctx.pages.framing(page) : null,
    first: retry,
    // Sign-out ends the session's open streams too, not only its later requests.
    tag: user?.session?.sid,
  };
  const body = ctx.hub.open(init, null, {
    resumeFrom: from,
    mayReplay: user ? undefined : (afterId, subscriber) => withinAnonymousReplay(ctx, subscriber, afterId),
    fresh: async (position, cut, subscriber) => {
      const data = await page.snapshot(user, subscriber.channels, position.id);
      // htmx 4 takes `retry:` only from a frame with data, not from the stream's first bytes.
      const snapshot = {
        event: "snapshot",
        id: formatEventId(position.epoch, position.id),
        retry: subscriber.framing ? ctx.config.retryMs : undefined,
        data,
      };
      const messages: SseMessage[] = [snapshot];
      if (cut) messages.push({ event: "history-cut", data: historyCutNotice().value });
      const banner = user ? await unreadBanner(ctx, user, position.id) : null;
      if (banner) messages.push({ event: URGENT, data: banner });
      return messages;
    },
    opened: (subscriber) => {
      announcePresence(ctx, subscriber);
      ctx.log.info("stream opened", {
        stream: subscriber.serial,
        user: userId,
        ip: address,
        page: page.name,
        topics: topics.join(","),
        resumed: from,
        clients: ctx.hub.clientCount,
      });
      subscriber.onClose(logClosed(ctx));
    },
    replayed: (subscriber, count) => {
      if (count > 0) ctx.log.debug("replayed", { stream: subscriber.serial, after: from, events: count });
    },
    failed: (subscriber, error) =>
      ctx.log.error("stream start failed", { stream: subscriber.serial, error: String(error) }),
  });
  // Its CORS headers too: whether or not its origin may read it, the answer varies by origin.
  const headers = { ...SSE_HEADERS, ...corsHeaders(ctx, req), vary: "Origin" };
  return madeWithHeaders(new Response(body, { headers }), { cors: true });
}

/**
 * On topics whose members are public (`HERALD_PRESENCE_TOPICS`): a `join` event when a signed-in
 * user's first stream on the topic opens here, and a `leave` when their last one here closes.
 * Each is an `<li>` of the member list (`#members-<topic>`), added, or deleted out of band.
 */
function announcePresence(ctx: AppContext, subscriber: Subscriber): void {
  const user = subscriber.userId;
  if (user === null) return;
  const topics = subscriber.channels.filter(
    (c) => channelKind(c) === "topic" && ctx.policy.isPresenceTopic(channelName(c)),
  );
  const send = (channel: Channel, event: "join" | "leave") => {
    const data = event === "join" ? memberItem(user).value : memberLeft(user).value;
    ctx.hub
      .publish(channel, { event, data })
      .catch((error: unknown) => ctx.log.warn("presence not announced", { channel, event, error: String(error) }));
  };
  for (const channel of topics) {
    if (ctx.hub.usersStreams(channel, user) === 1) send(channel, "join");
  }
  if (topics.length === 0) return;
  subscriber.onClose(() => {
    for (const channel of topics) if (ctx.hub.usersStreams(channel, user) === 0) send(channel, "leave");
  });
}

/**
 * The banner of the newest urgent notification on the user's own channels (as of event `upTo`),
 * while they have not read it: a page opened after it was sent shows it too. Anonymous
 * visitors, who keep no read marks, see only those that arrive while their page is open.
 */
async function unreadBanner(ctx: AppContext, user: User, upTo: number): Promise<string | null> {
  const [latest] = await ctx.hub.log.latest(personalChannels(ctx, user), URGENT, 1, upTo);
  const id = latest ? bannerFor(latest.data) : null;
  if (id === null) return null;
  if (id <= (await ctx.readMarks.readUpTo(user.id))) return null;
  return (await ctx.readMarks.readIds(user.id, [id])).has(id) ? null : latest!.data;
}

/**
 * Whether an anonymous stream's missed events are few enough to replay: past
 * `HERALD_REPLAY_MAX_ANONYMOUS` it gets a snapshot instead, so that an id far back (`<epoch>-0`)
 * from anyone cannot make herald read and send the whole log for one request.
 */
async function withinAnonymousReplay(ctx: AppContext, subscriber: Subscriber, afterId: number): Promise<boolean> {
  const max = ctx.config.replayMaxAnonymous;
  const missed = await ctx.hub.log.backlog(afterId, subscriber.channels, max + 1);
  if (missed <= max) return true;
  ctx.log.info("replay refused", { stream: subscriber.serial, after: afterId, missed: `>${max}` });
  return false;
}

/** One listener per server rather than one per stream: it lives as long as each stream does. */
const closedLoggers = new WeakMap<AppContext, (subscriber: Subscriber) => void>();

function logClosed(ctx: AppContext): (subscriber: Subscriber) => void {
  let logger = closedLoggers.get(ctx);
  if (!logger) closedLoggers.set(ctx, (logger = makeClosedLogger(ctx)));
  return logger;
}

function makeClosedLogger(ctx: AppContext): (subscriber: Subscriber) => void {
  return (subscriber) =>
    ctx.log.info("stream closed", {
      stream: subscriber.serial,
      user: subscriber.userId,
      reason: subscriber.closeReason,
      seconds: Math.round((Date.now() - subscriber.connectedAt) / 1000),
      events: subscriber.eventsSent,
    });
}
