/**
 * The inventory: products in `bun:sqlite` (seeded with demo stock on first start), who watches
 * which product, and what a stock change publishes.
 *
 * A product is low when its quantity is below its threshold. Every change sends the product's row
 * (`product`) to topic `inventory`; the change that makes it low also sends a `low-stock` alert
 * there and a notification to each user watching it, and the change that ends it sends `stock-ok`
 * and tells the watchers it is back. Both alert events carry the whole list of alerts.
 */
import type { Database } from "bun:sqlite";
import { topicChannel, userChannel, type Channel } from "../core/channel.ts";
import type { AppContext } from "../server/context.ts";
import { HttpError } from "../server/errors.ts";
import type { Level } from "../server/notification.ts";
import type { OutboxEvent } from "./outbox.ts";
import { describe } from "../server/publish.ts";
import type { Principal } from "../server/policy.ts";
import { NOTIFICATION } from "../server/inbox.ts";
import { alertList, productRow } from "./views/inventory.ts";

export interface Product {
  sku: string;
  name: string;
  quantity: number;
  threshold: number;
}

/** The topic every inventory page follows. */
export const INVENTORY_TOPIC = "inventory";
/** A stock-keeping unit: upper-case letters, digits and `-`, at most 32. */
export const SKU = /^[A-Z0-9][A-Z0-9-]{0,31}$/;
/** The largest quantity or threshold herald takes. */
export const MAX_QUANTITY = 1_000_000_000;

const DEMO_PRODUCTS: Product[] = [
  { sku: "KB-101", name: "Mechanical keyboard", quantity: 12, threshold: 5 },
  { sku: "MS-202", name: "Wireless mouse", quantity: 30, threshold: 10 },
  { sku: "MN-303", name: "27-inch monitor", quantity: 4, threshold: 3 },
  { sku: "CB-404", name: "USB-C cable", quantity: 120, threshold: 25 },
  { sku: "HP-505", name: "Noise-cancelling headphones", quantity: 6, threshold: 8 },
  { sku: "DK-606", name: "Laptop dock", quantity: 15, threshold: 5 },
];

export function isLow(product: Product): boolean {
  return product.quantity < product.threshold;
}

/** What one request asks of a product's stock; each field is optional, applied in this order. */
export interface StockChange {
  /** The new quantity (a count taken, or a queue's report). */
  quantity?: number;
  /** Added to the quantity: negative for a sale, positive for a restock. */
  delta?: number;
  /** The new threshold. */
  threshold?: number;
}

/** The products and watch lists. */
export class Inventory {
  #db: Database;

  constructor(db: Database) {
    this.#db = db;
    db.run(`CREATE TABLE IF NOT EXISTS products (
      sku TEXT PRIMARY KEY, name TEXT NOT NULL, quantity INTEGER NOT NULL, threshold INTEGER NOT NULL, position INTEGER NOT NULL)`);
    db.run("CREATE TABLE IF NOT EXISTS watchers (sku TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (sku, user_id))");
    // Checked and seeded in one write transaction: worker processes starting together seed once.
    db.transaction(() => {
      const { n } = db.query<{ n: number }, []>("SELECT count(*) AS n FROM products").get()!;
      if (n > 0) return;
      const insert = db.query("INSERT INTO products (sku, name, quantity, threshold, position) VALUES (?, ?, ?, ?, ?)");
      DEMO_PRODUCTS.forEach((p, i) => insert.run(p.sku, p.name, p.quantity, p.threshold, i));
    }).immediate();
  }

  all(): Product[] {
    return this.#db.query<Product, []>("SELECT sku, name, quantity, threshold FROM products ORDER BY position").all();
  }

  get(sku: string): Product | null {
    return this.#db.query<Product, [string]>("SELECT sku, name, quantity, threshold FROM products WHERE sku = ?").get(sku);
  }

  /** The product, or a 404 that names the SKU. */
  find(sku: string): Product {
    const product = SKU.test(sku) ? this.get(sku) : null;
    if (!product) throw new HttpError(404, `There is no product with SKU "${sku}".`);
    return product;
  }

  /**
   * Applies `change` in one transaction and returns the product before and after. 409 when a sale
   * would take the quantity below zero; nothing changes then.
   */
  change(sku: string, change: StockChange): { before: Product; after: Product } {
    return this.#db.transaction(() => {
      const before = this.find(sku);
      let quantity = change.quantity ?? before.quantity;
      if (change.delta !== undefined) quantity += change.delta;
      if (quantity < 0) {
        throw new HttpError(409, `Only ${before.quantity} of ${before.name} left; cannot take ${-(change.delta ?? 0)}.`);
      }
      if (quantity > MAX_QUANTITY) throw new HttpError(400, `A quantity can be at most ${MAX_QUANTITY}.`);
      const threshold = change.threshold ?? before.threshold;
      this.#db.query("UPDATE products SET quantity = ?, threshold = ? WHERE sku = ?").run(quantity, threshold, sku);
      return { before, after: { ...before, quantity, threshold } };
    })();
  }

  watch(sku: string, userId: string, on: boolean): void {
    this.find(sku);
    if (on) this.#db.query("INSERT OR IGNORE INTO watchers (sku, user_id) VALUES (?, ?)").run(sku, userId);
    else this.#db.query("DELETE FROM watchers WHERE sku = ? AND user_id = ?").run(sku, userId);
  }

  watchers(sku: string): string[] {
    return this.#db.query<{ user_id: string }, [string]>("SELECT user_id FROM watchers WHERE sku = ? ORDER BY user_id").all(sku).map((r) => r.user_id);
  }

  watchedBy(userId: string): Set<string> {
    return new Set(this.#db.query<{ sku: string }, [string]>("SELECT sku FROM watchers WHERE user_id = ?").all(userId).map((r) => r.sku));
  }
}

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

function watcherNotice(product: Product, low: boolean, sentAt: number): OutboxEvent["data"] {
  const level: Level = low ? "warning" : "success";
  const fields = low
    ? { title: `Low stock: ${product.name}`, message: `${product.sku} is down to ${product.quantity} (threshold ${product.threshold}).` }
    : { title: `Back in stock: ${product.name}`, message: `${product.sku} is at ${product.quantity} again (threshold ${product.threshold}).` };
  return { notification: { ...fields, level, channel: topicChannel(INVENTORY_TOPIC), from: "inventory", sentAt } };
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
export function recordStockChange(ctx: AppContext, sku: string, change: StockChange): StockChanged {
  const { before, after } = ctx.inventory.change(sku, change);
  const topic: Channel[] = [topicChannel(INVENTORY_TOPIC)];
  const low = isLow(after);
  const alert = low && !isLow(before) ? "raised" : !low && isLow(before) ? "cleared" : null;
  const events: OutboxEvent[] = [{ targets: topic, event: "product", data: productRow(after, null, true).value }];
  // Read in the same transaction as the change, so that the list is the one as of this event.
  if (alert) events.push({ targets: topic, event: alert === "raised" ? "low-stock" : "stock-ok", data: alertList(ctx.inventory.all(), true).value });
  const watchers = alert ? ctx.inventory.watchers(sku).map(userChannel) : [];
  if (watchers.length) events.push({ targets: watchers, event: NOTIFICATION, data: watcherNotice(after, low, Date.now()) });
  return { before, after, low, alert, events };
}

/**
 * Changes a product's stock and, in the same transaction, queues the events that announce it;
 * then sends them. Resolves once the change is made: with the events' ids when they are published
 * too, or with `sent: false` when the event log cannot take them now (they follow when it can).
 * Throws, having changed nothing, when the change cannot be made.
 */
export async function changeStock(ctx: AppContext, by: Principal, sku: string, change: StockChange): Promise<StockResult> {
  // Changing stock means publishing to the inventory topic: whoever may not (it is private, or
  // the authorize hook says no) may not change stock either.
  ctx.policy.check(by, "publish", topicChannel(INVENTORY_TOPIC));
  const { before, after, low, alert, row } = ctx.outbox.transaction(() => {
    const changed = recordStockChange(ctx, sku, change);
    return { ...changed, row: ctx.outbox.add(by, changed.events) };
  });
  const results = await ctx.outbox.sent(row);
  ctx.log.info("stock changed", { sku, from: before.quantity, to: after.quantity, threshold: after.threshold, alert, by: describe(by), sent: results !== null });
  return { product: after, low, alert, ids: results?.map((r) => r.id) ?? [], sent: results !== null };
}
