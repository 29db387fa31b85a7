/**
 * The durable event log on `bun:sqlite`, in WAL mode. Appends wait in memory for the current
 * tick to end and are then committed together in one transaction: one write per batch, not per
 * event, so the log does not cap publish throughput.
 *
 * Channels and event names are stored as numbers (table `names`) in the per-channel index: an
 * event lands in as many places in that index as it has channels, and small integer keys make
 * each of those inserts about three times cheaper than text keys. A log written by an earlier
 * version, with text keys, is converted when it is opened.
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
  channel INTEGER NOT NULL,
  event_id INTEGER NOT NULL,
  event INTEGER NOT NULL,
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

/** Channel and event names by number, for `event_channels`. */
const NAMES = "CREATE TABLE IF NOT EXISTS names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)";

/** Converts an `event_channels` table with text keys (as earlier builds of herald wrote it) to numbered names. */
const FROM_TEXT_KEYS = `
INSERT OR IGNORE INTO names (name) SELECT DISTINCT channel FROM event_channels;
INSERT OR IGNORE INTO names (name) SELECT DISTINCT event FROM event_channels;
DROP INDEX IF EXISTS event_channels_by_name;
ALTER TABLE event_channels RENAME TO event_channels_text;
CREATE TABLE event_channels (
  channel INTEGER NOT NULL,
  event_id INTEGER NOT NULL,
  event INTEGER NOT NULL,
  PRIMARY KEY (channel, event_id)
) WITHOUT ROWID;
INSERT INTO event_channels (channel, event_id, event)
  SELECT c.id, t.event_id, e.id FROM event_channels_text t JOIN names c ON c.name = t.channel JOIN names e ON e.name = t.event;
DROP TABLE event_channels_text;
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
  /** Every name in `names` by its number; only this process writes the log, so this is all of them. */
  readonly #names = new Map<string, number>();
  #batch: { promise: Promise<void>; resolve: () => void; reject: (error: unknown) => void } | null = null;
  readonly #pruneTimer: ReturnType<typeof setInterval>;
  readonly #insertName: Statement;
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
    // Checkpoint every 10,000 pages (40 MB) rather than 1,000: the per-channel index's pages are
    // written back once per checkpoint however often they changed, so fewer checkpoints write
    // less (12 → 9 µs an event on 1,000 channels); the WAL file is cut back to 64 MB after one.
    this.#db.run("PRAGMA wal_autocheckpoint = 10000");
    this.#db.run("PRAGMA journal_size_limit = 67108864");
    this.#db.run(NAMES);
    const channelType = this.#db.query<{ type: string }, []>("SELECT type FROM pragma_table_info('event_channels') WHERE name = 'channel'").get()?.type;
    if (channelType === "TEXT") this.#db.transaction(() => this.#db.exec(FROM_TEXT_KEYS))();
    this.#db.exec(SCHEMA);
    for (const { id, name } of this.#db.query<{ id: number; name: string }, []>("SELECT id, name FROM names").all()) this.#names.set(name, id);
    const last = this.#db.query<{ id: number | null }, []>("SELECT MAX(id) AS id FROM events").get()?.id ?? 0;
    const dropped = this.#db.query<{ value: number }, []>("SELECT value FROM meta WHERE key = 'dropped_up_to'").get()?.value ?? 0;
    this.#committedId = Math.max(last, dropped);
    this.#nextId = this.#committedId + 1;
    this.#droppedUpTo = dropped;
    const channelsOf = "SELECT value FROM json_each($channels)";
    this.#insertName = this.#db.prepare("INSERT INTO names (name) VALUES (?)");
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
          const name = this.#nameId(event.event);
          for (const channel of event.channels) this.#q.insertChannel.run(this.#nameId(channel), event.id, name);
        }
      })();
      this.#committedId = events.at(-1)?.id ?? this.#committedId;
      batch.resolve();
    } catch (error) {
      batch.reject(error);
    }
  }

  /** The number of a channel or event name, numbering it if it is new (inside the commit's transaction). */
  #nameId(name: string): number {
    let id = this.#names.get(name);
    if (id === undefined) {
      id = Number(this.#insertName.run(name).lastInsertRowid);
      this.#names.set(name, id);
    }
    return id;
  }

  /** The numbers of those of `channels` that have ever had an event, as JSON for `json_each`. */
  #channelIds(channels: readonly Channel[]): string {
    const ids: number[] = [];
    for (const channel of channels) {
      const id = this.#names.get(channel);
      if (id !== undefined) ids.push(id);
    }
    return JSON.stringify(ids);
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
    return this.#q.readAfter.all({ channels: this.#channelIds(channels), after: afterId, limit }).map(fromRow);
  }

  async latest(channels: readonly Channel[], event: string, limit: number, upTo = Number.MAX_SAFE_INTEGER): Promise<StoredEvent[]> {
    // Newest ids per channel through the (channel, event, event_id) index, each scan stopping at
    // `limit`; then the newest of those overall. One query over all channels would sort them all.
    const ids = new Set<number>();
    const eventId = this.#names.get(event);
    if (eventId === undefined) return [];
    for (const name of new Set(channels)) {
      const channel = this.#names.get(name);
      if (channel !== undefined) for (const row of this.#q.latestIds.all({ channel, event: eventId, upTo, limit })) ids.add(row.event_id);
    }
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
    const eventId = this.#names.get(event);
    if (eventId === undefined) return 0;
    return this.#q.unread.get({ user, channels: this.#channelIds(channels), upTo: this.#readUpTo(user), event: eventId })?.n ?? 0;
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
