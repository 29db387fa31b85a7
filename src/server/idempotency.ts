/**
 * Safe retries for the publish API: a request that carries an `Idempotency-Key` (or an
 * `idempotency_key` field) is published once; a repeat within the event log's retention is
 * answered with the first one's answer and publishes nothing. Keys are kept where the event log
 * is, so a retry that reaches another process is recognised too.
 *
 * A key is claimed before the publish (so two copies sent at once cannot both publish: the
 * second is told to retry), given the answer once it is durable, and released if the publish
 * failed (so the client's retry can publish).
 */
import type { Database } from "bun:sqlite";
import type { RedisClient } from "bun";
import { CORE_DEFAULTS } from "../core/defaults.ts";
import { connectionTo } from "../core/eventlog/sqlite.ts";
import { RedisUnavailableError, withinTimeout, redisClient } from "../core/eventlog/redis.ts";

export type Claim = { state: "new" } | { state: "pending" } | { state: "done"; answer: string };

export interface IdempotencyKeys {
  /** Claims `key` for `ttlMs`: `new` (publish), `pending` (a copy is being published), or the first answer. */
  claim(key: string, ttlMs: number): Promise<Claim>;
  /** Records the answer of the publish that claimed `key`. */
  finish(key: string, answer: string, ttlMs: number): Promise<void>;
  /** Gives `key` up after a failed publish, so that a retry publishes. */
  release(key: string): Promise<void>;
  close(): Promise<void>;
}

/** For the memory log: one process. */
export class MemoryIdempotencyKeys implements IdempotencyKeys {
  readonly #keys = new Map<string, { answer: string | null; until: number }>();

  async claim(key: string, ttlMs: number): Promise<Claim> {
    const now = Date.now();
    const kept = this.#keys.get(key);
    if (kept && kept.until > now)
      return kept.answer === null ? { state: "pending" } : { state: "done", answer: kept.answer };
    this.#keys.set(key, { answer: null, until: now + ttlMs });
    // Forget expired keys now and then, so the map follows the retention window.
    if (this.#keys.size % 1024 === 0) for (const [k, v] of this.#keys) if (v.until <= now) this.#keys.delete(k);
    return { state: "new" };
  }

  async finish(key: string, answer: string, ttlMs: number): Promise<void> {
    this.#keys.set(key, { answer, until: Date.now() + ttlMs });
  }

  async release(key: string): Promise<void> {
    this.#keys.delete(key);
  }

  async close(): Promise<void> {}
}

/** A table in the sqlite log's file, through the log's connection. */
export class SqliteIdempotencyKeys implements IdempotencyKeys {
  readonly #db: Database;
  readonly #owned: boolean;

  /** `database`: the sqlite log's own connection, or a file to open. */
  constructor(database: Database | string) {
    ({ db: this.#db, owned: this.#owned } = connectionTo(database));
    this.#db.run(
      "CREATE TABLE IF NOT EXISTS idempotency_keys (key TEXT PRIMARY KEY, answer TEXT, expires_at INTEGER NOT NULL) WITHOUT ROWID",
    );
  }

  async claim(key: string, ttlMs: number): Promise<Claim> {
    const now = Date.now();
    return this.#db
      .transaction((): Claim => {
        const kept = this.#db
          .query<{ answer: string | null; expires_at: number }, [string]>(
            "SELECT answer, expires_at FROM idempotency_keys WHERE key = ?",
          )
          .get(key);
        if (kept && kept.expires_at > now)
          return kept.answer === null ? { state: "pending" } : { state: "done", answer: kept.answer };
        this.#db
          .query("INSERT OR REPLACE INTO idempotency_keys (key, answer, expires_at) VALUES (?, NULL, ?)")
          .run(key, now + ttlMs);
        this.#db.query("DELETE FROM idempotency_keys WHERE expires_at <= ?").run(now);
        return { state: "new" };
      })
      .immediate();
  }

  async finish(key: string, answer: string, ttlMs: number): Promise<void> {
    this.#db
      .query("UPDATE idempotency_keys SET answer = ?, expires_at = ? WHERE key = ?")
      .run(answer, Date.now() + ttlMs, key);
  }

  async release(key: string): Promise<void> {
    this.#db.query("DELETE FROM idempotency_keys WHERE key = ?").run(key);
  }

  async close(): Promise<void> {
    if (this.#owned) this.#db.close();
  }
}

/** One key per request, expiring with the retention window: empty while pending, then the answer. */
export class RedisIdempotencyKeys implements IdempotencyKeys {
  readonly #redis: RedisClient;
  readonly #prefix: string;
  readonly #timeoutMs: number;

  constructor(url: string, prefix: string, timeoutMs: number = CORE_DEFAULTS.redisTimeoutMs) {
    this.#redis = redisClient(url);
    this.#prefix = `${prefix}idempotency:`;
    this.#timeoutMs = timeoutMs;
  }

  #run<T>(command: (redis: RedisClient) => Promise<T>): Promise<T> {
    const run = async () => {
      if (!this.#redis.connected) await this.#redis.connect();
      return command(this.#redis);
    };
    return withinTimeout(run(), this.#timeoutMs).catch((error: unknown) => {
      throw error instanceof RedisUnavailableError ? error : new RedisUnavailableError();
    });
  }

  async claim(key: string, ttlMs: number): Promise<Claim> {
    const set = await this.#run((redis) => redis.send("SET", [this.#prefix + key, "", "NX", "PX", String(ttlMs)]));
    if (set === "OK") return { state: "new" };
    const answer = await this.#run((redis) => redis.get(this.#prefix + key));
    // Gone between the two commands (expired): take it again.
    if (answer === null) return this.claim(key, ttlMs);
    return answer === "" ? { state: "pending" } : { state: "done", answer };
  }

  async finish(key: string, answer: string, ttlMs: number): Promise<void> {
    await this.#run((redis) => redis.send("SET", [this.#prefix + key, answer, "PX", String(ttlMs)]));
  }

  async release(key: string): Promise<void> {
    await this.#run((redis) => redis.del(this.#prefix + key));
  }

  async close(): Promise<void> {
    this.#redis.close();
  }
}
