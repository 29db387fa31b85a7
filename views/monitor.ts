import { html, type Html } from "./html.ts";
import { layout } from "./layout.ts";
import { OWN_REGIONS, pageSink, regionAttrs, streamAttrs } from "./page.ts";
import type { PageSpec } from "../src/server/pages.ts";
import type { Viewer } from "../src/server/context.ts";

/** The monitor page, as its stream sees it. */
export const MONITOR_PAGE: PageSpec = {
  name: "monitor",
  topics: [],
  regions: { ...OWN_REGIONS, monitor: "innerHTML:#monitor-figures" },
};
import type { ClientFigures } from "../src/server/monitor.ts";

function counts(title: string, entries: Record<string, number>, prefix: string): Html {
  const rows = Object.entries(entries).sort(([, a], [, b]) => b - a);
  return html`<h3>${title}</h3>
${rows.length ? html`<ul class="counts">${rows.map(([name, n]) => html`<li><code>${prefix}${name}</code> <strong>${n}</strong></li>`)}</ul>` : html`<p class="hint">None.</p>`}`;
}

/** The monitor's figures: the region the `monitor` event replaces. */
export function monitorFigures(f: ClientFigures): Html {
  return html`<dl class="figures">
<div><dt>Streams open</dt><dd id="monitor-clients">${f.clients}</dd></div>
<div><dt>Average connection age</dt><dd>${f.average_age_s} s</dd></div>
<div><dt>Events sent</dt><dd>${f.events_sent}</dd></div>
<div><dt>Last event</dt><dd>${f.last_event_at === null ? "none yet" : html`<time datetime="${f.last_event_at}" title="${f.last_event_at}">${f.last_event_at.slice(11, 19)} UTC</time>`}</dd></div>
<div><dt>Dropped (slow / stale)</dt><dd>${f.dropped.slow} / ${f.dropped.stale}</dd></div>
${f.cluster ? html`<div><dt>All processes</dt><dd>${f.cluster.clients} streams in ${f.cluster.processes} processes</dd></div>` : ""}
</dl>
${counts("Per user", f.users, "user:")}
${counts("Per topic", f.topics, "topic:")}`;
}

/** `/monitor`: the figures, kept current by `monitor` events on the admins' own stream. */
export function monitorPage(viewer: Viewer, figures: ClientFigures): Html {
  return layout({
    title: "Monitor",
    viewer,
    body: html`<section class="card" id="monitor"${streamAttrs(viewer.htmx, "/sse?page=monitor")}>
${pageSink(viewer.htmx, MONITOR_PAGE)}
<h1>Connections on this process</h1>
<div id="monitor-figures"${regionAttrs(viewer.htmx, MONITOR_PAGE, "monitor-figures")}>${monitorFigures(figures)}</div>
<p class="hint">Updated live every couple of seconds. As JSON: <a href="/api/clients">/api/clients</a>; for Prometheus: <a href="/metrics">/metrics</a>.</p>
</section>`,
  });
}
