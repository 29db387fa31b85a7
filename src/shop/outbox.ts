/**
 * The demo shop's outbox: the events that announce a change to the shop (a stock change, an
 * order, an order's next step) are written as one row in `shop.db`, in the same transaction as
 * the change itself, and published from there. A change is therefore never made without its
 * announcement, nor announced without being made: once the transaction has committed, the events
 * will be sent, whether the event log is reachable now or only later.
 *
 * A sender publishes the rows oldest first and deletes each once its publish resolved (the events
 * are then in the log). A publish that fails (Redis away, a full disk) is tried again with a
 * growing delay, and a row published but not yet deleted is not published again by this process.
 * A process killed between a publish and the delete sends that row again when it starts: every
 * event the shop announces carries whole state (a product's row, the alert list, a buyer's order
 * list, an order's card), so a second copy shows the same page; the exception is a watcher's
 * low-stock notification, which would then appear twice in that user's inbox.
 *
 * With `HERALD_WORKERS`, every worker writes rows under its own slot (`HERALD_WORKER`) and sends
 * only those; a worker started again in the same slot sends what its predecessor left, and the
 * first slot takes over the rows of slots that no longer run.
 */
import type { Database } from "bun:sqlite";
import type { Channel } from "../core/channel.ts";
import type { AppContext } from "../server/context.ts";
import type { PublishResult } from "../core/hub.ts";
import type { Logger } from "../server/logger.ts";
import type { Notification } from "../server/notification.ts";
import type { Principal } from "../server/policy.ts";
import { publishAll, type Outgoing } from "../server/publish.ts";
import { notificationItem } from "../../views/notification.ts";

/** One event as the outbox keeps it: HTML, or a notification rendered once its id is known (it names its own id). */
export interface OutboxEvent {
  targets: readonly Channel[];
  event: string;
  data: string | { notification: Notification };
}

/** Publishes one row's events, in order; resolves once they are in the log. */
export type OutboxPublish = (by: Principal, events: readonly OutboxEvent[]) => Promise<PublishResult[]>;

interface Row {
  id: number;
  by: string;
  events: string;
}

/** The first wait after a failed publish; it doubles up to `MAX_RETRY_MS`. */
const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 4_000;
/** Rows read per query. */
const READ_BATCH = 100;

export interface OutboxOptions {
  /** This process's slot: `HERALD_WORKER`, or 0 for a single process. */
  slot: number;
  /** How many worker slots run (`HERALD_WORKERS`); rows of other slots are taken over by the first. */
  workers: number;
  log: Logger;
}

export class Outbox {
  readonly #db: Database;
  readonly #slot: number;
  readonly #log: Logger;
  #publish: OutboxPublish | null = null;
  /** Rows published whose delete failed (a full disk): deleted, not published, on the next pass. */
  readonly #published = new Set<number>();
  /** Callers waiting for a row's first attempt. */
  readonly #waiting = new Map<number, (results: PublishResult[] | null) => void>();
  #draining = false;
  #retryMs = 0;
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;

  constructor(db: Database, { slot, workers, log }: OutboxOptions) {
    this.#db = db;
    this.#slot = slot;
    this.#log = log;
    db.run(`CREATE TABLE IF NOT EXISTS outbox (
      id INTEGER PRIMARY KEY AUTOINCREMENT, slot INTEGER NOT NULL, by TEXT NOT NULL, events TEXT NOT NULL, at INTEGER NOT NULL)`);
    db.run("CREATE INDEX IF NOT EXISTS outbox_slot ON outbox (slot, id)");
    const first = workers > 1 ? 1 : 0;
    if (slot === first) {
      // Rows of slots that no longer run (fewer workers than before, or none): this one sends them.
      try {
        db.query("UPDATE outbox SET slot = ? WHERE slot <> ? AND (slot < ? OR slot > ?)").run(
          slot,
          slot,
          first,
          workers > 1 ? workers : 0,
        );
      } catch (error) {
        log.error("outbox: could not take over other slots' rows", { error: String(error) });
      }
    }
  }

  /**
   * Runs `change` in one write transaction (`BEGIN IMMEDIATE`): the change and its `add`s commit together or not at
   * all.
   */
  transaction<T>(change: () => T): T {
    return this.#db.transaction(change).immediate();
  }

  /** Adds a row of events to send; call it inside `transaction`. Returns the row's id. */
  add(by: Principal, events: readonly OutboxEvent[]): number {
    const row = this.#db
      .query<{ id: number }, [number, string, string, number]>(
        "INSERT INTO outbox (slot, by, events, at) VALUES (?, ?, ?, ?) RETURNING id",
      )
      .get(this.#slot, JSON.stringify(by), JSON.stringify(events), Date.now())!;
    return row.id;
  }

  /** Starts sending with `publish`, the rows left by an earlier run first. */
  start(publish: OutboxPublish): void {
    this.#publish = publish;
    this.kick();
  }

  /**
   * Sends the committed row `id` (and any before it), and resolves with its events' results once
   * they are published, or with `null` once an attempt failed: the row stays and is sent later.
   */
  sent(id: number): Promise<PublishResult[] | null> {
    // While waiting to try again, or once closed, the answer is known: not now (a later start sends it).
    if (this.#retryTimer || this.#closed) return Promise.resolve(null);
    const done = new Promise<PublishResult[] | null>((resolve) => this.#waiting.set(id, resolve));
    this.kick();
    return done;
  }

  /** Sends what is waiting, unless a pass is under way or a retry is due later. */
  kick(): void {
    if (this.#draining || this.#retryTimer || this.#closed || !this.#publish) return;
    this.#draining = true;
    void this.#drain();
  }

  #settle(id: number, results: PublishResult[] | null): void {
    this.#waiting.get(id)?.(results);
    this.#waiting.delete(id);
  }

  async #drain(): Promise<void> {
    let sent = 0;
    try {
      sent = await this.#pass();
    } finally {
      this.#draining = false;
    }
    if (this.#waiting.size === 0 || this.#retryTimer) return;
    // Callers that came while the pass was ending: their rows are read by another pass.
    if (sent > 0) this.kick();
    else for (const id of [...this.#waiting.keys()]) this.#settle(id, null);
  }

  /** Sends and deletes rows until none is left or one fails; returns how many it sent. */
  async #pass(): Promise<number> {
    const select = this.#db.query<Row, [number, number, number]>(
      "SELECT id, by, events FROM outbox WHERE slot = ? AND id > ? ORDER BY id LIMIT ?",
    );
    let after = 0;
    let sent = 0;
    while (!this.#closed) {
      let rows: Row[];
      try {
        rows = select.all(this.#slot, after, READ_BATCH);
      } catch (error) {
        this.#failed(error, "read");
        return sent;
      }
      if (rows.length === 0) break;
      for (const row of rows) {
        if (this.#closed) return sent;
        if (!this.#published.has(row.id)) {
          let results: PublishResult[];
          try {
            results = await this.#publish!(JSON.parse(row.by) as Principal, JSON.parse(row.events) as OutboxEvent[]);
          } catch (error) {
            this.#failed(error, "publish", row.id);
            return sent;
          }
          this.#published.add(row.id);
          this.#settle(row.id, results);
          sent++;
        }
        try {
          this.#db.query("DELETE FROM outbox WHERE id = ?").run(row.id);
          this.#published.delete(row.id);
        } catch (error) {
          // Sent, so not sent again; the delete is tried on the next pass.
          this.#failed(error, "delete", row.id);
          return sent;
        }
        after = row.id;
      }
    }
    this.#retryMs = 0;
    return sent;
  }

  /** Answers every waiting caller "not now" and tries again after a growing delay. */
  #failed(error: unknown, step: string, row?: number): void {
    this.#retryMs = Math.min(MAX_RETRY_MS, this.#retryMs ? this.#retryMs * 2 : FIRST_RETRY_MS);
    this.#log.warn("outbox: events not sent yet; trying again", {
      step,
      row,
      retry_ms: this.#retryMs,
      error: String(error),
    });
    for (const id of [...this.#waiting.keys()]) this.#settle(id, null);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.kick();
    }, this.#retryMs);
    this.#retryTimer.unref();
  }

  /** Stops sending; what is left is sent at the next start. */
  close(): void {
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    for (const id of [...this.#waiting.keys()]) this.#settle(id, null);
  }
}

/** The outbox's publish for an app: each row through `publishAll` (the inbox sends the unread counts it changes). */
export function publishOutbox(ctx: AppContext): OutboxPublish {
  return async (by, events) => {
    const outgoing: Outgoing[] = events.map(({ targets, event, data }) => ({
      targets,
      event,
      data: typeof data === "string" ? data : (id: number) => notificationItem({ ...data.notification, id }).value,
    }));
    return publishAll(ctx, by, outgoing);
  };
}
