/**
 * Ended sessions: a session id is recorded here at sign-out, until the moment its cookie would
 * have expired anyway, and a cookie whose session is here is anonymous. Kept where the event log
 * is, so that every process of one herald honours a sign-out: in memory for the memory log, in
 * the sqlite log's file, or in Redis (with each process's own copy for while Redis is away).
 */
import type { Database } from "bun:sqlite";
import { redisClient } from "../core/eventlog/redis.ts";
import { connectionTo } from "../core/eventlog/sqlite.ts";
import type { RedisClient } from "bun";

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
  readonly #owned: boolean;

  /** `database`: the sqlite log's own connection, or a file to open. */
  constructor(database: Database | string) {
    ({ db: this.#db, owned: this.#owned } = connectionTo(database));
    this.#db.run(
      "CREATE TABLE IF NOT EXISTS revoked_sessions (sid TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID",
    );
  }

  async revoke(sid: string, expiresAt: number): Promise<void> {
    this.#db.query("INSERT OR REPLACE INTO revoked_sessions (sid, expires_at) VALUES (?, ?)").run(sid, expiresAt);
    this.#db.query("DELETE FROM revoked_sessions WHERE expires_at <= ?").run(Date.now());
  }

  async isRevoked(sid: string): Promise<boolean> {
    return (
      this.#db.query("SELECT 1 FROM revoked_sessions WHERE sid = ? AND expires_at > ?").get(sid, Date.now()) !== null
    );
  }

  async close(): Promise<void> {
    if (this.#owned) this.#db.close();
  }
}

/** How long a check waits for a connected Redis before it goes by what this process knows. */
const REDIS_WAIT_MS = 500;
/** How often each process copies the whole list of ended sessions, for while Redis is away. */
const SYNC_MS = 30_000;

/**
 * A sorted set of ended sessions (scored by when each would expire anyway), shared by every
 * process. Each process also keeps what it knows: the sessions it ended, those Redis said were
 * ended, and a copy of the whole set taken every `SYNC_MS`. While Redis is unreachable a check
 * goes by that (a sign-out recorded before the outage still holds), and a sign-out is kept here
 * and written once Redis is back, so that pages and orders keep working through an outage.
 */
export class RedisRevocations implements Revocations {
  readonly #redis: RedisClient;
  readonly #key: string;
  readonly #known = new Map<string, number>();
  readonly #pending = new Map<string, number>();
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #warn: (message: string) => void;
  #away = false;

  constructor(url: string, prefix: string, warn: (message: string) => void = () => {}) {
    // Like the event log's client: refuse at once while Redis is away rather than hold requests.
    this.#redis = redisClient(url);
    this.#key = `${prefix}revoked-sessions`;
    this.#warn = warn;
    this.#timer = setInterval(() => void this.#sync(), SYNC_MS);
    this.#timer.unref();
    void this.#sync();
  }

  /**
   * Runs a command if Redis is there and answers in time; `undefined` otherwise. Once Redis is
   * known to be away, a request does not wait for it: the client reconnects on its own.
   */
  async #run<T>(command: (redis: RedisClient) => Promise<T>): Promise<T | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const silent = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), REDIS_WAIT_MS);
    });
    try {
      if (!this.#redis.connected) {
        const connecting = this.#redis.connect().then(() => true);
        connecting.catch(() => {});
        if (this.#away || !(await Promise.race([connecting, silent]))) {
          this.#wentAway();
          return undefined;
        }
      }
      const answer = await Promise.race([command(this.#redis), silent]);
      if (answer === undefined) this.#wentAway();
      else this.#away = false;
      return answer;
    } catch {
      this.#wentAway();
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  #wentAway(): void {
    if (this.#away) return;
    this.#away = true;
    this.#warn("Redis unreachable: sessions are checked against the sign-outs this process knows of until it is back");
  }

  /** Writes the sign-outs made while Redis was away. */
  async #flush(): Promise<void> {
    if (this.#pending.size === 0) return;
    const now = Date.now();
    const entries = [...this.#pending].filter(([, at]) => at > now);
    const args = entries.flatMap(([sid, at]) => [String(at), sid]);
    const written = args.length === 0 ? "OK" : await this.#run((redis) => redis.send("ZADD", [this.#key, ...args]));
    if (written !== undefined) for (const [sid] of entries) this.#pending.delete(sid);
  }

  async #sync(): Promise<void> {
    await this.#flush();
    const now = Date.now();
    await this.#run((redis) => redis.send("ZREMRANGEBYSCORE", [this.#key, "-inf", String(now)]));
    const all = (await this.#run((redis) =>
      redis.send("ZRANGEBYSCORE", [this.#key, String(now), "+inf", "WITHSCORES"]),
    )) as Array<string | [string, string | number]> | undefined;
    if (!all) return;
    for (const [sid, at] of this.#known) if (at <= now) this.#known.delete(sid);
    // RESP3 answers [[member, score], ...]; RESP2 a flat [member, score, ...].
    if (all.length > 0 && Array.isArray(all[0])) {
      for (const [sid, at] of all as Array<[string, string | number]>) this.#known.set(sid, Number(at));
    } else {
      for (let i = 0; i + 1 < all.length; i += 2) this.#known.set(String(all[i]), Number(all[i + 1]));
    }
  }

  async revoke(sid: string, expiresAt: number): Promise<void> {
    this.#known.set(sid, expiresAt);
    this.#pending.set(sid, expiresAt);
    await this.#flush();
  }

  async isRevoked(sid: string): Promise<boolean> {
    await this.#flush();
    const now = Date.now();
    const known = this.#known.get(sid);
    if (known !== undefined && known > now) return true;
    const score = await this.#run((redis) => redis.send("ZSCORE", [this.#key, sid]).then((value) => value ?? null));
    if (score === undefined || score === null) return false;
    this.#known.set(sid, Number(score));
    return Number(score) > now;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#redis.close();
  }
}
