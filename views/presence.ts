import { html, type Html } from "./html.ts";

/** A member of a presence topic, as its member list shows them (the `join` event's data). */
export function memberItem(user: string): Html {
  return html`<li id="member-${user}" class="member">${user}</li>`;
}

/** What removes a member from the list when they leave (the `leave` event's data): an out-of-band delete. */
export function memberLeft(user: string): Html {
  return html`<li id="member-${user}" hx-swap-oob="delete"></li>`;
}
