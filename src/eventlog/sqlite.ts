/**
 * The durable event log on `bun:sqlite`, in WAL mode. Appends wait in memory for the current
 * tick to end and are then committed together in one transaction: one write per batch, not per
 * event, so the log does not cap publish throughput.
 *
 * Which events are on which channel is kept in memory (`ChannelIndex`), rebuilt from the
 * `events` table when the log is opened: only this process writes the log, and an index on disk
 * cost about three quarters of an append (an insert per channel into a table and its second
 * index, 8 of 11 µs an event). Logs written by earlier versions, which kept that index in the
 * tables `event_channels` and `names`, have those tables dropped when opened.
 *
 * The log's epoch is a row of `meta`, made when the file is: a new file is a new history. A backup
 * restored over the file brings its own epoch back; delete that row (`DELETE FROM meta WHERE key =
 * 'epoch'`) before starting herald on it, so that ids handed out after the backup was taken are
 * not taken for positions in it.
 *
 * `synchronous=NORMAL`: a commit survives the process being killed (the WAL is in the kernel's
 * hands), not necessarily a power cut; `HERALD_SQLITE_SYNC=full` makes every commit wait for the
 * disk.
 */
import { Database, type Statement } from "bun:sqlite";
import type { Channel } from "../channel.ts";
import { ChannelIndex } from "./channel-index.ts";
import { newEpoch } from "./epoch.ts";
import type { EventLog, NewEvent, Render, Retention, StoredEvent } from "./index.ts";

interface Row {
  id: number;
  at: number;
  event: string;
  data: string;
  channels: string;
}

function fromRow(row: Row, epoch: string): StoredEvent {
  return { id: row.id, epoch, at: row.at, event: row.event, data: row.data, channels: JSON.parse(row.channels) as Channel[] };
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
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS read_marks (user TEXT PRIMARY KEY, up_to INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reads (
  user TEXT NOT NULL,
  event_id INTEGER NOT NULL,
  PRIMARY KEY (user, event_id)
) WITHOUT ROWID;
`;

/** The on-disk channel index of earlier versions, now kept in memory. */
const OLD_INDEX = `
DROP TABLE IF EXISTS event_channels;
DROP TABLE IF EXISTS names;
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
  readonly #epoch: string;
  #nextId: number;
  #committedId: number;
  #droppedUpTo: number;
  #pending: StoredEvent[] = [];
  /** The committed events' ids by channel. */
  readonly #index = new ChannelIndex();
  #batch: { promise: Promise<void>; resolve: () => void; reject: (error: unknown) => void } | null = null;
  readonly #pruneTimer: ReturnType<typeof setInterval>;
  readonly #q: {
    insertEvent: Statement;
    byIds: Statement<Row>;
    get: Statement<Row>;
    markRead: Statement;
    markAll: Statement;
    clearReads: Statement;
    readUpTo: Statement<{ up_to: number }>;
    readsIn: Statement<{ event_id: number }>;
  };

  /** Opens (or creates) the log at `path`; `:memory:` for a throwaway database. */
  constructor(path: string, options: SqliteOptions) {
    this.#retention = options.retention;
    this.#db = new Database(path, { create: true, strict: true });
    this.#db.run("PRAGMA journal_mode = WAL");
    this.#db.run(`PRAGMA synchronous = ${options.sync === "full" ? "FULL" : "NORMAL"}`);
    this.#db.run("PRAGMA busy_timeout = 5000");
    // Checkpoint every 10,000 pages (40 MB) rather than 1,000: fewer, larger checkpoints; the WAL
    // file is cut back to 64 MB after one.
    this.#db.run("PRAGMA wal_autocheckpoint = 10000");
    this.#db.run("PRAGMA journal_size_limit = 67108864");
    this.#db.exec(OLD_INDEX);
    this.#db.exec(SCHEMA);
    // `meta.value` has integer affinity; an epoch starts with a letter, so it stays text.
    this.#db.run("INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)", [newEpoch()]);
    this.#epoch = String(this.#db.query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'epoch'").get()!.value);
    const dropped = this.#db.query<{ value: number }, []>("SELECT value FROM meta WHERE key = 'dropped_up_to'").get()?.value ?? 0;
    let last = 0;
    // Rows as arrays, the quickest read: 100,000 events index in about 100 ms.
    for (const row of this.#db.query("SELECT id, event, channels FROM events WHERE id > ? ORDER BY id").values(dropped)) {
      const [id, event, channels] = row as [number, string, string];
      this.#index.add(id, JSON.parse(channels) as Channel[], event);
      last = id;
    }
    this.#committedId = Math.max(last, dropped);
    this.#nextId = this.#committedId + 1;
    this.#droppedUpTo = dropped;
    const idsOf = "SELECT value FROM json_each($ids)";
    this.#q = {
      // Positional parameters on the append path: binding them is cheaper than binding an object.
      insertEvent: this.#db.prepare("INSERT INTO events (id, at, event, data, channels) VALUES (?, ?, ?, ?, ?)"),
      byIds: this.#db.prepare<Row, Record<string, string>>(`SELECT * FROM events WHERE id IN (${idsOf})`),
      get: this.#db.prepare<Row, Record<string, number>>("SELECT * FROM events WHERE id = $id"),
      markRead: this.#db.prepare("INSERT OR IGNORE INTO reads (user, event_id) VALUES ($user, $id)"),
      markAll: this.#db.prepare(
        "INSERT INTO read_marks (user, up_to) VALUES ($user, $upTo) ON CONFLICT (user) DO UPDATE SET up_to = MAX(up_to, excluded.up_to)",
      ),
      clearReads: this.#db.prepare("DELETE FROM reads WHERE user = $user AND event_id <= $upTo"),
      readUpTo: this.#db.prepare<{ up_to: number }, Record<string, string>>("SELECT up_to FROM read_marks WHERE user = $user"),
      readsIn: this.#db.prepare<{ event_id: number }, Record<string, string>>(`SELECT event_id FROM reads WHERE user = $user AND event_id IN (${idsOf})`),
    };
    this.#prune(Date.now());
    this.#pruneTimer = setInterval(() => this.#prune(Date.now()), PRUNE_EVERY_MS);
    this.#pruneTimer.unref();
  }

  async append(event: NewEvent, render?: Render): Promise<StoredEvent> {
    const id = this.#nextId++;
    const stored = { ...event, id, epoch: this.#epoch, data: typeof render === "function" ? render(id) : (render ?? event.data) };
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
        for (const event of events) this.#q.insertEvent.run(event.id, event.at, event.event, event.data, JSON.stringify(event.channels));
      })();
      for (const event of events) this.#index.add(event.id, event.channels, event.event);
      this.#committedId = events.at(-1)?.id ?? this.#committedId;
      batch.resolve();
    } catch (error) {
      batch.reject(error);
    }
  }

  async flush(): Promise<void> {
    await this.#batch?.promise;
  }

  async epoch(): Promise<string> {
    return this.#epoch;
  }

  async lastId(): Promise<number> {
    return this.#committedId;
  }

  async covers(epoch: string, afterId: number): Promise<boolean> {
    return epoch === this.#epoch && Number.isSafeInteger(afterId) && afterId >= this.#droppedUpTo && afterId <= this.#committedId;
  }

  /** The events with `ids` that are still kept, in the order of `ids`. */
  #byIds(ids: readonly number[]): StoredEvent[] {
    if (ids.length === 0) return [];
    const rows = new Map(this.#q.byIds.all({ ids: JSON.stringify(ids) }).map((row) => [row.id, row]));
    const events: StoredEvent[] = [];
    for (const id of ids) {
      const row = rows.get(id);
      if (row) events.push(fromRow(row, this.#epoch));
    }
    return events;
  }

  async readAfter(afterId: number, channels: readonly Channel[], limit: number): Promise<StoredEvent[]> {
    return this.#byIds(this.#index.after(afterId, channels, limit));
  }

  async backlog(afterId: number, channels: readonly Channel[], max: number): Promise<number> {
    return this.#index.after(afterId, channels, max).length;
  }

  async latest(channels: readonly Channel[], event: string, limit: number, upTo?: number): Promise<StoredEvent[]> {
    return this.#byIds(this.#index.newest(channels, event, { upTo, limit }));
  }

  #get(id: number): StoredEvent | undefined {
    const row = this.#q.get.get({ id });
    return row ? fromRow(row, this.#epoch) : undefined;
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
    const ids = this.#index.newest(channels, event, { above: this.#readUpTo(user) });
    if (ids.length === 0) return 0;
    return ids.length - (await this.readIds(user, ids)).size;
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
      this.#db.run("DELETE FROM reads WHERE event_id <= ?", [upTo]);
      this.#db.run("INSERT INTO meta (key, value) VALUES ('dropped_up_to', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [upTo]);
    })();
    this.#droppedUpTo = upTo;
    this.#index.dropUpTo(upTo);
  }

  async close(): Promise<void> {
    clearInterval(this.#pruneTimer);
    this.#commit();
    this.#db.close();
  }
}
