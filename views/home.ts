import { html, type Html } from "./html.ts";
import { csrfField, layout, pageLink } from "./layout.ts";
import { OWN_REGIONS, pageSink, regionAttrs, streamAttrs } from "./page.ts";
import type { PageSpec } from "../src/server/pages.ts";
import { inboxList, unreadBadge } from "./notification.ts";
import { LEVELS, MAX_MESSAGE, MAX_TITLE, MAX_URL, PRIORITIES, type Level } from "../src/server/notification.ts";

/** The home page's inbox, as its stream sees it. */
export const INBOX_PAGE: PageSpec = {
  name: "inbox",
  topics: [],
  regions: { ...OWN_REGIONS, unread: "oob", notification: "afterbegin:#notifications" },
};
import type { Viewer } from "../src/server/context.ts";

export interface HomeProps {
  viewer: Viewer;
  /** Topics this page follows, besides the user's own channel and `everyone`. */
  topics: readonly string[];
  /** The latest notifications, newest first, as list items (from `inboxItems`). */
  items: Html;
  /** The user's unread count, or `null` when anonymous. */
  unread: number | null;
  /** Whether the viewer may send to `everyone` (the send form offers it only then). */
  mayBroadcast: boolean;
  /** Whether this viewer may open a stream (anonymous visitors may not when `HERALD_ANONYMOUS=off`). */
  live: boolean;
}

/** The `sse-connect` URL for a page following `topics`. */
export function streamUrl(topics: readonly string[]): string {
  return topics.length ? `/sse?topic=${topics.map(encodeURIComponent).join(",")}` : "/sse";
}

function signInForm(viewer: Viewer): Html {
  const { csrf } = viewer;
  return html`<section class="card" id="sign-in">
<h2>Sign in</h2>
<form method="post" action="${pageLink(viewer, "/login")}">
  ${csrfField(csrf)}
  <label>Name <input name="name" required maxlength="32" pattern="[A-Za-z0-9_\\-]{1,32}" autocomplete="username" placeholder="alice"></label>
  <button type="submit">Sign in</button>
</form>
<p class="hint">No password: herald's demo identity is the name you type. Your notifications go to <code>user:&lt;name&gt;</code>.</p>
</section>`;
}

/**
 * The send form. After an htmx send it is swapped in again with the message cleared. `everyone`
 * is offered (and the default target) only to a sender who may use it.
 */
export function sendForm(
  csrf: string,
  mayBroadcast: boolean,
  values: { target?: string; level?: Level } = {},
  oob = false,
): Html {
  const level = values.level ?? "info";
  return html`<form id="send-form" method="post" action="/notify" hx-post="/notify" hx-target="#send-status"${oob ? html` hx-swap-oob="true"` : ""}>
  ${csrfField(csrf)}
  <label>To <input name="target" required list="targets" value="${values.target ?? (mayBroadcast ? "everyone" : "")}" placeholder="${mayBroadcast ? "user:bob, topic:orders or everyone" : "user:bob or topic:orders"}"></label>
  <datalist id="targets">${mayBroadcast ? html`<option value="everyone"></option>` : ""}<option value="topic:orders"></option><option value="topic:market"></option></datalist>
  <label>Title <input name="title" maxlength="${MAX_TITLE}" placeholder="optional"></label>
  <label>Message <textarea name="message" required maxlength="${MAX_MESSAGE}" rows="3"></textarea></label>
  <label>Level <select name="level">${LEVELS.map((l) => html`<option${l === level ? html` selected` : ""}>${l}</option>`)}</select></label>
  <label>Priority <select name="priority">${PRIORITIES.map((p) => html`<option${p === "normal" ? html` selected` : ""}>${p}</option>`)}</select></label>
  <label>Link <input name="url" maxlength="${MAX_URL}" placeholder="optional: /orders or https://…"></label>
  <button type="submit">Send</button>
</form>`;
}

function sendSection(csrf: string, mayBroadcast: boolean): Html {
  return html`<section class="card" id="send">
<h2>Send a notification</h2>
${sendForm(csrf, mayBroadcast)}
<p id="send-status" role="status" aria-live="polite"></p>
</section>`;
}

function topicsSection(viewer: Viewer, topics: readonly string[]): Html {
  return html`<section class="card" id="topics">
<h2>Topics</h2>
<form method="get" action="/">${viewer.htmxAsked ? html`<input type="hidden" name="htmx" value="${viewer.htmx}">` : ""}
  <label>Follow <input name="topic" value="${topics.join(", ")}" placeholder="orders, market"></label>
  <button type="submit">Follow</button>
</form>
<p class="hint">${topics.length ? html`Following ${topics.map((t, i) => html`${i ? ", " : ""}<code>topic:${t}</code>`)}.` : "Following no topics."} Every page also gets <code>everyone</code>.</p>
</section>`;
}

/** The home page: sign-in when anonymous; send form, topics and the live notification list. */
export function homePage({ viewer, topics, items, unread, mayBroadcast, live }: HomeProps): Html {
  const { user, csrf } = viewer;
  return layout({
    title: user ? `${user.name}'s notifications` : "Live notifications",
    viewer,
    body: html`${user ? sendSection(csrf, mayBroadcast) : viewer.demoLogin ? signInForm(viewer) : ""}
${topicsSection(viewer, topics)}
<section class="card" id="inbox"${live ? streamAttrs(viewer.htmx, streamUrl(topics)) : ""}>
<h2>Notifications${user ? html` for <code>user:${user.id}</code>${user.groups.map((g) => html` <code>group:${g}</code>`)}` : ""}</h2>
${
  unread !== null
    ? html`<form class="inbox-bar" method="post" action="/notifications/read" hx-post="/notifications/read" hx-target="#unread-count" hx-swap="outerHTML">
  ${csrfField(csrf)}<input type="hidden" name="all" value="1">
  <span>${unreadBadge(unread)} unread</span> <button type="submit">Mark all read</button>
</form>`
    : ""
}
${pageSink(viewer.htmx, INBOX_PAGE)}
${inboxList(items, unread !== null, regionAttrs(viewer.htmx, INBOX_PAGE, "notifications"))}
<p class="empty">${live ? "Nothing yet. New notifications appear here as they are sent." : "Sign in to see live notifications."}</p>
</section>`,
  });
}
