/**
 * Demo orders: placing one takes the items out of the inventory, then its status moves through
 * `STEPS` one step every `HERALD_ORDER_STEP_MS`, each step sent to the buyer's own channel only.
 *
 * Orders live in `bun:sqlite` with the time of their next step, so an order in flight carries on
 * after a restart; with several processes on one database, a step is taken by whichever process
 * updates the row first, and only that one sends it. The stock taken, the order and its first
 * step's events are one transaction, and so are each later step and its event: the events go out
 * through the outbox (`src/outbox.ts`), so none is lost when the event log is away for a while.
 */
import type { Database } from "bun:sqlite";
import { topicChannel, userChannel } from "../core/channel.ts";
import type { AppContext } from "../server/context.ts";
import { HttpError } from "../server/errors.ts";
import { INVENTORY_TOPIC, recordStockChange } from "./inventory.ts";
import type { Logger } from "../server/logger.ts";
import type { Outbox } from "./outbox.ts";
import type { Principal } from "../server/policy.ts";
import { describe } from "../server/publish.ts";
import type { User } from "../server/session.ts";
import { orderCard, ordersSnapshot } from "./views/orders.ts";

export const STEPS = ["processing", "confirmed", "shipped", "delivered"] as const;
export type Step = (typeof STEPS)[number];
const ORDERS: Principal = { kind: "system", label: "orders" };
/** The most items of one product in one order. */
export const MAX_ORDER_QUANTITY = 100;
/** How long a step that could not be written (a full disk) waits before it is tried again. */
const STEP_RETRY_MS = 1_000;

export interface Order {
  id: number;
  userId: string;
  sku: string;
  item: string;
  quantity: number;
  /** Index into `STEPS` of the status reached. */
  step: number;
  /** When each step was reached (ms since the epoch), one per step reached. */
  times: number[];
  /** When the next step is due; `null` once delivered. */
  nextAt: number | null;
}

interface OrderRow {
  id: number;
  user_id: string;
  sku: string;
  item: string;
  quantity: number;
  step: number;
  times: string;
  next_at: number | null;
}

function fromRow(r: OrderRow): Order {
  return { id: r.id, userId: r.user_id, sku: r.sku, item: r.item, quantity: r.quantity, step: r.step, times: JSON.parse(r.times) as number[], nextAt: r.next_at };
}

/** The orders table, and the timers that move orders along. */
export class Orders {
  #db: Database;
  #stepMs: number;
  #outbox: Outbox;
  #log: Logger;
  #timers = new Map<number, Timer>();
  #closed = false;

  constructor(db: Database, stepMs: number, outbox: Outbox, log: Logger) {
    this.#db = db;
    this.#stepMs = stepMs;
    this.#outbox = outbox;
    this.#log = log;
    db.run(`CREATE TABLE IF NOT EXISTS orders (
      id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, sku TEXT NOT NULL, item TEXT NOT NULL,
      quantity INTEGER NOT NULL, step INTEGER NOT NULL, times TEXT NOT NULL, next_at INTEGER)`);
    db.run("CREATE INDEX IF NOT EXISTS orders_user ON orders (user_id, id)");
  }

  /** Starts moving orders along, those left in flight by an earlier run included. */
  start(): void {
    const pending = this.#db.query<OrderRow, []>("SELECT * FROM orders WHERE next_at IS NOT NULL").all();
    for (const row of pending) this.schedule(fromRow(row));
  }

  /** Records a new order at its first step; `schedule` it once the transaction has committed. */
  create(userId: string, sku: string, item: string, quantity: number): Order {
    const now = Date.now();
    const row = this.#db
      .query<OrderRow, [string, string, string, number, string, number]>(
        "INSERT INTO orders (user_id, sku, item, quantity, step, times, next_at) VALUES (?, ?, ?, ?, 0, ?, ?) RETURNING *",
      )
      .get(userId, sku, item, quantity, JSON.stringify([now]), now + this.#stepMs)!;
    return fromRow(row);
  }

  get(id: number): Order | null {
    const row = this.#db.query<OrderRow, [number]>("SELECT * FROM orders WHERE id = ?").get(id);
    return row ? fromRow(row) : null;
  }

  /** The user's latest orders, newest first. */
  of(userId: string, limit = 20): Order[] {
    return this.#db.query<OrderRow, [string, number]>("SELECT * FROM orders WHERE user_id = ? ORDER BY id DESC LIMIT ?").all(userId, limit).map(fromRow);
  }

  /** Moves an order one step on, unless another process already did; returns it then, else `null`. */
  advance(order: Order): Order | null {
    const step = order.step + 1;
    const now = Date.now();
    const times = JSON.stringify([...order.times, now]);
    const nextAt = step < STEPS.length - 1 ? now + this.#stepMs : null;
    const row = this.#db
      .query<OrderRow, [number, string, number | null, number, number]>("UPDATE orders SET step = ?, times = ?, next_at = ? WHERE id = ? AND step = ? RETURNING *")
      .get(step, times, nextAt, order.id, order.step);
    return row ? fromRow(row) : null;
  }

  /** Takes the order's next step when it is due: the step and its `order-status` event in one transaction. */
  schedule(order: Order): void {
    if (order.nextAt === null || this.#closed) return;
    const timer = setTimeout(() => {
      this.#timers.delete(order.id);
      let next: Order | null;
      try {
        next = this.#outbox.transaction(() => {
          const moved = this.advance(order);
          if (moved) this.#outbox.add(ORDERS, [{ targets: [userChannel(moved.userId)], event: "order-status", data: orderCard(moved, true).value }]);
          return moved;
        });
      } catch (error) {
        // Nothing changed (the disk is full, say): the same step again in a moment.
        this.#log.error("order step not taken; trying again", { order: order.id, step: STEPS[order.step + 1], retry_ms: STEP_RETRY_MS, error: String(error) });
        this.schedule({ ...order, nextAt: Date.now() + STEP_RETRY_MS });
        return;
      }
      if (!next) return;
      this.schedule(next);
      this.#outbox.kick();
    }, Math.max(0, order.nextAt - Date.now()));
    this.#timers.set(order.id, timer);
  }

  /** Stops the timers; orders in flight carry on at the next start. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }
}

/**
 * Places an order for `user`: in one transaction, takes the stock (409 when there is not enough),
 * records the order, and queues the stock change's events and the order's first step,
 * `order-placed`, with the buyer's list of orders; then sends them. Once that transaction has
 * committed the order stands, whether or not the events could be published yet.
 */
export async function placeOrder(ctx: AppContext, user: User, sku: string, quantity: number): Promise<Order> {
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
    const placed = { targets: [userChannel(order.userId)], event: "order-placed", data: ordersSnapshot(ctx.orders.of(user.id)).value };
    return { order, stock, row: ctx.outbox.add(ORDERS, [...stock.events, placed]) };
  });
  ctx.orders.schedule(order);
  const results = await ctx.outbox.sent(row);
  ctx.log.info("order placed", { order: order.id, sku, quantity, stock: stock.after.quantity, by: describe({ kind: "user", user }), sent: results !== null });
  return order;
}
