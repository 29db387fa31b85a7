import { html, type Html } from "./html.ts";
import type { Notification } from "../src/notification.ts";

/** `12:03:04` in UTC, with the full timestamp in the `datetime` attribute. */
function time(ms: number): Html {
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}">${iso.slice(11, 19)}</time>`;
}

/**
 * One notification as a list item. The same markup is the page's first paint and the SSE payload
 * that htmx swaps into `#notifications`.
 */
export function notificationItem(n: Notification): Html {
  return html`<li class="notification level-${n.level}" data-channel="${n.channel}">
<p class="meta"><span class="level">${n.level}</span> <span class="channel">${n.channel}</span> ${n.from ? html`from <strong class="from">${n.from}</strong>` : ""} ${time(n.sentAt)}</p>${n.title ? html`
<p class="title">${n.title}</p>` : ""}
<p class="message">${n.message}</p>
</li>`;
}
