/**
 * The home page and the send form's `POST /notify`.
 */
import { parseTarget, parseTopicList } from "../channel.ts";
import { currentUser, viewerOf, type AppContext } from "../context.ts";
import { HttpError } from "../errors.ts";
import { readBrowserForm } from "../form.ts";
import { parseNotificationFields, type Notification } from "../notification.ts";
import { principalOf } from "../policy.ts";
import { authorizeAll, checkPublishRate, publishAll } from "../publish.ts";
import { htmlResponse, isHtmx, seeOther } from "../respond.ts";
import { html } from "../../views/html.ts";
import { homePage, sendForm } from "../../views/home.ts";
import { notificationItem } from "../../views/notification.ts";
import { sentStatus } from "../../views/status.ts";

/** `GET /`: the sign-in form or the signed-in page, following the topics in `?topic=`. */
export function home(ctx: AppContext, req: Request): Response {
  const topics = parseTopicList(new URL(req.url).searchParams.getAll("topic"), ctx.config.maxTopicsPerStream);
  const viewer = viewerOf(ctx, req);
  const live = viewer.user !== null || ctx.config.anonymous;
  const headers: Record<string, string> = viewer.setCookie ? { "set-cookie": viewer.setCookie } : {};
  return htmlResponse(homePage({ viewer, topics, notifications: [], live }), { headers });
}

/**
 * `POST /notify`: renders the notification once and publishes it as event `notification`.
 * htmx gets the status line (and a fresh form); a plain post is sent back to the page.
 */
export async function notify(ctx: AppContext, req: Request): Promise<Response> {
  const user = currentUser(ctx, req);
  if (!user) throw new HttpError(401, "Sign in to send notifications.");
  const fields = await readBrowserForm(ctx, req, user);
  const channel = parseTarget(fields.target ?? "");
  const notification: Notification = { ...parseNotificationFields(fields), channel, from: user.name, sentAt: Date.now() };
  const principal = principalOf(user);
  const outgoing = [{ targets: [channel], event: "notification", data: notificationItem(notification).value }];
  authorizeAll(ctx, principal, outgoing);
  checkPublishRate(ctx.rates.publishesPerUser, user.id);
  const { delivered } = publishAll(ctx, principal, outgoing)[0]!;
  if (isHtmx(req)) {
    const csrf = viewerOf(ctx, req).csrf;
    return htmlResponse(html`${sentStatus(channel, delivered)}${sendForm(csrf, { target: channel, level: notification.level }, true)}`);
  }
  return seeOther("/");
}
