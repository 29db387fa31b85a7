/**
 * What brings a page up to date: the latest notifications on its channels, each as the user
 * has it (read or not), and the user's unread count. The home page's first paint and the
 * `snapshot` event a stream starts with come from here, so they are the same markup.
 */
import { EVERYONE, groupChannel, userChannel, type Channel } from "./channel.ts";
import type { AppContext } from "./context.ts";
import type { User } from "./session.ts";
import { html, raw, type Html } from "../views/html.ts";
import { asRead, unreadBadge } from "../views/notification.ts";

/** The SSE event name of notifications, and of what the inbox keeps. */
export const NOTIFICATION = "notification";

/** The channels whose notifications are the user's own: their inbox and its unread count. */
export function personalChannels(user: User): Channel[] {
  return [EVERYONE, userChannel(user.id), ...user.groups.map(groupChannel)];
}

/** The user's unread notifications. */
export function unreadCount(ctx: AppContext, user: User): Promise<number> {
  return ctx.hub.log.unreadCount(user.id, personalChannels(user), NOTIFICATION);
}

/** The list items for `channels` (up to event id `upTo`), newest first, as `user` has them. */
export async function inboxItems(ctx: AppContext, user: User | null, channels: readonly Channel[], upTo?: number): Promise<Html> {
  const events = await ctx.hub.log.latest(channels, NOTIFICATION, ctx.config.inboxSize, upTo);
  const read = user ? await ctx.hub.log.readIds(user.id, events.map((e) => e.id)) : new Set<number>();
  // Stored fragments are markup herald rendered, or that an API token holder vouched for.
  return raw(events.map((event) => (read.has(event.id) ? asRead(event.data).value : event.data)).join("\n"));
}

/** The `snapshot` event's data as of event `upTo`: the list replaced out of band, and the unread count. */
export async function snapshotData(ctx: AppContext, user: User | null, channels: readonly Channel[], upTo: number): Promise<string> {
  const items = await inboxItems(ctx, user, channels, upTo);
  const badge = user ? unreadBadge(await unreadCount(ctx, user), true) : "";
  return html`<ul id="notifications" hx-swap-oob="innerHTML">${items}</ul>${badge}`.value;
}
