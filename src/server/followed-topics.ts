/**
 * The topics each signed-in user follows on the home page, kept where the event log is (as read
 * marks are), so that the page follows them again wherever the user comes back from: the top
 * bar's links, a new tab, another process. Anonymous visitors have only the address.
 */
import type { Database } from "bun:sqlite";
import type { RedisClient } from "bun";
import { CORE_DEFAULTS } from "../core/defaults.ts";
import { connectionTo } from "../core/eventlog/sqlite.ts";
import { RedisUnavailableError, withinTimeout, redisClient } from "../core/eventlog/redis.ts";

export interface FollowedTopics {
  /** The topics `user` chose last, or `null` when they never chose. */
  get(user: string): Promise<string[] | null>;
  /** Keeps `topics` (parsed names; empty to follow none) as `user`'s choice. */
  set(user: string, topics: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/** Topics as stored: the names joined by commas (a topic name has none). */
function split(stored: string): string[] {
  return stored === "" ? [] : stored.split(",");
}

/** For the memory log: one process, gone on restart. */
export class MemoryFollowedTopics implements FollowedTopics {
  readonly #topics = new Map<string, string[]>();

  async get(user: string): Promise<string[] | null> {
    return this.#topics.get(user) ?? null;
  }

  async set(user: string, topics: readonly string[]): Promise<void> {
    this.#topics.set(user, [...topics]);
  }

  async close(): Promise<void> {}
}

/** A table in the sqlite log's file, through the log's connection. */
export class SqliteFollowedTopics implements FollowedTopics {
  readonly #db: Database;
  readonly #owned: boolean;

  /** `database`: the sqlite log's own connection, or a file to open. */
  constructor(database: Database | string) {
    ({ db: this.#db, owned: this.#owned } = connectionTo(database));
    this.#db.run("CREATE TABLE IF NOT EXISTS followed_topics (user TEXT PRIMARY KEY, topics TEXT NOT NULL)");
  }

  async get(user: string): Promise<string[] | null> {
    const row = this.#db
      .query<{ topics: string }, [string]>("SELECT topics FROM followed_topics WHERE user = ?")
      .get(user);
    return row ? split(row.topics) : null;
  }

  async set(user: string, topics: readonly string[]): Promise<void> {
    this.#db
      .query(
        "INSERT INTO followed_topics (user, topics) VALUES (?1, ?2) ON CONFLICT (user) DO UPDATE SET topics = excluded.topics",
      )
      .run(user, topics.join(","));
  }

  async close(): Promise<void> {
    if (this.#owned) this.#db.close();
  }
}

/** In Redis: one hash, user → topics. */
export class RedisFollowedTopics implements FollowedTopics {
  readonly #redis: RedisClient;
  readonly #key: string;
  readonly #timeoutMs: number;

  constructor(url: string, prefix = "herald:", timeoutMs: number = CORE_DEFAULTS.redisTimeoutMs) {
    this.#redis = redisClient(url);
    this.#key = `${prefix}followed-topics`;
    this.#timeoutMs = timeoutMs;
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

  async get(user: string): Promise<string[] | null> {
    const stored = await this.#run((redis) => redis.send("HGET", [this.#key, user]));
    return typeof stored === "string" ? split(stored) : null;
  }

  async set(user: string, topics: readonly string[]): Promise<void> {
    await this.#run((redis) => redis.send("HSET", [this.#key, user, topics.join(",")]));
  }

  async close(): Promise<void> {
    this.#redis.close();
  }
}
