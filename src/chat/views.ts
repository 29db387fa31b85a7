/**
 * The chat room's markup: the page, and one fragment per region it swaps. The first paint, the
 * live events and the snapshot a stream starts with are made by the same functions, so they are
 * the same markup.
 */
import { html, type Html } from "../../views/html.ts";
import { csrfField, layout } from "../../views/layout.ts";
import { OWN_REGIONS, pageSink, regionAttrs, streamAttrs } from "../../views/page.ts";
import { memberItem } from "../../views/presence.ts";
import type { Viewer } from "../server/context.ts";
import type { PageSpec } from "../server/pages.ts";
import { MAX_MESSAGE_CHARS, type ChatMessage, type RoomView } from "./model.ts";

/** The SSE event of a message: logged on the room's topic, so replays and snapshots have it. */
export const CHAT_MESSAGE = "chat-message";
/** The members here now (not logged): sent whenever someone joins or leaves the room. */
export const CHAT_MEMBERS = "chat-members";
/** Who is typing (not logged), made for each reader without themselves. */
export const CHAT_TYPING = "chat-typing";
/** Who has seen the last message (not logged). */
export const CHAT_SEEN = "chat-seen";

/** The chat page: messages appended, and the member list, typing line and receipts replaced. */
export const CHAT_PAGE: PageSpec = {
  name: "chat",
  topics: [],
  regions: {
    ...OWN_REGIONS,
    [CHAT_MESSAGE]: "beforeend:#chat-messages",
    [CHAT_MEMBERS]: "oob",
    [CHAT_TYPING]: "oob",
    [CHAT_SEEN]: "oob",
  },
};

function clock(ms: number): Html {
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}">${iso.slice(11, 16)}</time>`;
}

/** One message, as the list shows it (the `chat-message` event's data). Its text is escaped like any value. */
export function messageItem(message: ChatMessage): Html {
  return html`<li id="chat-msg-${message.id}" class="chat-message" data-id="${message.id}" data-author="${message.author}">
<strong class="author">${message.author}</strong> ${clock(message.at)}
<p class="text">${message.text}</p>
</li>`;
}

/** The member list: who has a stream on the room now. `oob` replaces the one on the page. */
export function memberList(members: readonly string[], oob = false): Html {
  return html`<ul id="chat-members" class="members"${oob ? html` hx-swap-oob="true"` : ""}>${members.map(memberItem)}</ul>`;
}

function names(users: readonly string[]): string {
  if (users.length <= 1) return users.join("");
  return `${users.slice(0, -1).join(", ")} and ${users.at(-1)}`;
}

/** Who is typing, for one reader (never themselves); empty when nobody is. */
export function typingLine(typists: readonly string[], oob = false): Html {
  const text = typists.length === 0 ? "" : `${names(typists)} ${typists.length === 1 ? "is" : "are"} typing…`;
  return html`<p id="chat-typing" class="typing" aria-live="polite"${oob ? html` hx-swap-oob="true"` : ""}>${text}</p>`;
}

/** "Seen by bob" under the last message: the members who have seen it, its author aside. */
export function receiptsLine(seenBy: readonly string[], oob = false): Html {
  return html`<p id="chat-receipts" class="receipts"${oob ? html` hx-swap-oob="true"` : ""}>${seenBy.length ? `Seen by ${names(seenBy)}` : ""}</p>`;
}

/** The author of a logged message fragment (`messageItem` writes it in `data-author`). */
export function authorOf(fragment: string): string | null {
  return (
    /^<li id="chat-msg-\d+" class="chat-message" data-id="\d+" data-author="([a-z0-9_-]+)">/.exec(fragment)?.[1] ?? null
  );
}

/** The `snapshot` event's data: every region of the room, replaced out of band. */
export function chatSnapshot(view: RoomView): Html {
  return html`<ol id="chat-messages" hx-swap-oob="innerHTML">${view.messages}</ol>${memberList(view.members, true)}${typingLine(view.typing, true)}${receiptsLine(view.seenBy, true)}`;
}

/**
 * The message form. The text field also tells the room its writer is typing, half a second
 * after the last change, unless the form is being sent (a late "typing" would outlive the
 * message); `autofocus` keeps the caret in it when a post swaps in a fresh form.
 */
export function messageForm(room: string, csrf: string, oob = false): Html {
  return html`<form id="chat-form" class="chat-form" method="post" action="/chat/${room}" hx-post="/chat/${room}" hx-target="#chat-status"${oob ? html` hx-swap-oob="true"` : ""}>
${csrfField(csrf)}
<input name="text" maxlength="${MAX_MESSAGE_CHARS}" required autocomplete="off" aria-label="Message" placeholder="Write a message"${oob ? html` autofocus` : ""}
  hx-post="/chat/${room}/typing" hx-trigger="input changed delay:500ms" hx-swap="none" hx-sync="closest form:abort">
<button>Send</button>
</form>`;
}

/** `/chat/<room>`: the room's messages, who is here, who is typing and who has seen what, all live. */
export function chatPage(viewer: Viewer, room: string, streamUrl: string, view: RoomView): Html {
  const { user, csrf } = viewer;
  return layout({
    title: `#${room}`,
    viewer,
    body: html`<section class="card chat" id="chat-room" data-room="${room}"${streamAttrs(viewer.htmx, streamUrl)}>
<h1>#${room}</h1>
${pageSink(viewer.htmx, CHAT_PAGE)}
<div class="chat-body">
<div class="chat-log">
<ol id="chat-messages" class="chat-messages"${regionAttrs(viewer.htmx, CHAT_PAGE, "chat-messages")}>${view.messages}</ol>
${receiptsLine(view.seenBy)}
${typingLine(view.typing)}
</div>
<aside class="chat-members"><h2>Here now</h2>${memberList(view.members)}</aside>
</div>
</section>
<section class="card" id="chat-send">
${
  user
    ? html`${messageForm(room, csrf)}
<p id="chat-status" role="status" aria-live="polite"></p>
<form id="chat-seen" hidden method="post" action="/chat/${room}/seen" hx-post="/chat/${room}/seen" hx-swap="none">${csrfField(csrf)}<input type="hidden" name="upTo" value=""></form>
<script src="/assets/chat.js" defer></script>`
    : html`<p><a href="/">Sign in</a> to write in this room; you can read it without.</p>`
}
<form class="chat-go" method="get" action="/chat"><label>Another room <input name="room" required></label>${viewer.htmxAsked ? html`<input type="hidden" name="htmx" value="${viewer.htmx}">` : ""} <button>Go</button></form>
</section>`,
  });
}
