/**
 * Demo orders: placing one takes the items out of the inventory, then its status moves through
 * `STEPS` one step every `HERALD_ORDER_STEP_MS`, each step sent to the buyer's own channel only.
 *
 * Orders live in `bun:sqlite` with the time of their next step, so an order in flight carries on
 * after a restart; with several processes on one database, a step is taken by whichever process
 * updates the row first, and only that one sends it.
 */
import type { Database } from "bun:sqlite";
import { userChannel } from "./channel.ts";
import type { AppContext } from "./context.ts";
import { HttpError } from "./errors.ts";
import { changeStock } from "./inventory.ts";
import type { Principal } from "./policy.ts";
import { publishAll } from "./publish.ts";
import type { User } from "./session.ts";
import { orderCard, ordersSnapshot } from "../views/orders.ts";

export const STEPS = ["processing", "confirmed", "shipped", "delivered"] as const;
export type Step = (typeof STEPS)[number];
const ORDERS: Principal = { kind: "system", label: "orders" };
/** The most items of one product in one order. */
export const MAX_ORDER_QUANTITY = 100;

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
  #timers = new Map<number, Timer>();
  #closed = false;
  /** Sends one step; set by `start`. */
  #send: (order: Order) => Promise<void> = async () => {};

  constructor(db: Database, stepMs: number) {
    this.#db = db;
    this.#stepMs = stepMs;
    db.run(`CREATE TABLE IF NOT EXISTS orders (
      id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, sku TEXT NOT NULL, item TEXT NOT NULL,
      quantity INTEGER NOT NULL, step INTEGER NOT NULL, times TEXT NOT NULL, next_at INTEGER)`);
    db.run("CREATE INDEX IF NOT EXISTS orders_user ON orders (user_id, id)");
  }

  /** Starts moving orders along, those left in flight by an earlier run included. */
  start(send: (order: Order) => Promise<void>): void {
    this.#send = send;
    const pending = this.#db.query<OrderRow, []>("SELECT * FROM orders WHERE next_at IS NOT NULL").all();
    for (const row of pending) this.#schedule(fromRow(row));
  }

  /** Records a new order at its first step and schedules the next. */
  create(userId: string, sku: string, item: string, quantity: number): Order {
    const now = Date.now();
    const row = this.#db
      .query<OrderRow, [string, string, string, number, string, number]>(
        "INSERT INTO orders (user_id, sku, item, quantity, step, times, next_at) VALUES (?, ?, ?, ?, 0, ?, ?) RETURNING *",
      )
      .get(userId, sku, item, quantity, JSON.stringify([now]), now + this.#stepMs)!;
    const order = fromRow(row);
    this.#schedule(order);
    return order;
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

  #schedule(order: Order): void {
    if (order.nextAt === null || this.#closed) return;
    const timer = setTimeout(() => {
      this.#timers.delete(order.id);
      const next = this.advance(order);
      if (!next) return;
      this.#schedule(next);
      void this.#send(next);
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
 * Places an order for `user`: takes the stock (409 when there is not enough; the stock change is
 * published as any other), records the order, and sends its first step, `order-placed`, with the
 * buyer's list of orders.
 */
export async function placeOrder(ctx: AppContext, user: User, sku: string, quantity: number): Promise<Order> {
  if (!Number.isSafeInteger(quantity) || quantity < 1 || quantity > MAX_ORDER_QUANTITY) {
    throw new HttpError(400, `Order between 1 and ${MAX_ORDER_QUANTITY} items.`);
  }
  const product = ctx.inventory.find(sku);
  if (product.quantity < quantity) {
    throw new HttpError(409, `Only ${product.quantity} of ${product.name} in stock; order fewer.`);
  }
  // The shop takes the stock, not the buyer: buyers need no right to change the inventory.
  await changeStock(ctx, ORDERS, sku, { delta: -quantity });
  const order = ctx.orders.create(user.id, sku, product.name, quantity);
  // The buyer's whole list, read in the same tick: applied twice (or after a snapshot that has the
  // order already), it still shows each order once.
  await publishAll(ctx, ORDERS, [{ targets: [userChannel(order.userId)], event: "order-placed", data: ordersSnapshot(ctx.orders.of(user.id)).value }]);
  return order;
}

/** Sends a step after the first: the order's card, replacing the one on the buyer's pages. */
export function sendOrderStep(ctx: AppContext): (order: Order) => Promise<void> {
  return async (order) => {
    try {
      await publishAll(ctx, ORDERS, [{ targets: [userChannel(order.userId)], event: "order-status", data: orderCard(order, true).value }]);
    } catch (error) {
      ctx.log.error("order step not sent", { order: order.id, step: STEPS[order.step], error: String(error) });
    }
  };
}
