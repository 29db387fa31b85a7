/**
 * Read marks: which events each user has read, apart from the event log that holds the events.
 * A user's marks are a watermark (every event up to `readUpTo` is read: "mark all read") and the
 * single events read above it. Kept where the event log is, so every process sees the same:
 * in memory, in the sqlite log's file (tables `read_marks` and `reads`, through a connection of
 * its own), or in Redis (a hash of watermarks and a sorted set per user).
 */
import type { Database } from "bun:sqlite";
import type { RedisClient } from "bun";
import { CORE_DEFAULTS } from "./defaults.ts";
import { connectionTo } from "./eventlog/sqlite.ts";
import { RedisUnavailableError, withinTimeout, redisClient } from "./eventlog/redis.ts";

export interface ReadMarks {
  /** Marks one event read for a user. */
  markRead(user: string, id: number): Promise<void>;
  /** Marks every event up to `upTo` read for a user. */
  markAllRead(user: string, upTo: number): Promise<void>;
  /** The id up to which the user has read everything (0 when nothing). */
  readUpTo(user: string): Promise<number>;
  /** Which of `ids` the user has read. */
  readIds(user: string, ids: readonly number[]): Promise<Set<number>>;
  close(): Promise<void>;
}

/** For the memory log: one process, gone on restart, as its events are. */
export class MemoryReadMarks implements ReadMarks {
  readonly #upTo = new Map<string, number>();
  readonly #read = new Map<string, Set<number>>();

  async markRead(user: string, id: number): Promise<void> {
    let read = this.#read.get(user);
    if (!read) this.#read.set(user, (read = new Set()));
    read.add(id);
  }

  async markAllRead(user: string, upTo: number): Promise<void> {
    this.#upTo.set(user, Math.max(upTo, this.#upTo.get(user) ?? 0));
    // Marks above `upTo` stay: they are not covered by it.
    const read = this.#read.get(user);
    if (read) for (const id of read) if (id <= upTo) read.delete(id);
  }

  async readUpTo(user: string): Promise<number> {
    return this.#upTo.get(user) ?? 0;
  }

  async readIds(user: string, ids: readonly number[]): Promise<Set<number>> {
    const upTo = this.#upTo.get(user) ?? 0;
    const read = this.#read.get(user);
    return new Set(ids.filter((id) => id <= upTo || (read?.has(id) ?? false)));
  }

  async close(): Promise<void> {}
}

/**
 * In the sqlite log's file, through the log's connection. The log's retention prune deletes
 * the single marks of the events it drops, as they are in its file.
 */
export class SqliteReadMarks implements ReadMarks {
  readonly #db: Database;
  readonly #owned: boolean;

  /** `database`: the sqlite log's own connection (see `SqliteEventLog.database`), or a file to open. */
  constructor(database: Database | string) {
    ({ db: this.#db, owned: this.#owned } = connectionTo(database));
    this.#db.run("CREATE TABLE IF NOT EXISTS read_marks (user TEXT PRIMARY KEY, up_to INTEGER NOT NULL)");
    this.#db.run(
      "CREATE TABLE IF NOT EXISTS reads (user TEXT NOT NULL, event_id INTEGER NOT NULL, PRIMARY KEY (user, event_id)) WITHOUT ROWID",
    );
  }

  async markRead(user: string, id: number): Promise<void> {
    this.#db.query("INSERT OR IGNORE INTO reads (user, event_id) VALUES (?, ?)").run(user, id);
  }

  async markAllRead(user: string, upTo: number): Promise<void> {
    this.#db.transaction(() => {
      this.#db
        .query(
          "INSERT INTO read_marks (user, up_to) VALUES (?1, ?2) ON CONFLICT (user) DO UPDATE SET up_to = MAX(up_to, excluded.up_to)",
        )
        .run(user, upTo);
      this.#db.query("DELETE FROM reads WHERE user = ? AND event_id <= ?").run(user, upTo);
    })();
  }

  async readUpTo(user: string): Promise<number> {
    return (
      this.#db.query<{ up_to: number }, [string]>("SELECT up_to FROM read_marks WHERE user = ?").get(user)?.up_to ?? 0
    );
  }

  async readIds(user: string, ids: readonly number[]): Promise<Set<number>> {
    const upTo = await this.readUpTo(user);
    const read = new Set(ids.filter((id) => id <= upTo));
    const rows = this.#db
      .query<{ event_id: number }, [string, string]>(
        "SELECT event_id FROM reads WHERE user = ? AND event_id IN (SELECT value FROM json_each(?))",
      )
      .all(user, JSON.stringify(ids));
    for (const row of rows) read.add(row.event_id);
    return read;
  }

  async close(): Promise<void> {
    if (this.#owned) this.#db.close();
  }
}

export interface RedisReadMarksOptions {
  url: string;
  /** Prefix of herald's keys. Defaults to `herald:`. */
  prefix?: string;
  /** Past this, a command fails with `RedisUnavailableError`. Defaults to `2000` ms. */
  timeoutMs?: number;
}

/** In Redis: a hash of each user's watermark, and a sorted set of each user's single marks. */
export class RedisReadMarks implements ReadMarks {
  readonly #redis: RedisClient;
  readonly #upToKey: string;
  readonly #readPrefix: string;
  readonly #timeoutMs: number;

  constructor(options: RedisReadMarksOptions) {
    const prefix = options.prefix ?? "herald:";
    // Refuse at once while Redis is away (a 503 for the request) rather than queue commands.
    this.#redis = redisClient(options.url);
    this.#upToKey = `${prefix}read-up-to`;
    this.#readPrefix = `${prefix}read:`;
    this.#timeoutMs = options.timeoutMs ?? CORE_DEFAULTS.redisTimeoutMs;
  }

  /** Runs `command` once connected; an unreachable or silent Redis is `RedisUnavailableError`. */
  #run<T>(command: (redis: RedisClient) => Promise<T>): Promise<T> {
    const run = async () => {
      if (!this.#redis.connected) await this.#redis.connect();
      return command(this.#redis);
    };
    return withinTimeout(run(), this.#timeoutMs).catch((error: unknown) => {
      throw error instanceof RedisUnavailableError ? error : new RedisUnavailableError();
    });
  }

  async markRead(user: string, id: number): Promise<void> {
    await this.#run((redis) => redis.send("ZADD", [this.#readPrefix + user, String(id), String(id)]));
  }

  async markAllRead(user: string, upTo: number): Promise<void> {
    await this.#run((redis) =>
      redis.eval(
        "local c = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') if tonumber(ARGV[2]) > c then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2]) return 1",
        2,
        this.#upToKey,
        this.#readPrefix + user,
        user,
        String(upTo),
      ),
    );
  }

  async readUpTo(user: string): Promise<number> {
    return Number((await this.#run((redis) => redis.send("HGET", [this.#upToKey, user]))) ?? 0);
  }

  async readIds(user: string, ids: readonly number[]): Promise<Set<number>> {
    if (ids.length === 0) return new Set();
    const [upTo, scores] = await this.#run((redis) =>
      Promise.all([
        redis.send("HGET", [this.#upToKey, user]),
        redis.send("ZMSCORE", [this.#readPrefix + user, ...ids.map(String)]) as Promise<Array<string | number | null>>,
      ]),
    );
    const watermark = Number(upTo ?? 0);
    return new Set(ids.filter((id, i) => id <= watermark || scores[i] !== null));
  }

  async close(): Promise<void> {
    this.#redis.close();
  }
}
