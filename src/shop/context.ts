/**
 * What the demo shop's code needs: herald's own context, and the shop's products, orders, outbox
 * and live feeds (`src/shop/index.ts` makes it).
 */
import type { AppContext } from "../server/context.ts";
import type { Inventory } from "./inventory.ts";
import type { LiveFeeds } from "./live.ts";
import type { Orders } from "./orders.ts";
import type { Outbox } from "./outbox.ts";

export interface ShopContext extends AppContext {
  /** The products (`/inventory`) and orders (`/orders`), in `shop.db` in the data directory. */
  inventory: Inventory;
  orders: Orders;
  /** The events that announce the shop's changes, queued with them in `shop.db` until published. */
  outbox: Outbox;
  /** The market and metrics feeds of `/live`. */
  live: LiveFeeds;
}
