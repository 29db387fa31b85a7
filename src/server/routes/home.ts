/**
 * The home page, the send form's `POST /notify`, and `POST /notifications/read`.
 */
import { EVERYONE, parseTarget, parseTopicList, topicChannel, userChannel } from "../../core/channel.ts";
import { currentUser, mayRead, pageViewer, viewerOf, type AppContext, streamChannels } from "../context.ts";
import { HttpError } from "../errors.ts";
import { readBrowserForm } from "../form.ts";
import { parseNotificationFields, URGENT } from "../notification.ts";
import { principalOf } from "../policy.ts";
import { authorizeAll, checkPublishRate, publishAll, type Outgoing } from "../publish.ts";
import { htmlResponse, isHtmx, seeOther } from "../respond.ts";
import type { User } from "../session.ts";
import type { StoredEvent } from "../../core/eventlog/index.ts";
import { inboxItems, markAllRead, markRead as markOneRead, NOTIFICATION, unreadCount } from "../inbox.ts";
import { html } from "../../../views/html.ts";
import { homePage, sendForm } from "../../../views/home.ts";
import { asRead, notificationItem, unreadBadge, urgentBanner } from "../../../views/notification.ts";
import { sentStatus } from "../../../views/status.ts";

function mayBroadcast(ctx: AppContext, user: User | null): boolean {
  return user !== null && ctx.policy.allows(principalOf(user), "publish", EVERYONE);
}

function topicsOf(ctx: AppContext, url: string): string[] {
  return parseTopicList(new URL(url).searchParams.getAll("topic"), ctx.config.maxTopicsPerStream);
}

/**
 * The topics a home page at `url` follows: those in `?topic=` when it is there (for a signed-in
 * user, kept as their choice, with `save`), else the user's kept choice, as far as the policy
 * still lets them follow each; none for an anonymous visitor.
 */
async function followed(ctx: AppContext, user: User | null, url: string, save = false): Promise<string[]> {
  if (new URL(url).searchParams.has("topic")) {
    const topics = topicsOf(ctx, url);
    if (user && save) await ctx.followedTopics.set(user.id, topics);
    return topics;
  }
  if (!user) return [];
  const principal = principalOf(user);
  const kept = (await ctx.followedTopics.get(user.id)) ?? [];
  return kept.filter((topic) => ctx.policy.allows(principal, "subscribe", topicChannel(topic)));
}

/**
 * `GET /`: the sign-in form or the signed-in page, following the topics in `?topic=`, with the latest notifications.
 */
export async function home(ctx: AppContext, req: Request): Promise<Response> {
  const viewer = pageViewer(ctx, req);
  const topics = await followed(ctx, viewer.user, req.url, true);
  const live = viewer.user !== null || ctx.config.anonymous;
  const channels = live ? streamChannels(ctx, viewer.user, topics) : [];
  const headers: Record<string, string> = viewer.setCookie ? { "set-cookie": viewer.setCookie } : {};
  return htmlResponse(
    homePage({
      viewer,
      topics,
      items: await inboxItems(ctx, viewer.user, channels),
      unread: viewer.user ? await unreadCount(ctx, viewer.user) : null,
      mayBroadcast: mayBroadcast(ctx, viewer.user),
      live,
    }),
    { headers },
  );
}

/**
 * `POST /notify`: renders the notification once (with its id) and publishes it as event
 * `notification`. Answered once it is durable: htmx gets the status line (and a fresh form), a
 * plain post is sent back to the page.
 */
export async function notify(ctx: AppContext, req: Request): Promise<Response> {
  const user = currentUser(ctx, req);
  if (!user) throw new HttpError(401, "Sign in to send notifications.");
  const fields = await readBrowserForm(ctx, req, user);
  const channel = parseTarget(fields.target ?? "");
  const parsed = parseNotificationFields(fields);
  const sentAt = Date.now();
  const principal = principalOf(user);
  const notification = { ...parsed, channel, from: user.name, sentAt };
  const outgoing: Outgoing[] = [
    {
      targets: [channel],
      event: NOTIFICATION,
      data: (id) => notificationItem({ ...notification, id }).value,
      banner: parsed.priority === "urgent" ? (id) => urgentBanner({ ...notification, id }).value : undefined,
    },
  ];
  authorizeAll(ctx, principal, outgoing);
  checkPublishRate(ctx.rates.publishesPerUser, user.id);
  const { delivered } = (await publishAll(ctx, principal, outgoing))[0]!;
  if (isHtmx(req)) {
    const csrf = viewerOf(ctx, req).csrf;
    return htmlResponse(
      html`${sentStatus(channel, delivered)}${sendForm(csrf, mayBroadcast(ctx, user), { target: channel, level: parsed.level }, true)}`,
    );
  }
  return seeOther("/");
}

/** Marks one notification (`id`) or all of them (`all`) read; answers the new unread count. */
export async function markRead(ctx: AppContext, req: Request): Promise<Response> {
  const user = currentUser(ctx, req);
  if (!user) throw new HttpError(401, "Sign in to manage your notifications.");
  const fields = await readBrowserForm(ctx, req, user);
  let updated = html``;
  if (fields.all !== undefined) {
    await markAllRead(ctx, user);
    // The page's list, re-rendered as read: htmx says which page (and so which topics) it is.
    const page = req.headers.get("hx-current-url");
    if (isHtmx(req) && page)
      updated = html`<ul id="notifications" hx-swap-oob="innerHTML">${await inboxItems(ctx, user, await pageChannels(ctx, user, page))}</ul>`;
  } else {
    const text = fields.id ?? "";
    if (!/^\d{1,15}$/.test(text)) throw new HttpError(400, "Say which notification to mark read (id), or all.");
    const event = await readableNotification(ctx, user, text);
    await markOneRead(ctx, user, event.id);
    updated = asRead(event.data, true);
  }
  ctx.log.info("marked read", { user: user.id, id: fields.all !== undefined ? "all" : fields.id });
  if (!isHtmx(req)) return seeOther("/");
  return htmlResponse(html`${unreadBadge(await unreadCount(ctx, user))}${updated}`);
}

/**
 * The notification `text` (an id of digits) names, if `user` may read it. Someone else's is
 * answered exactly as one that does not exist: the same 404.
 */
async function readableNotification(ctx: AppContext, user: User, text: string): Promise<StoredEvent> {
  const event = await ctx.hub.log.get(Number(text));
  if (!event || event.event !== NOTIFICATION || !mayRead(ctx, user, event.channels)) {
    throw new HttpError(404, `There is no notification ${text}; it may be older than herald keeps.`);
  }
  return event;
}

async function pageChannels(ctx: AppContext, user: User, page: string) {
  try {
    return streamChannels(ctx, user, await followed(ctx, user, page));
  } catch {
    // A page URL with topics that no longer pass: the user's own channels are still right.
    return streamChannels(ctx, user, []);
  }
}

/**
 * `POST /notifications/dismiss` (`id`): the "Dismiss" button of an urgent banner. Empties the
 * banner (the answer is swapped into it); for a signed-in user it also marks the notification
 * read, with the same 404 as `/notifications/read` for one they may not read, and sends their
 * streams the new unread count. Anonymous visitors only empty the banner: they keep no marks.
 */
export async function dismiss(ctx: AppContext, req: Request): Promise<Response> {
  const user = currentUser(ctx, req);
  const fields = await readBrowserForm(ctx, req, user);
  const text = fields.id ?? "";
  if (!/^\d{1,15}$/.test(text)) throw new HttpError(400, "Say which notification to dismiss (id).");
  if (user) {
    const event = await readableNotification(ctx, user, text);
    await markOneRead(ctx, user, event.id);
    // Every tab of the user's empties its banner too (and a tab that joins a shared stream later
    // ends with it empty), and gets the new count.
    ctx.hub.signal(userChannel(user.id), { event: URGENT, data: "" });
    ctx.hub.signal(userChannel(user.id), {
      event: "unread",
      data: unreadBadge(await unreadCount(ctx, user), true).value,
    });
    ctx.log.info("marked read", { user: user.id, id: text, via: "banner" });
  }
  if (!isHtmx(req)) return seeOther("/");
  return htmlResponse(html``);
}
