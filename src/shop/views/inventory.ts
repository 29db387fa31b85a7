import { html, type Html } from "../../../views/html.ts";
import { csrfField, layout } from "../../../views/layout.ts";
import { OWN_REGIONS, pageSink, streamAttrs } from "../../../views/page.ts";
import type { PageSpec } from "../../server/pages.ts";
import { INVENTORY_TOPIC } from "../topics.ts";
import type { Viewer } from "../../server/context.ts";
import type { HtmxVersion } from "../../server/htmx.ts";

/** The inventory page: product rows and the alert list, replaced out of band. */
export const INVENTORY_PAGE: PageSpec = {
  name: "inventory",
  topics: [INVENTORY_TOPIC],
  regions: { ...OWN_REGIONS, product: "oob", "low-stock": "oob", "stock-ok": "oob" },
};
import { isLow, MAX_QUANTITY, type Product } from "../model.ts";

/**
 * One product's row, with its forms. Rendered for one page, `csrf` is that visitor's token (so
 * the forms post without JavaScript); published to every page, it is `null` and htmx sends each
 * page's own token as a header. `oob` marks it to replace the row where it stands.
 */
export function productRow(p: Product, csrf: string | null, oob = false): Html {
  const low = isLow(p);
  const action = `/inventory/${p.sku}`;
  const token = csrf === null ? "" : csrfField(csrf);
  return html`<tr id="product-${p.sku}" class="${low ? "low" : "ok"}"${oob ? html` hx-swap-oob="true"` : ""}>
<td><code>${p.sku}</code></td>
<td>${p.name}</td>
<td class="quantity">${p.quantity}</td>
<td class="status">${low ? html`<span class="badge low">Low</span>` : html`<span class="badge ok">OK</span>`}</td>
<td><form class="stock" method="post" action="${action}" hx-post="${action}" hx-target="#inventory-status">${token}
<input type="number" name="amount" value="1" min="0" max="${MAX_QUANTITY}" required aria-label="Amount for ${p.name}">
<button name="action" value="sell">Sell</button> <button name="action" value="restock">Restock</button> <button name="action" value="set">Set</button>
</form></td>
<td><form class="threshold" method="post" action="${action}" hx-post="${action}" hx-target="#inventory-status">${token}
<input type="hidden" name="action" value="threshold">
<input type="number" name="amount" value="${p.threshold}" min="0" max="${MAX_QUANTITY}" required aria-label="Threshold for ${p.name}">
<button>Save</button>
</form></td>
</tr>`;
}

/**
 * A product's row for an answer that also carries other content (the status line). A `<tr>`
 * outside a table is parsed as text by htmx 2 and htmx 4 alike, so it travels inside a
 * `<template>`, whose content may hold table rows. htmx 2 swaps out-of-band elements found in a
 * template; htmx 4 does not look inside one, but swaps an `hx` partial. (htmx 2 takes partials
 * too, but finds their target from the form that posted, which the stream's own copy of the row
 * may already have replaced.)
 */
export function productRowUpdate(p: Product, htmx: HtmxVersion): Html {
  return htmx === 4
    ? html`<template hx type="partial" hx-target="#product-${p.sku}" hx-swap="outerHTML">${productRow(p, null)}</template>`
    : html`<template>${productRow(p, null, true)}</template>`;
}

/** One product's alert. */
export function alertItem(p: Product): Html {
  return html`<li id="alert-${p.sku}" class="alert" data-sku="${p.sku}"><strong>Low stock:</strong> ${p.name} (<code>${p.sku}</code>) is at ${p.quantity}, below its threshold of ${p.threshold}.</li>`;
}

/**
 * The alerts of the products that are low. The `low-stock` and `stock-ok` events carry it whole
 * (`oob`), as of their change: applying one twice, or after a snapshot that already had it, leaves
 * the page right, which inserting or deleting single items would not.
 */
export function alertList(products: readonly Product[], oob = false): Html {
  return html`<ul id="alerts" class="alerts"${oob ? html` hx-swap-oob="true"` : ""}>${products.filter(isLow).map(alertItem)}</ul>`;
}

/** The rows and the alerts, out of band: what brings an inventory page up to date. */
export function inventorySnapshot(products: readonly Product[]): Html {
  return html`<tbody id="products" hx-swap-oob="innerHTML">${products.map((p) => productRow(p, null))}</tbody>
${alertList(products, true)}`;
}

/** The status line after a stock change. */
export function stockStatus(p: Product, what: string): Html {
  return html`<span class="ok">${what}: ${p.name} is at ${p.quantity}${isLow(p) ? html`, <strong>below its threshold of ${p.threshold}</strong>` : ""}.</span>`;
}

export interface InventoryProps {
  viewer: Viewer;
  products: readonly Product[];
  /** SKUs the viewer watches. */
  watched: ReadonlySet<string>;
  streamUrl: string;
}

/** The viewer's watch toggles: part of the page, and the answer to a toggle from htmx. */
export function watchList(csrf: string, products: readonly Product[], watched: ReadonlySet<string>): Html {
  return html`<ul id="watch-list" class="watch-list">${products.map((p) => {
    const on = watched.has(p.sku);
    return html`<li><form method="post" action="/inventory/${p.sku}/watch" hx-post="/inventory/${p.sku}/watch" hx-target="#watch-list" hx-swap="outerHTML">${csrfField(csrf)}
<input type="hidden" name="watch" value="${on ? "off" : "on"}"><span>${p.name}</span> <button class="${on ? "on" : ""}">${on ? "Watching ✓" : "Watch"}</button></form></li>`;
  })}</ul>`;
}

/** `/inventory`: stock levels live, forms to sell, restock, set and change thresholds, and alerts. */
export function inventoryPage({ viewer, products, watched, streamUrl }: InventoryProps): Html {
  const { user, csrf } = viewer;
  return layout({
    title: "Inventory",
    viewer,
    body: html`<section class="card" id="inventory"${streamAttrs(viewer.htmx, streamUrl)}>
<h1>Inventory</h1>
${pageSink(viewer.htmx, INVENTORY_PAGE)}
<h2>Alerts</h2>
${alertList(products)}
<p class="empty">No product is below its threshold.</p>
<p id="inventory-status" role="status" aria-live="polite"></p>
<table class="products">
<thead><tr><th>SKU</th><th>Product</th><th>Quantity</th><th>Status</th><th>Stock</th><th>Threshold</th></tr></thead>
<tbody id="products">${products.map((p) => productRow(p, csrf))}</tbody>
</table>
<p class="hint">Every open inventory page sees each change at once (topic <code>inventory</code>). A product below its threshold raises a <code>low-stock</code> alert; restocking clears it. Queues can report stock with <code>POST /api/inventory/:sku</code>.</p>
</section>
<section class="card" id="watching">
<h2>Watch products</h2>
${
  user
    ? html`<p class="hint">When a product you watch runs low, or is back, you get a notification in your inbox, on whatever page you are.</p>${watchList(csrf, products, watched)}`
    : html`<p class="hint"><a href="/">Sign in</a> to change stock and to watch products.</p>`
}
</section>`,
  });
}
