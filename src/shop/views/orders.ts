import { html, type Html } from "../../../views/html.ts";
import { csrfField, layout } from "../../../views/layout.ts";
import { OWN_REGIONS, pageSink, streamAttrs } from "../../../views/page.ts";
import type { PageSpec } from "../../server/pages.ts";
import type { Viewer } from "../../server/context.ts";
import type { Product } from "../model.ts";

/** The orders page: the buyer's orders, each replaced as it moves on. */
export const ORDERS_PAGE: PageSpec = {
  name: "orders",
  topics: [],
  regions: { ...OWN_REGIONS, "order-placed": "oob", "order-status": "oob" },
};
import { MAX_ORDER_QUANTITY, STEPS, type Order } from "../model.ts";

function clock(ms: number): Html {
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}">${iso.slice(11, 19)}</time>`;
}

/**
 * One order with its timeline: the steps reached, with their times, and those to come. `oob`
 * marks it to replace the card already on the page (every step after the first).
 */
export function orderCard(order: Order, oob = false): Html {
  const status = STEPS[order.step]!;
  return html`<li id="order-${order.id}" class="order step-${status}" data-status="${status}"${oob ? html` hx-swap-oob="true"` : ""}>
<p><strong>Order #${order.id}</strong>: ${order.quantity} × ${order.item} <code>${order.sku}</code> <span class="status">${status}</span></p>
<ol class="timeline">${STEPS.map((step, i) => {
    const at = order.times[i];
    return at === undefined ? html`<li class="todo">${step}</li>` : html`<li class="done">${step} ${clock(at)}</li>`;
  })}</ol>
</li>`;
}

/** The order form: a product from the inventory and a quantity. */
function orderForm(csrf: string, products: readonly Product[]): Html {
  return html`<form id="order-form" method="post" action="/orders" hx-post="/orders" hx-target="#order-status">
${csrfField(csrf)}
<label>Product <select name="sku">${products.map((p) => html`<option value="${p.sku}">${p.name} (${p.quantity} in stock)</option>`)}</select></label>
<label>Quantity <input type="number" name="quantity" value="1" min="1" max="${MAX_ORDER_QUANTITY}" required></label>
<button>Place order</button>
</form>
<p id="order-status" role="status" aria-live="polite"></p>`;
}

/** The status line after an order is placed. */
export function orderPlaced(order: Order): Html {
  return html`<span class="ok">Order #${order.id} placed: ${order.quantity} × ${order.item}. Its status follows below as it changes.</span>`;
}

/** The buyer's orders, out of band: the orders page's snapshot, and the `order-placed` event's data. */
export function ordersSnapshot(orders: readonly Order[]): Html {
  return html`<ol id="orders" hx-swap-oob="innerHTML">${orders.map((o) => orderCard(o))}</ol>`;
}

/** `/orders`: place a demo order and watch its status arrive, on this page and in every tab of yours. */
export function ordersPage(
  viewer: Viewer,
  streamUrl: string,
  products: readonly Product[],
  orders: readonly Order[],
): Html {
  const { user, csrf } = viewer;
  return layout({
    title: "Orders",
    viewer,
    body: user
      ? html`<section class="card" id="place-order">
<h1>Place an order</h1>
${orderForm(csrf, products)}
<p class="hint">A demo: the order takes the stock from the <a href="/inventory">inventory</a>, then moves from ${STEPS.join(" to ")}, each step sent only to you (<code>user:${user.id}</code>).</p>
</section>
<section class="card" id="my-orders"${streamAttrs(viewer.htmx, streamUrl)}>
<h2>Your orders</h2>
${pageSink(viewer.htmx, ORDERS_PAGE)}
<ol id="orders" class="orders">${orders.map((o) => orderCard(o))}</ol>
<p class="empty">No orders yet.</p>
</section>`
      : html`<section class="card"><h1>Orders</h1><p><a href="/">Sign in</a> to place orders and follow them live.</p></section>`,
  });
}
