import { html, type Html } from "./html.ts";
import type { HtmxVersion } from "../src/server/htmx.ts";

/**
 * The attributes of the element that opens a page's stream. htmx 2: the sse extension and
 * `sse-connect`. htmx 4: `hx-sse:connect`, `hx-swap="none"` (every message it is sent for the
 * page is out of band, see `src/htmx.ts`), and `hx-sse:close` for a refusal that is final.
 */
export function streamAttrs(htmx: HtmxVersion, url: string): Html {
  return htmx === 4 ? html` hx-sse:connect="${url}" hx-sse:close="close" hx-swap="none"` : html` hx-ext="sse" sse-connect="${url}"`;
}

/**
 * What makes an element take named events (htmx 2's `sse-swap`, swapped as `swap` says). htmx 4
 * needs nothing here: its stream sends such events out of band into this element's id.
 */
export function swapAttrs(htmx: HtmxVersion, events: string, swap: string): Html {
  return htmx === 4 ? html`` : html` sse-swap="${events}" hx-swap="${swap}"`;
}

/**
 * What every live page has besides its regions: the notice line `history-cut` fills, and for
 * htmx 2 a hidden element that applies the out-of-band events (`snapshot`, `history-cut` and the
 * page's own, given in `events`). `hx-swap="none"`: these events carry only out-of-band content,
 * and the main swap would otherwise blank the element.
 */
export function pageSink(htmx: HtmxVersion, events = ""): Html {
  return html`<p id="stream-notice" class="notice"></p>${htmx === 2 ? html`
<div class="sink" sse-swap="snapshot,history-cut${events ? `,${events}` : ""}" hx-swap="none"></div>` : ""}`;
}
