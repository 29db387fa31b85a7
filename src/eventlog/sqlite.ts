/**
 * The durable event log on `bun:sqlite`, in WAL mode. Appends wait in memory for the current
 * tick to end and are then committed together in one transaction: one write per batch, not per
 * event, so the log does not cap publish throughput.
 *
 * `synchronous=NORMAL`: a commit survives the process being killed (the WAL is in the kernel's
 * hands), not necessarily a power cut; `HERALD_SQLITE_SYNC=full` makes every commit wait for the
 * disk.
 */
import { Database, type Statement } from "bun:sqlite";
import type { Channel } from "../channel.ts";
import type { EventLog, NewEvent, Render, Retention, StoredEvent } from "./index.ts";

interface Row {
  id: number;
  at: number;
  event: string;
  data: string;
  channels: string;
}

function fromRow(row: Row): StoredEvent {
  return { id: row.id, at: row.at, event: row.event, data: row.data, channels: JSON.parse(row.channels) as Channel[] };
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  event TEXT NOT NULL,
  data TEXT NOT NULL,
  channels TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
CREATE TABLE IF NOT EXISTS event_channels (
  channel TEXT NOT NULL,
  event_id INTEGER NOT NULL,
  event TEXT NOT NULL,
  PRIMARY KEY (channel, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS event_channels_by_name ON event_channels (channel, event, event_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS read_marks (user TEXT PRIMARY KEY, up_to INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reads (
  user TEXT NOT NULL,
  event_id INTEGER NOT NULL,
  PRIMARY KEY (user, event_id)
) WITHOUT ROWID;
`;

const PRUNE_EVERY_MS = 60_000;

export interface SqliteOptions {
  retention: Retention;
  /** `normal` (the default) or `full`. */
  sync?: "normal" | "full";
}

export class SqliteEventLog implements EventLog {
  readonly #db: Database;
  readonly #retention: Retention;
  #nextId: number;
  #committedId: number;
  #droppedUpTo: number;
  #pending: StoredEvent[] = [];
  #batch: { promise: Promise<void>; resolve: () => void; reject: (error: unknown) => void } | null = null;
  readonly #pruneTimer: ReturnType<typeof setInterval>;
  readonly #q: {
    insertEvent: Statement;
    insertChannel: Statement;
    readAfter: Statement<Row>;
    latestIds: Statement<{ event_id: number }>;
    get: Statement<Row>;
    markRead: Statement;
    markAll: Statement;
    clearReads: Statement;
    readUpTo: Statement<{ up_to: number }>;
    readsIn: Statement<{ event_id: number }>;
    unread: Statement<{ n: number }>;
  };

  /** Opens (or creates) the log at `path`; `:memory:` for a throwaway database. */
  constructor(path: string, options: SqliteOptions) {
    this.#retention = options.retention;
    this.#db = new Database(path, { create: true, strict: true });
    this.#db.run("PRAGMA journal_mode = WAL");
    this.#db.run(`PRAGMA synchronous = ${options.sync === "full" ? "FULL" : "NORMAL"}`);
    this.#db.run("PRAGMA busy_timeout = 5000");
    this.#db.exec(SCHEMA);
    const last = this.#db.query<{ id: number | null }, []>("SELECT MAX(id) AS id FROM events").get()?.id ?? 0;
    const dropped = this.#db.query<{ value: number }, []>("SELECT value FROM meta WHERE key = 'dropped_up_to'").get()?.value ?? 0;
    this.#committedId = Math.max(last, dropped);
    this.#nextId = this.#committedId + 1;
    this.#droppedUpTo = dropped;
    const channelsOf = "SELECT value FROM json_each($channels)";
    this.#q = {
      // Positional parameters on the append path: binding them is cheaper than binding an object.
      insertEvent: this.#db.prepare("INSERT INTO events (id, at, event, data, channels) VALUES (?, ?, ?, ?, ?)"),
      insertChannel: this.#db.prepare("INSERT OR IGNORE INTO event_channels (channel, event_id, event) VALUES (?, ?, ?)"),
      readAfter: this.#db.prepare<Row, Record<string, string | number>>(
        `SELECT * FROM events WHERE id IN (SELECT event_id FROM event_channels WHERE channel IN (${channelsOf}) AND event_id > $after) ORDER BY id LIMIT $limit`,
      ),
      latestIds: this.#db.prepare<{ event_id: number }, Record<string, string | number>>(
        "SELECT event_id FROM event_channels WHERE channel = $channel AND event = $event AND event_id <= $upTo ORDER BY event_id DESC LIMIT $limit",
      ),
      get: this.#db.prepare<Row, Record<string, number>>("SELECT * FROM events WHERE id = $id"),
      markRead: this.#db.prepare("INSERT OR IGNORE INTO reads (user, event_id) VALUES ($user, $id)"),
      markAll: this.#db.prepare(
        "INSERT INTO read_marks (user, up_to) VALUES ($user, $upTo) ON CONFLICT (user) DO UPDATE SET up_to = MAX(up_to, excluded.up_to)",
      ),
      clearReads: this.#db.prepare("DELETE FROM reads WHERE user = $user AND event_id <= $upTo"),
      readUpTo: this.#db.prepare<{ up_to: number }, Record<string, string>>("SELECT up_to FROM read_marks WHERE user = $user"),
      readsIn: this.#db.prepare<{ event_id: number }, Record<string, string>>(
        "SELECT event_id FROM reads WHERE user = $user AND event_id IN (SELECT value FROM json_each($ids))",
      ),
      unread: this.#db.prepare<{ n: number }, Record<string, string | number>>(
        `SELECT COUNT(DISTINCT event_id) AS n FROM event_channels WHERE channel IN (${channelsOf}) AND event = $event AND event_id > $upTo
         AND event_id NOT IN (SELECT event_id FROM reads WHERE user = $user)`,
      ),
    };
    this.#prune(Date.now());
    this.#pruneTimer = setInterval(() => this.#prune(Date.now()), PRUNE_EVERY_MS);
    this.#pruneTimer.unref();
  }

  async append(event: NewEvent, render?: Render): Promise<StoredEvent> {
    const id = this.#nextId++;
    const stored = { ...event, id, data: typeof render === "function" ? render(id) : (render ?? event.data) };
    this.#pending.push(stored);
    if (!this.#batch) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      this.#batch = { promise, resolve, reject };
      setImmediate(() => this.#commit());
    }
    await this.#batch.promise;
    return stored;
  }

  #commit(): void {
    const batch = this.#batch;
    const events = this.#pending;
    this.#batch = null;
    this.#pending = [];
    if (!batch) return;
    try {
      this.#db.transaction(() => {
        for (const event of events) {
          this.#q.insertEvent.run(event.id, event.at, event.event, event.data, JSON.stringify(event.channels));
          for (const channel of event.channels) this.#q.insertChannel.run(channel, event.id, event.event);
        }
      })();
      this.#committedId = events.at(-1)?.id ?? this.#committedId;
      batch.resolve();
    } catch (error) {
      batch.reject(error);
    }
  }

  async flush(): Promise<void> {
    await this.#batch?.promise;
  }

  async lastId(): Promise<number> {
    return this.#committedId;
  }

  async covers(afterId: number): Promise<boolean> {
    return Number.isSafeInteger(afterId) && afterId >= this.#droppedUpTo && afterId <= this.#committedId;
  }

  async readAfter(afterId: number, channels: readonly Channel[], limit: number): Promise<StoredEvent[]> {
    return this.#q.readAfter.all({ channels: JSON.stringify(channels), after: afterId, limit }).map(fromRow);
  }

  async latest(channels: readonly Channel[], event: string, limit: number, upTo = Number.MAX_SAFE_INTEGER): Promise<StoredEvent[]> {
    // Newest ids per channel through the (channel, event, event_id) index, each scan stopping at
    // `limit`; then the newest of those overall. One query over all channels would sort them all.
    const ids = new Set<number>();
    for (const channel of new Set(channels)) for (const row of this.#q.latestIds.all({ channel, event, upTo, limit })) ids.add(row.event_id);
    const newest = [...ids].sort((a, b) => b - a).slice(0, limit);
    return newest.map((id) => this.#get(id)).filter((e): e is StoredEvent => e !== undefined);
  }

  #get(id: number): StoredEvent | undefined {
    const row = this.#q.get.get({ id });
    return row ? fromRow(row) : undefined;
  }

  async get(id: number): Promise<StoredEvent | undefined> {
    return this.#get(id);
  }

  async markRead(user: string, id: number): Promise<void> {
    this.#q.markRead.run({ user, id });
  }

  async markAllRead(user: string, upTo: number): Promise<void> {
    this.#db.transaction(() => {
      this.#q.markAll.run({ user, upTo });
      this.#q.clearReads.run({ user, upTo });
    })();
  }

  #readUpTo(user: string): number {
    return this.#q.readUpTo.get({ user })?.up_to ?? 0;
  }

  async readIds(user: string, ids: readonly number[]): Promise<Set<number>> {
    const upTo = this.#readUpTo(user);
    const read = new Set(ids.filter((id) => id <= upTo));
    for (const row of this.#q.readsIn.all({ user, ids: JSON.stringify(ids) })) read.add(row.event_id);
    return read;
  }

  async unreadCount(user: string, channels: readonly Channel[], event: string): Promise<number> {
    return this.#q.unread.get({ user, channels: JSON.stringify(channels), upTo: this.#readUpTo(user), event })?.n ?? 0;
  }

  async prune(now = Date.now()): Promise<void> {
    this.#prune(now);
  }

  #prune(now: number): void {
    const byCount = this.#committedId - this.#retention.maxEvents;
    const byAge = this.#db.query<{ id: number | null }, [number]>("SELECT MAX(id) AS id FROM events WHERE at < ?").get(now - this.#retention.maxAgeMs)?.id ?? 0;
    const upTo = Math.min(Math.max(byCount, byAge), this.#committedId);
    if (upTo <= this.#droppedUpTo) return;
    this.#db.transaction(() => {
      this.#db.run("DELETE FROM events WHERE id <= ?", [upTo]);
      this.#db.run("DELETE FROM event_channels WHERE event_id <= ?", [upTo]);
      this.#db.run("DELETE FROM reads WHERE event_id <= ?", [upTo]);
      this.#db.run("INSERT INTO meta (key, value) VALUES ('dropped_up_to', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [upTo]);
    })();
    this.#droppedUpTo = upTo;
  }

  async close(): Promise<void> {
    clearInterval(this.#pruneTimer);
    this.#commit();
    this.#db.close();
  }
}
