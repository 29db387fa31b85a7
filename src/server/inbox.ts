/**
 * The inbox: a user's notifications on their own channels (`personalChannels`), which of them
 * they have read (the read marks, kept apart from the event log), their unread count, and the
 * list as a page shows it. The home page's first paint and the `snapshot` event a stream starts
 * with come from here, so they are the same markup. Whoever publishes a notification, the
 * users it reaches get their new count (`startUnreadUpdates`): no publisher has to send it.
 */
import { channelKind, channelName, userChannel, type Channel } from "../core/channel.ts";
import { personalChannels, userById, type AppContext } from "./context.ts";
import type { User } from "./session.ts";
import { html, raw, type Html } from "../../views/html.ts";
import { asRead, unreadBadge } from "../../views/notification.ts";

/** The SSE event name of notifications, and of what the inbox keeps. */
export const NOTIFICATION = "notification";

/** The most unread notifications counted one by one; more show as "999+". */
export const UNREAD_COUNTED = 1_000;

/** The user's unread notifications, on the channels of their inbox (`personalChannels`). */
export async function unreadCount(ctx: AppContext, user: User): Promise<number> {
  const upTo = await ctx.readMarks.readUpTo(user.id);
  // Counted up to a bound: past it the badge says "999+", and a user who never marks anything
  // read does not cost a walk of the whole log on every notification.
  const ids = await ctx.hub.log.ids(personalChannels(ctx, user), NOTIFICATION, { above: upTo, limit: UNREAD_COUNTED });
  if (ids.length === 0) return 0;
  return ids.length - (await ctx.readMarks.readIds(user.id, ids)).size;
}

/**
 * Unread counts known for users with a stream open here, by context: a broadcast adds one to
 * each rather than counting again, so a notification to everyone costs no query per connected
 * user. A count is counted afresh when it is older than `COUNT_KEPT_MS` (a mark read on another
 * process is seen within that), after a mark read here, and for a notification to the user
 * alone (one query, for one user).
 */
const knownCounts = new WeakMap<AppContext, Map<string, { count: number; at: number }>>();
const COUNT_KEPT_MS = 30_000;

function countsOf(ctx: AppContext): Map<string, { count: number; at: number }> {
  let counts = knownCounts.get(ctx);
  if (!counts) knownCounts.set(ctx, (counts = new Map()));
  return counts;
}

/** Marks one notification read for `user`. */
export async function markRead(ctx: AppContext, user: User, id: number): Promise<void> {
  await ctx.readMarks.markRead(user.id, id);
  countsOf(ctx).delete(user.id);
}

/** Marks every notification so far read for `user`. */
export async function markAllRead(ctx: AppContext, user: User): Promise<void> {
  await ctx.readMarks.markAllRead(user.id, await ctx.hub.log.lastId());
  countsOf(ctx).delete(user.id);
}

/**
 * Sends each user a notification reaches their new unread count (event `unread`, not logged: it
 * is per user, and a snapshot carries it after any reconnect): to the user of a user channel, the
 * members of a group, and for `everyone` every user with a stream open here. Sent once per user
 * per turn of the event loop, however many notifications reached them in it, and only to users
 * with a stream open. A count known from before (see `knownCounts`) is added to; others are
 * counted, once. Returns a function that stops it.
 */
export function startUnreadUpdates(ctx: AppContext): () => void {
  const counts = countsOf(ctx);
  /** Per user: how many notifications reached them since their last count, and whether one was theirs alone. */
  const due = new Map<string, { added: number; direct: boolean }>();
  /** Users being counted now; a notification that reaches one meanwhile makes the count unsure. */
  const counting = new Set<string>();
  const unsure = new Set<string>();
  let timer: ReturnType<typeof setImmediate> | null = null;
  let sending = false;
  let stopped = false;
  const reach = (user: string, direct: boolean) => {
    const entry = due.get(user);
    if (entry) {
      entry.added++;
      entry.direct ||= direct;
    } else due.set(user, { added: 1, direct });
    if (counting.has(user)) unsure.add(user);
  };
  const update = async (id: string, { added, direct }: { added: number; direct: boolean }) => {
    const channel = userChannel(id);
    if (ctx.hub.subscriberCount(channel) === 0) {
      counts.delete(id);
      return;
    }
    const known = counts.get(id);
    const now = Date.now();
    let count: number;
    if (known && !direct && now - known.at < COUNT_KEPT_MS) {
      count = Math.min(known.count + added, UNREAD_COUNTED);
      counts.set(id, { count, at: known.at });
    } else {
      counting.add(id);
      try {
        count = await unreadCount(ctx, userById(ctx, id));
      } finally {
        counting.delete(id);
      }
      // A notification that came meanwhile may or may not be in the count: it is counted again.
      if (unsure.delete(id)) counts.delete(id);
      else counts.set(id, { count, at: now });
    }
    ctx.hub.signal(channel, { event: "unread", data: unreadBadge(count, true).value });
  };
  const send = async () => {
    timer = null;
    sending = true;
    try {
      // One loop at a time: users that fall due meanwhile are taken by it, in later passes.
      while (due.size > 0 && !stopped) {
        const users = [...due];
        due.clear();
        for (const [i, [id, reached]] of users.entries()) {
          // A broadcast reaches every connected user: let requests and writes in between them.
          if (i % 32 === 31) await new Promise((resolve) => setImmediate(resolve));
          if (stopped) return;
          try {
            await update(id, reached);
          } catch (error) {
            counts.delete(id);
            ctx.log.warn("unread count not sent", { user: id, error: String(error) });
          }
        }
      }
    } finally {
      sending = false;
    }
  };
  const stopListening = ctx.hub.onSent(
    (channels, event) => {
      if (event !== NOTIFICATION) return;
      // Most notifications of a busy feed are on topics, which reach no inbox: nothing to make.
      if (channels.length === 1 && channelKind(channels[0]!) === "topic") return;
      // A notification on several channels reaches a user on more than one of them once.
      const reached = new Set<string>();
      let direct: string | null = null;
      for (const channel of channels) {
        const kind = channelKind(channel);
        if (kind === "user") {
          reached.add(channelName(channel));
          if (channels.length === 1) direct = channelName(channel);
        } else if (kind === "group") {
          const name = channelName(channel);
          if (Object.hasOwn(ctx.config.groups, name))
            for (const member of ctx.config.groups[name]!) reached.add(member);
        } else if (kind === "everyone") {
          for (const user of ctx.hub.connectedUsers()) reached.add(user);
          // Whoever is not connected now misses this one: their known count would be short.
          for (const user of counts.keys()) if (!reached.has(user)) counts.delete(user);
        }
      }
      for (const user of reached) reach(user, user === direct);
      if (due.size > 0 && !sending && !timer) timer = setImmediate(send);
    },
    (error) => ctx.log.error("event listener failed", { error: String(error) }),
  );
  return () => {
    stopped = true;
    if (timer) clearImmediate(timer);
    stopListening();
    counts.clear();
  };
}

/**
 * Anonymous lists as of an event id, by context: the same for every stream on the same channels
 * that starts at the same point, so a burst of streams (a deploy's reconnects, an embed on a busy
 * page) reads the log once rather than once each. Bounded; the oldest entry goes first.
 */
const anonymousLists = new WeakMap<AppContext, Map<string, Promise<Html>>>();
const ANONYMOUS_LISTS_KEPT = 64;

/** The list items for `channels` (up to event id `upTo`), newest first, as `user` has them. */
export function inboxItems(
  ctx: AppContext,
  user: User | null,
  channels: readonly Channel[],
  upTo?: number,
): Promise<Html> {
  if (user !== null || upTo === undefined) return readInboxItems(ctx, user, channels, upTo);
  let lists = anonymousLists.get(ctx);
  if (!lists) anonymousLists.set(ctx, (lists = new Map()));
  const key = `${upTo} ${channels.join(" ")}`;
  let list = lists.get(key);
  if (!list) {
    list = readInboxItems(ctx, null, channels, upTo);
    lists.set(key, list);
    if (lists.size > ANONYMOUS_LISTS_KEPT) lists.delete(lists.keys().next().value!);
    // A failed read is not kept: the next stream tries again.
    list.catch(() => lists.get(key) === list && lists.delete(key));
  }
  return list;
}

async function readInboxItems(
  ctx: AppContext,
  user: User | null,
  channels: readonly Channel[],
  upTo?: number,
): Promise<Html> {
  const events = await ctx.hub.log.latest(channels, NOTIFICATION, ctx.config.inboxSize, upTo);
  const read = user
    ? await ctx.readMarks.readIds(
        user.id,
        events.map((e) => e.id),
      )
    : new Set<number>();
  // Stored fragments are markup herald rendered, or that an API token holder vouched for.
  return raw(events.map((event) => (read.has(event.id) ? asRead(event.data).value : event.data)).join("\n"));
}

/** The `snapshot` event's data as of event `upTo`: the list replaced out of band, and the unread count. */
export async function snapshotData(
  ctx: AppContext,
  user: User | null,
  channels: readonly Channel[],
  upTo: number,
): Promise<string> {
  const items = await inboxItems(ctx, user, channels, upTo);
  const badge = user ? unreadBadge(await unreadCount(ctx, user), true) : "";
  return html`<ul id="notifications" hx-swap-oob="innerHTML">${items}</ul>${badge}`.value;
}
