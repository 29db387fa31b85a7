/**
 * Presence across processes: with `REDIS_URL`, every herald process writes its own counts (open
 * streams, per user, per topic) to Redis every `intervalMs`, under a key that expires after
 * `ttlMs`. Any process sums the live keys, so all of them answer the same, and a process that
 * dies stops being counted once its key expires.
 */
import type { RedisClient } from "bun";
import { withinTimeout, redisClient } from "./eventlog/redis.ts";
import { CORE_DEFAULTS } from "./defaults.ts";
import { topicChannel } from "./channel.ts";
import type { Hub, PresenceCounts } from "./hub.ts";

export interface PresenceOptions {
  url: string;
  /** Prefix of herald's Redis keys. */
  prefix: string;
  /** Milliseconds between writes of this process's counts. Defaults to `2000`. */
  intervalMs?: number;
  /** Milliseconds after which a silent process is no longer counted. Defaults to three intervals. */
  ttlMs?: number;
  /** How long a command may take before it fails (a Redis that hangs). Defaults to `2000`. */
  timeoutMs?: number;
  /** Topics whose members (the users with a stream on them) are written too, not only counted. Defaults to none. */
  members?: (topic: string) => boolean;
}

/** Counts summed over every live process, and the members of the topics `members` names. */
export interface ClusterCounts extends PresenceCounts {
  processes: number;
  members: Record<string, string[]>;
}

export class RedisPresence {
  readonly #redis: RedisClient;
  readonly #hub: Hub;
  readonly #key: string;
  readonly #pattern: string;
  readonly #ttlMs: number;
  readonly #timeoutMs: number;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #members: (topic: string) => boolean;

  constructor(hub: Hub, options: PresenceOptions) {
    this.#members = options.members ?? (() => false);
    this.#redis = redisClient(options.url);
    this.#hub = hub;
    const intervalMs = options.intervalMs ?? CORE_DEFAULTS.presenceMs;
    this.#ttlMs = options.ttlMs ?? intervalMs * 3;
    this.#timeoutMs = options.timeoutMs ?? CORE_DEFAULTS.redisTimeoutMs;
    this.#pattern = `${options.prefix}presence:*`;
    this.#key = `${options.prefix}presence:${process.pid}-${crypto.randomUUID().slice(0, 8)}`;
    this.#timer = setInterval(() => void this.publish(), intervalMs);
    this.#timer.unref();
    void this.publish();
  }

  /** Writes this process's counts now. Failures (Redis away) wait for the next turn. */
  async publish(): Promise<void> {
    try {
      if (!this.#redis.connected) await this.#redis.connect();
      await withinTimeout(
        this.#redis.send("SET", [this.#key, JSON.stringify(this.#payload()), "PX", String(this.#ttlMs)]),
        this.#timeoutMs,
      );
    } catch {
      // Redis is unreachable: this process drops out of the totals until it is back.
    }
  }

  /** This process's counts, and the members of the topics `members` names. */
  #payload(): PresenceCounts & { members: Record<string, string[]> } {
    const counts = this.#hub.counts();
    const members: Record<string, string[]> = Object.create(null);
    for (const topic of Object.keys(counts.topics)) {
      if (this.#members(topic)) members[topic] = this.#hub.usersOn(topicChannel(topic)).users;
    }
    return { ...counts, members };
  }

  /**
   * The counts of every live process, summed; fails with `RedisUnavailableError` when Redis does not answer in time.
   */
  totals(): Promise<ClusterCounts> {
    return withinTimeout(this.#totals(), this.#timeoutMs);
  }

  async #totals(): Promise<ClusterCounts> {
    if (!this.#redis.connected) await this.#redis.connect();
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, found] = (await this.#redis.send("SCAN", [cursor, "MATCH", this.#pattern, "COUNT", "1000"])) as [
        string,
        string[],
      ];
      keys.push(...found);
      cursor = next;
    } while (cursor !== "0");
    const totals: ClusterCounts = {
      processes: 0,
      clients: 0,
      users: Object.create(null),
      topics: Object.create(null),
      members: Object.create(null),
    };
    if (keys.length === 0) return totals;
    const values = (await this.#redis.send("MGET", keys)) as Array<string | null>;
    for (const value of values) {
      if (!value) continue;
      const counts = JSON.parse(value) as PresenceCounts & { members?: Record<string, string[]> };
      totals.processes++;
      totals.clients += counts.clients;
      for (const [user, n] of Object.entries(counts.users)) totals.users[user] = (totals.users[user] ?? 0) + n;
      for (const [topic, n] of Object.entries(counts.topics)) totals.topics[topic] = (totals.topics[topic] ?? 0) + n;
      for (const [topic, users] of Object.entries(counts.members ?? {})) {
        totals.members[topic] = [...new Set([...(totals.members[topic] ?? []), ...users])].sort();
      }
    }
    return totals;
  }

  /** Whether a user has a stream open on any process. */
  async isConnected(userId: string): Promise<boolean> {
    return ((await this.totals()).users[userId] ?? 0) > 0;
  }

  /** Stops writing and removes this process's key. `vanish` leaves the key to expire, as a crash would. */
  async close(vanish = false): Promise<void> {
    clearInterval(this.#timer);
    if (!vanish) await withinTimeout(this.#redis.send("DEL", [this.#key]), this.#timeoutMs).catch(() => {});
    this.#redis.close();
  }
}
