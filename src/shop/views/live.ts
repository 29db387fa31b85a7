import { html, type Html } from "../../../views/html.ts";
import { layout } from "../../../views/layout.ts";
import { inboxList, unreadBadge } from "../../../views/notification.ts";
import { OWN_REGIONS, pageSink, regionAttrs, streamAttrs } from "../../../views/page.ts";
import type { PageSpec } from "../../server/pages.ts";
import { MARKET_TOPIC, METRICS_TOPIC, NOTIFICATIONS_TOPIC } from "../topics.ts";
import type { Viewer } from "../../server/context.ts";

/** The live page: prices, this server's figures and notifications, each swapped in place. */
export const LIVE_PAGE: PageSpec = {
  name: "live",
  topics: [MARKET_TOPIC, METRICS_TOPIC, NOTIFICATIONS_TOPIC],
  regions: {
    ...OWN_REGIONS,
    market: "innerHTML:#market",
    metrics: "innerHTML:#metrics",
    notification: "afterbegin:#notifications",
    unread: "oob",
  },
};
import type { Metrics, Quote } from "../model.ts";

function clock(ms: number): Html {
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}">${iso.slice(11, 19)}</time>`;
}

/** The `market` event's data: the price table, swapped into `#market`. */
export function marketTable(quotes: readonly Quote[], at: number): Html {
  return html`<table class="quotes">
<thead><tr><th>Symbol</th><th>Company</th><th>Price</th><th>Change</th></tr></thead>
<tbody>${quotes.map(
    (q) =>
      html`<tr data-symbol="${q.symbol}"><td><code>${q.symbol}</code></td><td>${q.name}</td><td class="price">${q.price.toFixed(2)}</td><td class="${q.change > 0 ? "up" : q.change < 0 ? "down" : "flat"}">${q.change > 0 ? "▲" : q.change < 0 ? "▼" : "•"} ${q.change.toFixed(2)}%</td></tr>`,
  )}</tbody>
</table>
<p class="hint">Prices as of ${clock(at)} UTC.</p>`;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** The `metrics` event's data: this process's figures, swapped into `#metrics`. */
export function metricsFigures(m: Metrics): Html {
  return html`<dl class="figures">
<div><dt>Memory (RSS)</dt><dd id="metrics-rss">${megabytes(m.rssBytes)}</dd></div>
<div><dt>JS heap</dt><dd>${megabytes(m.heapBytes)}</dd></div>
<div><dt>CPU</dt><dd>${m.cpuPercent}%</dd></div>
<div><dt>Open streams</dt><dd id="metrics-streams">${m.streams}</dd></div>
<div><dt>Events/s</dt><dd>${m.eventsPerS}</dd></div>
<div><dt>Deliveries/s</dt><dd>${m.deliveriesPerS}</dd></div>
</dl>
<p class="hint">Read at ${clock(m.at)} UTC, up ${m.uptimeS} s.</p>`;
}

export interface LivePageState {
  quotes: readonly Quote[];
  quotesAt: number;
  metrics: Metrics;
  /** The latest notifications on the page's channels (from `inboxItems`). */
  items: Html;
  /** The viewer's unread count, or `null` when anonymous. */
  unread: number | null;
  /** How often the feeds send, in milliseconds. */
  marketMs: number;
  metricsMs: number;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/** The live page's regions, out of band: its snapshot. */
export function liveSnapshot(s: LivePageState): Html {
  return html`<div id="market" hx-swap-oob="innerHTML">${marketTable(s.quotes, s.quotesAt)}</div>
<div id="metrics" hx-swap-oob="innerHTML">${metricsFigures(s.metrics)}</div>
<ul id="notifications" hx-swap-oob="innerHTML">${s.items}</ul>${s.unread === null ? "" : unreadBadge(s.unread, true)}`;
}

/** `/live`: market prices, this server's figures and notifications, each swapped in place as it comes. */
export function livePage(viewer: Viewer, streamUrl: string, s: LivePageState): Html {
  return layout({
    title: "Live",
    viewer,
    body: html`<div class="live"${streamAttrs(viewer.htmx, streamUrl)}>
${pageSink(viewer.htmx, LIVE_PAGE)}
<section class="card">
<h1>Market <small class="hint">topic <code>market</code>, every ${seconds(s.marketMs)} while anyone watches</small></h1>
<div id="market"${regionAttrs(viewer.htmx, LIVE_PAGE, "market")}>${marketTable(s.quotes, s.quotesAt)}</div>
</section>
<section class="card">
<h2>This server <small class="hint">topic <code>metrics</code>, every ${seconds(s.metricsMs)}</small></h2>
<div id="metrics"${regionAttrs(viewer.htmx, LIVE_PAGE, "metrics")}>${metricsFigures(s.metrics)}</div>
</section>
<section class="card">
<h2>Notifications <small class="hint">topic <code>notifications</code>, everyone${viewer.user ? " and yours" : ""}</small></h2>
${s.unread === null ? "" : html`<p class="inbox-bar">${unreadBadge(s.unread)} unread</p>`}
${inboxList(s.items, s.unread !== null, regionAttrs(viewer.htmx, LIVE_PAGE, "notifications"))}
<p class="empty">Nothing yet. Send one to <code>topic:notifications</code> from the <a href="/">home page</a>.</p>
</section>
</div>`,
  });
}
