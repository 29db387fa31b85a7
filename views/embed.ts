import { html, type Html } from "./html.ts";
import type { PageSpec } from "../src/server/pages.ts";

/** The embedded feed: the list itself connects, so notifications go straight in, as its hx-swap says. */
export const EMBED_PAGE: PageSpec = { name: "embed", topics: [], regions: { notification: "main" } };
import type { HtmxVersion } from "../src/server/htmx.ts";

export interface EmbedProps {
  topic: string;
  /** Absolute stream URL, so the fragment works on another origin. */
  streamUrl: string;
  /** The latest notifications of the topic (from `inboxItems`). */
  items: Html;
  /** The htmx of the page that includes it. */
  htmx: HtmxVersion;
}

/**
 * A live feed of one topic for another page to include: the stream, and the list notifications
 * are swapped into. For htmx 2 (with htmx-ext-sse) the wrapper connects and the list takes
 * `notification` events; for htmx 4 (with hx-sse) the list itself connects, sending the page's
 * cookies (`credentials: include`), and its stream sends notifications unnamed.
 */
export function embedFragment({ topic, streamUrl, items, htmx }: EmbedProps): Html {
  if (htmx === 4) {
    return html`<div class="herald-embed" data-topic="${topic}">
<ul class="herald-feed" hx-sse:connect="${streamUrl}" hx-sse:close="close" hx-swap="afterbegin" hx-config="${JSON.stringify({ credentials: "include" })}">${items}</ul>
</div>`;
  }
  return html`<div class="herald-embed" data-topic="${topic}" hx-ext="sse" sse-connect="${streamUrl}">
<ul class="herald-feed" sse-swap="notification" hx-swap="afterbegin">${items}</ul>
</div>`;
}
