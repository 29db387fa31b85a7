import { html, type Html } from "./html.ts";

/**
 * What every live page has besides its regions: a hidden element that applies the out-of-band
 * events (`snapshot`, `history-cut` and the page's own, given in `events`), and the notice line
 * `history-cut` fills. `hx-swap="none"`: these events carry only out-of-band content, and the
 * main swap would otherwise blank the element.
 */
export function pageSink(events = ""): Html {
  return html`<p id="stream-notice" class="notice"></p>
<div class="sink" sse-swap="snapshot,history-cut${events ? `,${events}` : ""}" hx-swap="none"></div>`;
}
