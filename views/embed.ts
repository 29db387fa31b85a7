import { html, type Html } from "./html.ts";

export interface EmbedProps {
  topic: string;
  /** Absolute `sse-connect` URL, so the fragment works on another origin. */
  streamUrl: string;
  /** The latest notifications of the topic (from `inboxItems`). */
  items: Html;
}

/**
 * A live feed of one topic for another page to include: the stream, and the list htmx swaps
 * notifications into. Needs htmx 2 and htmx-ext-sse on the page.
 */
export function embedFragment({ topic, streamUrl, items }: EmbedProps): Html {
  return html`<div class="herald-embed" data-topic="${topic}" hx-ext="sse" sse-connect="${streamUrl}">
<ul class="herald-feed" sse-swap="notification" hx-swap="afterbegin">${items}</ul>
</div>`;
}
