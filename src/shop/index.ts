/**
 * The demo shop: inventory, orders and live feeds, added to a herald through the same interface
 * any app uses (`addRoutes`, `addPage`, `use`). Its state is `shop.db` in the data directory.
 */
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { HeraldError, isCorrupt } from "../core/errors.ts";
import type { HeraldApp, Route } from "../server/app.ts";
import { WORKER_ENV } from "../server/workers.ts";
import type { ShopContext } from "./context.ts";
import { Inventory } from "./inventory.ts";
import { liveState } from "./actions.ts";
import { startLiveFeeds } from "./live.ts";
import { Orders } from "./orders.ts";
import { Outbox, publishOutbox } from "./outbox.ts";
import { apiInventory, changeFromForm, inventory, watch } from "./routes/inventory.ts";
import { live } from "./routes/live.ts";
import { order, orders } from "./routes/orders.ts";
import { INVENTORY_PAGE, inventorySnapshot } from "./views/inventory.ts";
import { LIVE_PAGE, liveSnapshot } from "./views/live.ts";
import { ORDERS_PAGE, ordersSnapshot } from "./views/orders.ts";

/**
 * Opens `shop.db` and what is kept in it; a file that is not a sound database stops the start-up
 * with one line naming it.
 */
function openShop(
  config: HeraldApp["config"],
  log: ShopContext["log"],
): { db: Database; inventory: Inventory; orders: Orders; outbox: Outbox } {
  mkdirSync(config.dataDir, { recursive: true });
  const path = join(config.dataDir, "shop.db");
  try {
    const db = new Database(path);
    // Several worker processes may open the file at once: wait for a lock rather than fail.
    db.run("PRAGMA busy_timeout = 5000");
    db.run("PRAGMA journal_mode = WAL");
    // Each worker process sends the outbox rows it wrote (`HERALD_WORKER` is its slot).
    const outbox = new Outbox(db, { slot: Number(process.env[WORKER_ENV] ?? 0) || 0, workers: config.workers, log });
    return { db, outbox, inventory: new Inventory(db), orders: new Orders(db, config.orderStepMs, outbox, log) };
  } catch (error) {
    if (!isCorrupt(error)) throw error;
    throw new HeraldError(
      `${path} is not a sound SQLite database (${(error as Error).message}): restore it from a backup, or move it away to start the demo shop afresh.`,
    );
  }
}

/** Adds the demo shop to `herald`: its pages, routes, timers and database, stopped and closed with it. */
export function installShop(herald: HeraldApp): ShopContext {
  const { config, ctx } = herald;
  const opened = openShop(config, ctx.log);
  const { db } = opened;
  const shop: ShopContext = {
    ...ctx,
    inventory: opened.inventory,
    orders: opened.orders,
    outbox: opened.outbox,
    live: startLiveFeeds(ctx.hub, ctx.startedAt, { marketMs: config.marketMs, metricsMs: config.metricsMs }),
  };
  shop.outbox.start(publishOutbox(shop));
  shop.orders.start();
  herald.use({
    stop() {
      shop.live.stop();
      shop.orders.close();
      shop.outbox.close();
    },
    close: () => db.close(),
  });

  herald.addPage(
    {
      ...LIVE_PAGE,
      snapshot: async (user, channels, upTo) => liveSnapshot(await liveState(shop, user, channels, upTo)).value,
    },
    { href: "/live", label: "Live" },
  );
  herald.addPage(
    { ...INVENTORY_PAGE, snapshot: async () => inventorySnapshot(shop.inventory.all()).value },
    { href: "/inventory", label: "Inventory" },
  );
  herald.addPage(
    { ...ORDERS_PAGE, snapshot: async (user) => ordersSnapshot(user ? shop.orders.of(user.id) : []).value },
    { href: "/orders", label: "Orders" },
  );

  // The shop's routes take its own context; herald wraps each as it wraps its own.
  const bind =
    (route: Route<ShopContext>): Route =>
    (_ctx, req, server) =>
      route(shop, req, server);
  herald.addRoutes({
    "/live": { GET: bind(live) },
    "/inventory": { GET: bind(inventory) },
    "/inventory/:sku": { POST: bind(changeFromForm) },
    "/inventory/:sku/watch": { POST: bind(watch) },
    "/api/inventory/:sku": { POST: bind(apiInventory) },
    "/orders": { GET: bind(orders), POST: bind(order) },
  });
  return shop;
}
