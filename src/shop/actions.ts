/**
 * What the shop does on a request, each in one transaction of `shop.db` with the events that
 * announce it (the outbox): change stock, place an order; and the live page's state.
 */
import { topicChannel, userChannel, type Channel } from "../core/channel.ts";
import { HttpError } from "../server/errors.ts";
import { inboxItems, NOTIFICATION, unreadCount } from "../server/inbox.ts";
import type { Level } from "../server/notification.ts";
import type { Principal } from "../server/policy.ts";
import { describe } from "../server/publish.ts";
import type { User } from "../server/session.ts";
import type { ShopContext } from "./context.ts";
import type { StockChange } from "./inventory.ts";
import { isLow, MAX_ORDER_QUANTITY, type Order, type Product } from "./model.ts";
import { ORDERS } from "./orders.ts";
import type { OutboxEvent } from "./outbox.ts";
import { INVENTORY_TOPIC } from "./topics.ts";
import { alertList, productRow } from "./views/inventory.ts";
import { ordersSnapshot } from "./views/orders.ts";

/** What a stock change did: the product now, whether its alert was raised or cleared, and the event ids. */
export interface StockResult {
  product: Product;
  low: boolean;
  alert: "raised" | "cleared" | null;
  /** The ids of the events that announced it; empty when they are queued (`sent` is false). */
  ids: string[];
  /** Whether the events are published; if not, the change is made and they follow once the event log can take them. */
  sent: boolean;
}

/** The notice to one watcher, labelled with the channel it arrives on: their own. */
function watcherNotice(product: Product, low: boolean, sentAt: number, channel: Channel): OutboxEvent["data"] {
  const level: Level = low ? "warning" : "success";
  const fields = low
    ? {
        title: `Low stock: ${product.name}`,
        message: `${product.sku} is down to ${product.quantity} (threshold ${product.threshold}).`,
      }
    : {
        title: `Back in stock: ${product.name}`,
        message: `${product.sku} is at ${product.quantity} again (threshold ${product.threshold}).`,
      };
  return { notification: { ...fields, level, channel, from: "inventory", sentAt } };
}

/** A stock change made (inside the caller's transaction) and the events that announce it. */
export interface StockChanged {
  before: Product;
  after: Product;
  low: boolean;
  alert: "raised" | "cleared" | null;
  events: OutboxEvent[];
}

/**
 * Changes a product's stock and says what the change means (see the file's comment). Call it
 * inside `ctx.outbox.transaction`, and add `events` to the outbox in the same transaction.
 */
export function recordStockChange(ctx: ShopContext, sku: string, change: StockChange): StockChanged {
  const { before, after } = ctx.inventory.change(sku, change);
  const topic: Channel[] = [topicChannel(INVENTORY_TOPIC)];
  const low = isLow(after);
  const alert = low && !isLow(before) ? "raised" : !low && isLow(before) ? "cleared" : null;
  const events: OutboxEvent[] = [{ targets: topic, event: "product", data: productRow(after, null, true).value }];
  // Read in the same transaction as the change, so that the list is the one as of this event.
  if (alert)
    events.push({
      targets: topic,
      event: alert === "raised" ? "low-stock" : "stock-ok",
      data: alertList(ctx.inventory.all(), true).value,
    });
  // One event per watcher: each is labelled with the watcher's own channel, where it arrives.
  const sentAt = Date.now();
  for (const watcher of alert ? ctx.inventory.watchers(sku).map(userChannel) : [])
    events.push({ targets: [watcher], event: NOTIFICATION, data: watcherNotice(after, low, sentAt, watcher) });
  return { before, after, low, alert, events };
}

/**
 * Changes a product's stock and, in the same transaction, queues the events that announce it;
 * then sends them. Resolves once the change is made: with the events' ids when they are published
 * too, or with `sent: false` when the event log cannot take them now (they follow when it can).
 * Throws, having changed nothing, when the change cannot be made.
 */
export async function changeStock(
  ctx: ShopContext,
  by: Principal,
  sku: string,
  change: StockChange,
): Promise<StockResult> {
  // Changing stock means publishing to the inventory topic: whoever may not (it is private, or
  // the authorize hook says no) may not change stock either.
  ctx.policy.check(by, "publish", topicChannel(INVENTORY_TOPIC));
  const { before, after, low, alert, row } = ctx.outbox.transaction(() => {
    const changed = recordStockChange(ctx, sku, change);
    return { ...changed, row: ctx.outbox.add(by, changed.events) };
  });
  const results = await ctx.outbox.sent(row);
  ctx.log.info("stock changed", {
    sku,
    from: before.quantity,
    to: after.quantity,
    threshold: after.threshold,
    alert,
    by: describe(by),
    sent: results !== null,
  });
  return { product: after, low, alert, ids: results?.map((r) => r.id) ?? [], sent: results !== null };
}

/**
 * Places an order for `user`: in one transaction, takes the stock (409 when there is not enough),
 * records the order, and queues the stock change's events and the order's first step,
 * `order-placed`, with the buyer's list of orders; then sends them. Once that transaction has
 * committed the order stands, whether or not the events could be published yet.
 */
export async function placeOrder(ctx: ShopContext, user: User, sku: string, quantity: number): Promise<Order> {
  if (!Number.isSafeInteger(quantity) || quantity < 1 || quantity > MAX_ORDER_QUANTITY) {
    throw new HttpError(400, `Order between 1 and ${MAX_ORDER_QUANTITY} items.`);
  }
  // The shop takes the stock, not the buyer: buyers need no right to change the inventory.
  ctx.policy.check(ORDERS, "publish", topicChannel(INVENTORY_TOPIC));
  const { order, row, stock } = ctx.outbox.transaction(() => {
    const product = ctx.inventory.find(sku);
    if (product.quantity < quantity) {
      throw new HttpError(409, `Only ${product.quantity} of ${product.name} in stock; order fewer.`);
    }
    const stock = recordStockChange(ctx, sku, { delta: -quantity });
    const order = ctx.orders.create(user.id, sku, product.name, quantity);
    // The buyer's whole list, read in the same transaction: applied twice (or after a snapshot
    // that has the order already), it still shows each order once.
    const placed = {
      targets: [userChannel(order.userId)],
      event: "order-placed",
      data: ordersSnapshot(ctx.orders.of(user.id)).value,
    };
    return { order, stock, row: ctx.outbox.add(ORDERS, [...stock.events, placed]) };
  });
  ctx.orders.schedule(order);
  const results = await ctx.outbox.sent(row);
  ctx.log.info("stock changed", {
    sku,
    from: stock.before.quantity,
    to: stock.after.quantity,
    threshold: stock.after.threshold,
    alert: stock.alert,
    by: describe(ORDERS),
    sent: results !== null,
  });
  ctx.log.info("order placed", {
    order: order.id,
    sku,
    quantity,
    stock: stock.after.quantity,
    by: describe({ kind: "user", user }),
    sent: results !== null,
  });
  return order;
}

/** The latest state of the live page's feeds, and the notifications on `channels` (up to event `upTo`). */
export async function liveState(ctx: ShopContext, user: User | null, channels: readonly Channel[], upTo?: number) {
  const { market, metrics } = ctx.live;
  return {
    quotes: market.quotes,
    quotesAt: market.updatedAt,
    metrics: metrics.latest,
    items: await inboxItems(ctx, user, channels, upTo),
    unread: user ? await unreadCount(ctx, user) : null,
    marketMs: ctx.config.marketMs,
    metricsMs: ctx.config.metricsMs,
  };
}
