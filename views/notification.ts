import { html, raw, type Html } from "./html.ts";
import type { Notification, Priority } from "../src/server/notification.ts";

/**
 * The last `time` rendered: a feed's events mostly share their millisecond, and a Date costs more than the rest of the
 * markup.
 */
let lastTime: { ms: number; markup: Html } = { ms: Number.NaN, markup: raw("") };

/**
 * `12:03:04 UTC`, with the full timestamp in the `datetime` attribute and the title (digits and
 * `-:.TZ` only: nothing to escape).
 */
function time(ms: number): Html {
  if (ms === lastTime.ms) return lastTime.markup;
  const iso = new Date(ms).toISOString();
  lastTime = { ms, markup: raw(`<time datetime="${iso}" title="${iso}">${iso.slice(11, 19)} UTC</time>`) };
  return lastTime.markup;
}

/**
 * The button is `hidden` unless the list it is in says it works there (`inboxList`): anonymous
 * visitors cannot mark anything, and in an embedded feed its request would go to the embedding
 * site. The published fragment is the same for every stream, so the list decides, not the item.
 *
 * The button's `hx-vals`, `{"id":"<id>"}` escaped for the attribute; `id` is a whole number, so nothing else needs
 * escaping.
 */
function markReadButton(id: number): Html {
  return raw(
    `<button type="button" class="mark-read" hx-post="/notifications/read" hx-vals="{&quot;id&quot;:&quot;${Math.trunc(id)}&quot;}" hx-target="#unread-count" hx-swap="outerHTML" hidden>Mark read</button>`,
  );
}

/**
 * One notification as a list item, as it is published: unread, with a "Mark read" button that
 * works through htmx (it carries no CSRF field: htmx sends the page's token as a header). The
 * same markup is the SSE payload, the replayed event and, through `asRead` where the user has
 * read it, the page's first paint and a snapshot. One line: every line of an SSE payload costs a
 * `data:` prefix, for each event.
 */
export function notificationItem(n: Notification & { id: number }): Html {
  return html`<li id="n-${n.id}" class="notification level-${n.level}${priorityClass(n.priority ?? "normal")} unread" data-channel="${n.channel}"><p class="meta"><span class="level">${n.level}</span>${priorityLabel(n.priority ?? "normal")} <span class="channel">${n.channel}</span> ${n.from ? html`from <strong class="from">${n.from}</strong>` : ""} ${time(n.sentAt)} ${markReadButton(n.id)}</p>${n.title ? html`<p class="title">${n.title}</p>` : ""}<p class="message">${n.message}</p>${actionLink(n.url ?? null)}</li>`;
}

/** ` priority-high` and the like; nothing for `normal`, the most common, to keep the markup as it was. */
function priorityClass(priority: Priority): string {
  return priority === "normal" ? "" : ` priority-${priority}`;
}

/** A visible label for priorities above normal: colour alone would not tell a screen reader. */
function priorityLabel(priority: Priority): Html {
  return priority === "high" || priority === "urgent" ? html` <span class="priority">${priority}</span>` : NOTHING;
}

/** Markup for "none", made once: every notification renders several optional parts. */
const NOTHING = raw("");

/** The notification's action link, checked by `parseActionUrl` and escaped here; another site's opens without a referrer. */
function actionLink(url: string | null): Html {
  return url === null ? NOTHING : html`<p class="action">${linkTo(url)}</p>`;
}

function linkTo(url: string): Html {
  const external = !url.startsWith("/");
  return html`<a href="${url}"${external ? html` rel="noopener noreferrer"` : ""}>Open</a>`;
}

/**
 * The banner an urgent notification shows on every page of its recipients (event `urgent`,
 * placed in `#urgent-banner`). It names the notification it stands for (`data-for`), which
 * "Dismiss" marks read.
 */
export function urgentBanner(n: Notification & { id: number }): Html {
  const id = Math.trunc(n.id);
  return html`<div class="urgent-notice" data-for="${id}"><p><strong class="priority">urgent</strong> ${n.title ? html`<span class="title">${n.title}</span> ` : ""}<span class="message">${n.message}</span>${n.url ? html` ${linkTo(n.url)}` : ""}</p>${raw(`<button type="button" class="dismiss" hx-post="/notifications/dismiss" hx-vals="{&quot;id&quot;:&quot;${id}&quot;}" hx-target="#urgent-banner" hx-swap="innerHTML">Dismiss</button>`)}</div>`;
}

/** The id of the notification an urgent banner stands for (see `urgentBanner`), or `null`. */
export function bannerFor(banner: string): number | null {
  const match = /^<div class="urgent-notice" data-for="(\d+)">/.exec(banner);
  return match ? Number(match[1]) : null;
}

const UNREAD_CLASS = / unread"/;
const BUTTON = / ?<button type="button" class="mark-read" [^>]*>Mark read<\/button>/;

/**
 * A published item as the user sees it once read: the `unread` class and the button removed,
 * and, with `oob`, marked to replace the item on the page out of band. Safe on any fragment:
 * user text inside is escaped, so it cannot contain the markup matched here.
 */
export function asRead(fragment: string, oob = false): Html {
  const read = fragment.replace(UNREAD_CLASS, ' read"').replace(BUTTON, "");
  // The stored fragment is markup herald rendered (or an API token holder vouched for).
  return raw(oob ? read.replace(/^<li /, '<li hx-swap-oob="true" ') : read);
}

/**
 * A page's list of notifications, `#notifications`. `marksRead`: the viewer is signed in and the
 * page has the unread count, so the items' "Mark read" buttons work and are shown.
 */
export function inboxList(items: Html, marksRead: boolean, attrs: Html): Html {
  return html`<ul id="notifications"${marksRead ? html` class="marks-read"` : ""}${attrs}>${items}</ul>`;
}

/** The unread count badge; `oob` to update it out of band from another event. */
export function unreadBadge(count: number, oob = false): Html {
  // The inbox counts up to 1,000 (`UNREAD_COUNTED`): past that, the number is a floor.
  return html`<span id="unread-count" class="unread-count"${oob ? html` hx-swap-oob="true"` : ""}>${count >= 1000 ? "999+" : count}</span>`;
}
