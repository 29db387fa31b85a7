/**
 * What brings a page up to date: the latest notifications on its channels, each as the user
 * has it (read or not), and the user's unread count. The home page's first paint and the
 * `snapshot` event a stream starts with come from here, so they are the same markup.
 */
import type { Channel } from "../core/channel.ts";
import { personalChannels, type AppContext } from "./context.ts";
import type { User } from "./session.ts";
import { html, raw, type Html } from "../../views/html.ts";
import { asRead, unreadBadge } from "../../views/notification.ts";

/** The SSE event name of notifications, and of what the inbox keeps. */
export const NOTIFICATION = "notification";

/** The user's unread notifications, on the channels of their inbox (`personalChannels`). */
export function unreadCount(ctx: AppContext, user: User): Promise<number> {
  return ctx.hub.log.unreadCount(user.id, personalChannels(ctx, user), NOTIFICATION);
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
    ? await ctx.hub.log.readIds(
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
