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
import { HttpError } from "../server/errors.ts";
import { MAX_QUANTITY, SKU, type Product } from "./model.ts";

const DEMO_PRODUCTS: Product[] = [
  { sku: "KB-101", name: "Mechanical keyboard", quantity: 12, threshold: 5 },
  { sku: "MS-202", name: "Wireless mouse", quantity: 30, threshold: 10 },
  { sku: "MN-303", name: "27-inch monitor", quantity: 4, threshold: 3 },
  { sku: "CB-404", name: "USB-C cable", quantity: 120, threshold: 25 },
  { sku: "HP-505", name: "Noise-cancelling headphones", quantity: 6, threshold: 8 },
  { sku: "DK-606", name: "Laptop dock", quantity: 15, threshold: 5 },
];

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
    db.run(
      "CREATE TABLE IF NOT EXISTS watchers (sku TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (sku, user_id))",
    );
    // Checked and seeded in one write transaction: worker processes starting together seed once.
    db.transaction(() => {
      const { n } = db.query<{ n: number }, []>("SELECT count(*) AS n FROM products").get()!;
      if (n > 0) return;
      const insert = db.query("INSERT INTO products (sku, name, quantity, threshold, position) VALUES (?, ?, ?, ?, ?)");
      for (const [i, p] of DEMO_PRODUCTS.entries()) insert.run(p.sku, p.name, p.quantity, p.threshold, i);
    }).immediate();
  }

  all(): Product[] {
    return this.#db.query<Product, []>("SELECT sku, name, quantity, threshold FROM products ORDER BY position").all();
  }

  get(sku: string): Product | null {
    return this.#db
      .query<Product, [string]>("SELECT sku, name, quantity, threshold FROM products WHERE sku = ?")
      .get(sku);
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
        throw new HttpError(
          409,
          `Only ${before.quantity} of ${before.name} left; cannot take ${-(change.delta ?? 0)}.`,
        );
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
    return this.#db
      .query<{ user_id: string }, [string]>("SELECT user_id FROM watchers WHERE sku = ? ORDER BY user_id")
      .all(sku)
      .map((r) => r.user_id);
  }

  watchedBy(userId: string): Set<string> {
    return new Set(
      this.#db
        .query<{ sku: string }, [string]>("SELECT sku FROM watchers WHERE user_id = ?")
        .all(userId)
        .map((r) => r.sku),
    );
  }
}
