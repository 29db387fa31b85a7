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
import { userChannel } from "../core/channel.ts";
import { STEPS, type Order } from "./model.ts";
import type { Logger } from "../server/logger.ts";
import type { Outbox } from "./outbox.ts";
import type { Principal } from "../server/policy.ts";
import { orderCard } from "./views/orders.ts";

/** The shop, publishing for its orders. */
export const ORDERS: Principal = { kind: "system", label: "orders" };
/** How long a step that could not be written (a full disk) waits before it is tried again. */
const STEP_RETRY_MS = 1_000;

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
  return {
    id: r.id,
    userId: r.user_id,
    sku: r.sku,
    item: r.item,
    quantity: r.quantity,
    step: r.step,
    times: JSON.parse(r.times) as number[],
    nextAt: r.next_at,
  };
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
    return this.#db
      .query<OrderRow, [string, number]>("SELECT * FROM orders WHERE user_id = ? ORDER BY id DESC LIMIT ?")
      .all(userId, limit)
      .map(fromRow);
  }

  /** Moves an order one step on, unless another process already did; returns it then, else `null`. */
  advance(order: Order): Order | null {
    const step = order.step + 1;
    const now = Date.now();
    const times = JSON.stringify([...order.times, now]);
    const nextAt = step < STEPS.length - 1 ? now + this.#stepMs : null;
    const row = this.#db
      .query<OrderRow, [number, string, number | null, number, number]>(
        "UPDATE orders SET step = ?, times = ?, next_at = ? WHERE id = ? AND step = ? RETURNING *",
      )
      .get(step, times, nextAt, order.id, order.step);
    return row ? fromRow(row) : null;
  }

  /** Takes the order's next step when it is due: the step and its `order-status` event in one transaction. */
  schedule(order: Order): void {
    if (order.nextAt === null || this.#closed) return;
    const timer = setTimeout(
      () => {
        this.#timers.delete(order.id);
        let next: Order | null;
        try {
          next = this.#outbox.transaction(() => {
            const moved = this.advance(order);
            if (moved)
              this.#outbox.add(ORDERS, [
                { targets: [userChannel(moved.userId)], event: "order-status", data: orderCard(moved, true).value },
              ]);
            return moved;
          });
        } catch (error) {
          // Nothing changed (the disk is full, say): the same step again in a moment.
          this.#log.error("order step not taken; trying again", {
            order: order.id,
            step: STEPS[order.step + 1],
            retry_ms: STEP_RETRY_MS,
            error: String(error),
          });
          this.schedule({ ...order, nextAt: Date.now() + STEP_RETRY_MS });
          return;
        }
        if (!next) return;
        this.schedule(next);
        this.#outbox.kick();
      },
      Math.max(0, order.nextAt - Date.now()),
    );
    this.#timers.set(order.id, timer);
  }

  /** Stops the timers; orders in flight carry on at the next start. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }
}
