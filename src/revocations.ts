/**
 * Ended sessions: a session id is recorded here at sign-out, until the moment its cookie would
 * have expired anyway, and a cookie whose session is here is anonymous. Kept where the event log
 * is, so that every process of one herald honours a sign-out: in memory for the memory log, in
 * the sqlite log's file, or in Redis.
 */
import { Database } from "bun:sqlite";
import { RedisClient } from "bun";
import { RedisUnavailableError } from "./eventlog/redis.ts";

export interface Revocations {
  /** Ends session `sid`; `expiresAt` (ms) is when its cookie expires anyway. */
  revoke(sid: string, expiresAt: number): Promise<void>;
  /** Whether session `sid` was ended. */
  isRevoked(sid: string): Promise<boolean>;
  close(): Promise<void>;
}

/** For the memory event log: one process, forgotten on restart, as its events are. */
export class MemoryRevocations implements Revocations {
  readonly #ended = new Map<string, number>();

  async revoke(sid: string, expiresAt: number): Promise<void> {
    this.#ended.set(sid, expiresAt);
    // Forget sessions that have expired anyway, so the map follows sign-outs of the last TTL only.
    const now = Date.now();
    for (const [id, at] of this.#ended) if (at <= now) this.#ended.delete(id);
  }

  async isRevoked(sid: string): Promise<boolean> {
    const at = this.#ended.get(sid);
    return at !== undefined && at > Date.now();
  }

  async close(): Promise<void> {}
}

/** A table in the sqlite event log's file, through a connection of its own. */
export class SqliteRevocations implements Revocations {
  readonly #db: Database;

  constructor(path: string) {
    this.#db = new Database(path);
    this.#db.run("PRAGMA busy_timeout = 5000");
    this.#db.run("PRAGMA journal_mode = WAL");
    this.#db.run("CREATE TABLE IF NOT EXISTS revoked_sessions (sid TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID");
  }

  async revoke(sid: string, expiresAt: number): Promise<void> {
    this.#db.query("INSERT OR REPLACE INTO revoked_sessions (sid, expires_at) VALUES (?, ?)").run(sid, expiresAt);
    this.#db.query("DELETE FROM revoked_sessions WHERE expires_at <= ?").run(Date.now());
  }

  async isRevoked(sid: string): Promise<boolean> {
    return this.#db.query("SELECT 1 FROM revoked_sessions WHERE sid = ? AND expires_at > ?").get(sid, Date.now()) !== null;
  }

  async close(): Promise<void> {
    this.#db.close();
  }
}

const REDIS_WAIT_MS = 2_000;

/** One key per ended session, expiring with it. */
export class RedisRevocations implements Revocations {
  readonly #redis: RedisClient;
  readonly #prefix: string;

  constructor(url: string, prefix: string) {
    // Like the event log's client: refuse at once while Redis is away rather than hold requests.
    this.#redis = new RedisClient(url, { enableOfflineQueue: false, autoReconnect: true, maxRetries: 4_294_967_295, connectionTimeout: 3_000 });
    this.#prefix = `${prefix}revoked:`;
  }

  /**
   * Runs a command, connecting first; an unreachable or silent Redis is `RedisUnavailableError`
   * (a 503 for the request), never a guess that the session is still valid.
   */
  async #run<T>(command: (redis: RedisClient) => Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RedisUnavailableError()), REDIS_WAIT_MS);
    });
    try {
      if (!this.#redis.connected) await Promise.race([this.#redis.connect(), silent]);
      return await Promise.race([command(this.#redis), silent]);
    } catch (error) {
      throw error instanceof RedisUnavailableError ? error : new RedisUnavailableError();
    } finally {
      clearTimeout(timer);
    }
  }

  async revoke(sid: string, expiresAt: number): Promise<void> {
    const ttl = Math.max(1, expiresAt - Date.now());
    await this.#run((redis) => redis.send("SET", [this.#prefix + sid, "1", "PX", String(ttl)]));
  }

  async isRevoked(sid: string): Promise<boolean> {
    return (await this.#run((redis) => redis.exists(this.#prefix + sid))) === true;
  }

  async close(): Promise<void> {
    this.#redis.close();
  }
}
