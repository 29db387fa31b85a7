import { html, type Html } from "./html.ts";
import type { HtmxVersion, Placement } from "../src/server/htmx.ts";
import type { PageSpec } from "../src/server/pages.ts";

/**
 * What every live page's stream may send it besides its own events: its snapshot, the
 * history-cut notice, and the banner of an urgent notification.
 */
export const OWN_REGIONS = {
  snapshot: "oob",
  "history-cut": "oob",
  urgent: "innerHTML:#urgent-banner",
} as const satisfies Record<string, Placement>;

/**
 * The attributes of the element that opens a page's stream. htmx 2: the sse extension and
 * `sse-connect`. htmx 4: `hx-sse:connect`, `hx-swap="none"` (every message it is sent for the
 * page is out of band, see `src/server/htmx.ts`), and `hx-sse:close` for a refusal that is final.
 */
export function streamAttrs(htmx: HtmxVersion, url: string): Html {
  return htmx === 4
    ? html` hx-sse:connect="${url}" hx-sse:close="close" hx-swap="none"`
    : html` hx-ext="sse" sse-connect="${url}"`;
}

/**
 * What makes the element with id `id` take the page's events placed there (htmx 2's `sse-swap`,
 * swapped as the placement says), from the page's declaration. htmx 4 needs nothing here: its
 * stream sends such events out of band into this element's id.
 */
export function regionAttrs(htmx: HtmxVersion, page: PageSpec, id: string): Html {
  if (htmx === 4) return html``;
  const placed = Object.entries(page.regions).filter(([, placement]) => placement.endsWith(`:#${id}`));
  if (placed.length === 0) throw new Error(`herald: page ${page.name} places no event in #${id}`);
  const swap = placed[0]![1].slice(0, placed[0]![1].indexOf(":"));
  return html` sse-swap="${placed.map(([event]) => event).join(",")}" hx-swap="${swap}"`;
}

/**
 * What every live page has besides its regions: the banner an urgent notification fills
 * (`role="alert"`, so a screen reader says it at once), the notice line `history-cut` fills, and for
 * htmx 2 a hidden element that applies the page's out-of-band events (`snapshot`, `history-cut`
 * and the page's own, from its declaration). `hx-swap="none"`: these events carry only
 * out-of-band content, and the main swap would otherwise blank the element.
 */
export function pageSink(htmx: HtmxVersion, page: PageSpec): Html {
  const oob = Object.entries(page.regions)
    .filter(([, placement]) => placement === ("oob" satisfies Placement))
    .map(([event]) => event);
  return html`<div id="urgent-banner" class="urgent-banner" role="alert"${regionAttrs(htmx, page, "urgent-banner")}></div>
<p id="stream-notice" class="notice"></p>${
    htmx === 2
      ? html`
<div class="sink" sse-swap="${oob.join(",")}" hx-swap="none"></div>`
      : ""
  }`;
}
