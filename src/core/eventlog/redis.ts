/**
 * The event log on Redis Streams, through Bun's built-in `Bun.RedisClient`: one stream of every
 * event, `MAXLEN ~` for retention by count, and the inbox's read marks in sorted sets. Several
 * herald processes can share it.
 *
 * A replay finds a channel's events through a `ChannelIndex` in memory, as the other logs do: each
 * process builds it once from the stream's ids, event names and channels (not their data), and
 * keeps it current with what it follows. Replays read on a connection of their own, so a long
 * one never queues in front of publishes.
 *
 * Beside the stream, an index per event name and channel (a sorted set of the newest
 * `INDEX_KEEP` ids) lets a snapshot or an unread count find a channel's latest events without
 * reading the stream: the entries and their index entries are written by one script, atomically.
 *
 * Ids: a counter gives the next numbers (`INCRBY`, for the appends of one tick together), and
 * each entry is added as `n-0`, so the stream entry id and the SSE id name the same event. Redis
 * refuses an entry id at or below the stream's top, so when two processes race, the loser takes
 * new numbers and tries again: ids only ever increase along the stream, with a gap where
 * numbers were given up.
 *
 * Epoch: the key `<prefix>epoch` holds `<epoch>:<start>`, made with the first append (or by
 * whichever process first finds it missing): the epoch's name, and the counter's value when it
 * was made (ids of the epoch are above it). It lives and dies with the stream: when Redis comes
 * back empty (restarted without persistence, `FLUSHALL`, a failover to an empty replica) it is
 * gone, and the next append or the follower makes a new one. Every append checks, in its script,
 * that the epoch is still the one it took its ids in; the follower reads the key after each
 * blocking read, and on a new epoch starts over from its start.
 */
import { RedisClient } from "bun";
import type { Channel } from "../channel.ts";
import { ChannelIndex } from "./channel-index.ts";
import { newEpoch, type Position } from "./epoch.ts";
import { CORE_DEFAULTS } from "../defaults.ts";
import type { EventLog, NewEvent, Render, Retention, StoredEvent } from "./event-log.ts";

export interface RedisLogOptions {
  /** `redis://host:port`. */
  url: string;
  retention: Retention;
  /** Prefix of every key. Defaults to `herald:`. */
  prefix?: string;
  /** How long a command may take before it fails with `RedisUnavailableError`. Defaults to `2000` milliseconds. */
  timeoutMs?: number;
  /** Told about a stream entry the follower cannot read (not written by herald), which it skips. */
  onBadEntry?: (entryId: string) => void;
}

/** Entries read from the stream per request while scanning. */
const SCAN = 500;
/** Races lost in a row before an append gives up. */
const MAX_TRIES = 50;
/** How long a command waits for a connection before it fails. */
const CONNECT_WAIT_MS = 250;
/**
 * How long one blocking read of the stream waits for new entries. A read after a flush sees
 * nothing (the new epoch's ids are below the one it waits after) until it ends and the epoch is
 * checked, so this bounds how long a new epoch's events wait.
 */
const FOLLOW_BLOCK_MS = 1_000;
/** Ids kept per index (event name and channel): at least the most a page shows (`HERALD_INBOX_SIZE` ≤ 1000). */
const INDEX_KEEP = 1_000;

/**
 * Adds a batch of entries (KEYS[1] the stream, KEYS[2] the epoch; ARGV[1] the maxlen, ARGV[2] the
 * ids kept per index, ARGV[3] the epoch the ids were taken in, ARGV[4] the deadline in Unix
 * milliseconds, after which the publisher has been told the append failed, then six per event: its number,
 * at, event, channels, data, and how many index keys it has, which follow in KEYS in the same
 * order) and each id to its indexes, trimmed to the newest ARGV[2]. Returns 0, having written
 * nothing, when the first id is at or below the stream's top (another process took higher ids
 * first; the ids after it are higher, so they cannot fail so), -1 when the epoch is not ARGV[3]
 * any more (Redis lost its data since), and -2, writing nothing, past the deadline: a Redis that
 * hung (SIGSTOP, a long fork) and runs the script once it wakes must not store an event whose
 * publisher was answered 503 and may send it again. Redis's clock and herald's are compared, so
 * they must agree to well within the timeout (NTP).
 */
const APPEND_SCRIPT = `
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return -1 end
local now = redis.call('TIME')
if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[4]) then return -2 end
local key = 3
for a = 5, #ARGV, 6 do
  local n = ARGV[a]
  local added = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], n .. '-0', 'at', ARGV[a + 1], 'event', ARGV[a + 2], 'channels', ARGV[a + 3], 'data', ARGV[a + 4])
  if type(added) == 'table' and added.err then
    if a == 5 and string.find(added.err, 'equal or smaller') then return 0 end
    return redis.error_reply(added.err)
  end
  local indexes = tonumber(ARGV[a + 5])
  for i = key, key + indexes - 1 do
    redis.call('ZADD', KEYS[i], n, n)
    redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -tonumber(ARGV[2]) - 1)
  end
  key = key + indexes
end
return 1`;

/**
 * The epoch (KEYS[1]), made from ARGV[1] and the id counter (KEYS[2]) when there is none: the
 * first append, or Redis lost its data.
 */
const EPOCH_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current then return current end
current = ARGV[1] .. ':' .. (redis.call('GET', KEYS[2]) or '0')
redis.call('SET', KEYS[1], current)
return current`;

/** An epoch as the key holds it: `<name>:<start>`. */
interface Epoch {
  value: string;
  name: string;
  /** Ids of this epoch are above it. */
  start: number;
}

function parseEpoch(value: string): Epoch {
  const colon = value.indexOf(":");
  return { value, name: value.slice(0, colon), start: Number(value.slice(colon + 1)) };
}

/** Most events one append script adds. */
const APPEND_BATCH = 500;

/**
 * The stream entries with the ids in ARGV (`<n>-0`), in that order, leaving out those retention
 * trimmed: one round trip for a snapshot's events instead of one each.
 */
const ENTRIES_SCRIPT = `
local out = {}
for i = 1, #ARGV do
  local found = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if found[1] then out[#out + 1] = found[1] end
end
return out`;

/** Entries read per request while building the channel index (ids, names and channels only). */
const INDEX_PAGE = 5_000;

/**
 * Id, event name and channels of each entry of the stream (KEYS[1]) after ARGV[1] (exclusive),
 * at most ARGV[2]: what the channel index needs, without the data.
 */
const INDEX_SCRIPT = `
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
local out = {}
for _, entry in ipairs(entries) do
  local fields = entry[2]
  local name, channels = '', ''
  for i = 1, #fields, 2 do
    if fields[i] == 'event' then name = fields[i + 1] elseif fields[i] == 'channels' then channels = fields[i + 1] end
  end
  out[#out + 1] = entry[1]
  out[#out + 1] = name
  out[#out + 1] = channels
end
return out`;

/** Script SHA-1s, for `EVALSHA`: a script's text is sent only when Redis does not have it yet. */
const shas = new Map<string, string>();

/** Runs a Lua script by its SHA-1, loading it with `EVAL` when Redis answers NOSCRIPT (a restart, `SCRIPT FLUSH`). */
async function runScript(
  redis: RedisClient,
  script: string,
  keys: readonly string[],
  args: readonly string[],
): Promise<unknown> {
  let sha = shas.get(script);
  if (!sha) shas.set(script, (sha = new Bun.CryptoHasher("sha1").update(script).digest("hex")));
  try {
    return await redis.send("EVALSHA", [sha, String(keys.length), ...keys, ...args]);
  } catch (error) {
    if (!/NOSCRIPT/i.test(String(error))) throw error;
    return redis.send("EVAL", [script, String(keys.length), ...keys, ...args]);
  }
}

/**
 * A client as every part of herald opens one: it fails at once while Redis is unreachable (a
 * publish must be refused, not held and maybe lost) rather than queueing commands, and keeps
 * trying to reconnect for as long as herald runs.
 */
export function redisClient(url: string): RedisClient {
  return new RedisClient(url, {
    enableOfflineQueue: false,
    autoReconnect: true,
    maxRetries: 4_294_967_295,
    connectionTimeout: 3_000,
  });
}

/** Redis cannot be reached, or did not answer in time: nothing was stored. */
export class RedisUnavailableError extends Error {
  constructor(message = "herald: Redis is unreachable") {
    super(message);
    this.name = "RedisUnavailableError";
  }
}

/** Waits for `work` at most `ms`, then fails with `RedisUnavailableError` (a late answer is dropped). */
export function withinTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisUnavailableError(`herald: Redis did not answer within ${ms} ms`)), ms);
  });
  work.catch(() => {});
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

type Entry = [string, string[]];

type AppendOutcome = { stored: StoredEvent } | { error: unknown };

interface PendingAppend {
  event: NewEvent;
  render: Render | undefined;
  resolve: (stored: StoredEvent) => void;
  reject: (error: unknown) => void;
}

function numberOf(entryId: string): number {
  return Number(entryId.slice(0, entryId.indexOf("-")));
}

/** An entry's channels, or `null` when they do not parse (an entry not written by herald). */
function parseChannels(text: string): Channel[] | null {
  try {
    const channels: unknown = JSON.parse(text);
    return Array.isArray(channels) && channels.every((channel) => typeof channel === "string")
      ? (channels as Channel[])
      : null;
  } catch {
    return null;
  }
}

function fromEntry([entryId, fields]: Entry, epoch: string): StoredEvent {
  const value = (name: string) => fields[fields.indexOf(name) + 1] ?? "";
  return {
    id: numberOf(entryId),
    epoch,
    at: Number(value("at")),
    event: value("event"),
    channels: JSON.parse(value("channels")) as Channel[],
    data: value("data"),
  };
}

export class RedisEventLog implements EventLog {
  readonly #redis: RedisClient;
  readonly #retention: Retention;
  readonly #timeoutMs: number;
  readonly #onBadEntry: (entryId: string) => void;
  readonly #stream: string;
  readonly #counter: string;
  readonly #indexPrefix: string;
  readonly #indexed: string;
  readonly #epochKey: string;
  /** The epoch appends were last made in. */
  #epoch: Epoch | null = null;
  #backfilled: Promise<void> | null = null;
  #closed = false;
  /** Replays' own connection. */
  readonly #replayRedis: RedisClient;
  /** Each channel's ids, of epoch `#indexEpoch`, complete up to `#indexedUpTo`. */
  #index = new ChannelIndex();
  #indexEpoch = "";
  #indexedUpTo = 0;
  /** Ids added since retention's trimming was last applied to the index. */
  #indexedSinceTrim = 0;
  /** Index updates from the stream, one at a time. */
  #indexing: Promise<unknown> = Promise.resolve();
  /** Appends waiting for the tick to end. */
  #pending: PendingAppend[] = [];
  /** Batches being written. */
  readonly #writing = new Set<Promise<void>>();

  constructor(options: RedisLogOptions) {
    const prefix = options.prefix ?? "herald:";
    this.#redis = redisClient(options.url);
    this.#replayRedis = redisClient(options.url);
    this.#retention = options.retention;
    this.#timeoutMs = options.timeoutMs ?? CORE_DEFAULTS.redisTimeoutMs;
    this.#onBadEntry = options.onBadEntry ?? (() => {});
    this.#stream = `${prefix}events`;
    this.#counter = `${prefix}event-id`;
    this.#indexPrefix = `${prefix}index:`;
    this.#indexed = `${prefix}indexed`;
    this.#epochKey = `${prefix}epoch`;
  }

  /** The current epoch, made when there is none. */
  async #currentEpoch(): Promise<Epoch> {
    const value = String(
      await runScript(await this.#client(), EPOCH_SCRIPT, [this.#epochKey, this.#counter], [newEpoch()]),
    );
    return (this.#epoch = this.#epoch?.value === value ? this.#epoch : parseEpoch(value));
  }

  async epoch(): Promise<string> {
    return (await this.#timed(this.#currentEpoch())).name;
  }

  /** Every command a request waits for goes through here: a Redis that hangs must not hold the request. */
  #timed<T>(work: Promise<T>): Promise<T> {
    return withinTimeout(work, this.#timeoutMs);
  }

  /**
   * Redis's persistence settings (`appendonly`, and `save`, the RDB snapshot schedule): with
   * neither, a restart loses every event, and the clients' ids with them. `null` when Redis does
   * not let herald read them (`CONFIG` renamed away).
   */
  async persistence(): Promise<{ appendonly: string; save: string } | null> {
    const redis = await this.#client();
    try {
      const read = async (name: string) =>
        String(((await redis.send("CONFIG", ["GET", name])) as Record<string, unknown>)[name] ?? "");
      return { appendonly: await read("appendonly"), save: await read("save") };
    } catch (error) {
      if (/unknown command|NOPERM/i.test(String(error))) return null;
      throw error;
    }
  }

  #indexKey(name: string, channel: Channel): string {
    return `${this.#indexPrefix}${name}:${channel}`;
  }

  /**
   * Builds the indexes from the stream, once, for a stream written before herald kept them (the
   * `indexed` key says it is done). Several processes may do it at once: adding an id twice is harmless.
   */
  #backfill(): Promise<void> {
    this.#backfilled ??= (async () => {
      const redis = await this.#client();
      if (await redis.exists(this.#indexed)) return;
      let from = "-";
      for (;;) {
        const entries = (await redis.xrange(this.#stream, from, "+", "COUNT", String(SCAN))) as Entry[];
        await Promise.all(
          entries.flatMap((entry) => {
            const event = fromEntry(entry, "");
            return event.channels.map((channel) =>
              redis.send("ZADD", [this.#indexKey(event.event, channel), String(event.id), String(event.id)]),
            );
          }),
        );
        if (entries.length < SCAN) break;
        from = `(${entries.at(-1)![0]}`;
      }
      await redis.set(this.#indexed, "1");
    })().catch((error: unknown) => {
      this.#backfilled = null;
      throw error;
    });
    return this.#backfilled;
  }

  /**
   * The client, connected. Commands are not queued while it is not: it connects first, and when
   * Redis does not answer within a moment (an outage), fails with `RedisUnavailableError`
   * rather than holding the caller while the client keeps reconnecting on its own.
   */
  #client(): Promise<RedisClient> {
    return this.#connected(this.#redis);
  }

  async #connected(redis: RedisClient): Promise<RedisClient> {
    if (redis.connected) return redis;
    if (this.#closed) throw new Error("herald: the Redis event log is closed");
    const connecting = redis.connect();
    connecting.catch(() => {});
    const gaveUp = Bun.sleep(CONNECT_WAIT_MS).then(() => {
      throw new RedisUnavailableError();
    });
    gaveUp.catch(() => {});
    await Promise.race([connecting, gaveUp]);
    return redis;
  }

  /**
   * Adds entries read after id `after` of `epoch` to the channel index, if they follow on from
   * what it holds (the follower and the index's own reads may each be ahead of the other).
   */
  #indexEntries(
    epoch: string,
    after: number,
    entries: ReadonlyArray<{ id: number; event: string; channels: readonly Channel[] | null }>,
  ): void {
    if (epoch !== this.#indexEpoch || after > this.#indexedUpTo) return;
    for (const { id, event, channels } of entries) {
      if (id <= this.#indexedUpTo) continue;
      if (channels) this.#index.add(id, channels, event);
      this.#indexedUpTo = id;
      this.#indexedSinceTrim++;
    }
  }

  /**
   * Brings the channel index up to the stream's top, reading ids, names and channels on the
   * replays' connection; the first time (or in a new epoch) from the start. Resolves with the epoch.
   */
  #syncIndex(): Promise<string> {
    const synced = this.#indexing.then(async () => {
      const epoch = (await this.#currentEpoch()).name;
      if (epoch !== this.#indexEpoch) {
        this.#index = new ChannelIndex();
        this.#indexEpoch = epoch;
        this.#indexedUpTo = 0;
        this.#indexedSinceTrim = 0;
      }
      const redis = await this.#connected(this.#replayRedis);
      for (;;) {
        const from = this.#indexedUpTo;
        const flat = (await runScript(
          redis,
          INDEX_SCRIPT,
          [this.#stream],
          [`(${from}-0`, String(INDEX_PAGE)],
        )) as string[];
        const entries = [];
        for (let i = 0; i < flat.length; i += 3)
          entries.push({ id: numberOf(flat[i]!), event: flat[i + 1]!, channels: parseChannels(flat[i + 2]!) });
        this.#indexEntries(epoch, from, entries);
        if (entries.length < INDEX_PAGE) break;
      }
      if (this.#indexedSinceTrim > this.#retention.maxEvents / 4) {
        // Forget the ids retention has trimmed from the stream, so the index stays its size.
        const [oldest] = (await redis.xrange(this.#stream, "-", "+", "COUNT", "1")) as Entry[];
        this.#index.dropUpTo(oldest ? numberOf(oldest[0]) - 1 : this.#indexedUpTo);
        this.#indexedSinceTrim = 0;
      }
      return epoch;
    });
    this.#indexing = synced.catch(() => {});
    return synced;
  }

  /**
   * Appends wait for the current tick to end, and are then added together: one `INCRBY` for
   * their ids and one script for their entries, rather than two commands each. Redis runs the
   * script without interleaving other commands, so a batch's events get consecutive ids, in order.
   */
  append(event: NewEvent, render?: Render): Promise<StoredEvent> {
    return new Promise<StoredEvent>((resolve, reject) => {
      if (this.#pending.length === 0) setImmediate(() => this.#writePending());
      this.#pending.push({ event, render, resolve, reject });
    });
  }

  #writePending(): void {
    const pending = this.#pending;
    this.#pending = [];
    for (let from = 0; from < pending.length; from += APPEND_BATCH) {
      const batch = pending.slice(from, from + APPEND_BATCH);
      const written = this.#timed(this.#appendBatch(batch, Date.now() + this.#timeoutMs)).then(
        (outcomes) =>
          batch.forEach(({ resolve, reject }, i) => {
            const outcome = outcomes[i]!;
            if ("stored" in outcome) resolve(outcome.stored);
            else reject(outcome.error);
          }),
        (error: unknown) => {
          for (const { reject } of batch) reject(error);
        },
      );
      this.#writing.add(written);
      void written.then(() => this.#writing.delete(written));
    }
  }

  /**
   * Adds a batch; each append's outcome, in order. An event whose data fails to render is left out
   * (its id is given up) and fails alone, not the others of its batch.
   */
  async #appendBatch(batch: readonly PendingAppend[], deadline: number): Promise<AppendOutcome[]> {
    const redis = await this.#client();
    let epoch = this.#epoch ?? (await this.#currentEpoch());
    for (let tries = 1; ; tries++) {
      const top = Number(await redis.send("INCRBY", [this.#counter, String(batch.length)]));
      const first = top - batch.length + 1;
      const outcomes = batch.map(({ event, render }, i): AppendOutcome => {
        const id = first + i;
        try {
          return {
            stored: {
              ...event,
              id,
              epoch: epoch.name,
              data: typeof render === "function" ? render(id) : (render ?? event.data),
            },
          };
        } catch (error) {
          return { error };
        }
      });
      const keys = [this.#stream, this.#epochKey];
      const args = [String(this.#retention.maxEvents), String(INDEX_KEEP), epoch.value, String(deadline)];
      for (const outcome of outcomes) {
        if (!("stored" in outcome)) continue;
        const event = outcome.stored;
        for (const channel of event.channels) keys.push(this.#indexKey(event.event, channel));
        args.push(
          String(event.id),
          String(event.at),
          event.event,
          JSON.stringify(event.channels),
          event.data,
          String(event.channels.length),
        );
      }
      if (args.length === 4) return outcomes;
      const added = Number(await runScript(redis, APPEND_SCRIPT, keys, args));
      if (added === 1) return outcomes;
      if (added === -2) throw new RedisUnavailableError(`herald: Redis did not answer within ${this.#timeoutMs} ms`);
      // Redis lost its data (and with it the epoch) since: take ids in the new epoch. Or
      // another process took higher ids first: take new ones.
      if (added === -1) epoch = await this.#currentEpoch();
      if (tries >= MAX_TRIES)
        throw new Error(
          `herald: could not append to the Redis stream after ${tries} tries; other processes kept taking higher ids`,
        );
    }
  }

  async flush(): Promise<void> {
    this.#writePending();
    await Promise.all([...this.#writing]);
  }

  /** The stream's summary, or `null` before the first event. */
  async #info(): Promise<{ length: number; last: number; first: number } | null> {
    try {
      const info = (await (await this.#client()).send("XINFO", ["STREAM", this.#stream])) as Record<string, unknown>;
      const first = info["first-entry"] as Entry | null;
      return {
        length: Number(info.length),
        last: numberOf(String(info["last-generated-id"])),
        first: first ? numberOf(first[0]) : 0,
      };
    } catch (error) {
      if (/no such key/i.test(String(error))) return null;
      throw error;
    }
  }

  async lastId(): Promise<number> {
    const [epoch, info] = await this.#timed(Promise.all([this.#currentEpoch(), this.#info()]));
    return Math.max(epoch.start, info?.last ?? 0);
  }

  async covers(epoch: string, afterId: number): Promise<boolean> {
    if (!Number.isSafeInteger(afterId) || afterId < 0) return false;
    const [current, info] = await this.#timed(Promise.all([this.#currentEpoch(), this.#info()]));
    if (current.name !== epoch || afterId < current.start) return false;
    if (!info) return afterId === 0;
    if (afterId > info.last) return false;
    // Everything after afterId is still there when the oldest kept entry follows it directly, or
    // comes later with nothing trimmed in between: only the first case can be known, so an id
    // further back counts as too old.
    return info.length === 0 ? afterId === info.last : afterId >= info.first - 1;
  }

  async readAfter(afterId: number, channels: readonly Channel[], limit: number): Promise<StoredEvent[]> {
    const epoch = await this.#timed(this.#syncIndex());
    const ids = this.#index.after(afterId, channels, limit);
    if (ids.length === 0) return [];
    const entries = (await this.#timed(
      runScript(
        await this.#connected(this.#replayRedis),
        ENTRIES_SCRIPT,
        [this.#stream],
        ids.map((id) => `${id}-0`),
      ),
    )) as Entry[];
    return entries.map((entry) => fromEntry(entry, epoch));
  }

  async backlog(afterId: number, channels: readonly Channel[], max: number): Promise<number> {
    await this.#timed(this.#syncIndex());
    return this.#index.after(afterId, channels, max).length;
  }

  /**
   * Ids of `name` events on any of `channels` with ids in (`above`, `upTo`], newest first, at most `limit` a channel.
   */
  async #indexedIds(
    channels: readonly Channel[],
    name: string,
    { above = 0, upTo, limit }: { above?: number; upTo?: number; limit?: number },
  ): Promise<number[]> {
    await this.#backfill();
    const redis = await this.#client();
    const max = upTo === undefined ? "+inf" : String(upTo);
    const page = limit === undefined ? [] : ["LIMIT", "0", String(limit)];
    const lists = (await Promise.all(
      [...new Set(channels)].map((channel) =>
        redis.send("ZREVRANGEBYSCORE", [this.#indexKey(name, channel), max, `(${above}`, ...page]),
      ),
    )) as string[][];
    return [...new Set(lists.flat().map(Number))].sort((a, b) => b - a);
  }

  latest(channels: readonly Channel[], name: string, limit: number, upTo?: number): Promise<StoredEvent[]> {
    return this.#timed(this.#latest(channels, name, limit, upTo));
  }

  async #latest(channels: readonly Channel[], name: string, limit: number, upTo?: number): Promise<StoredEvent[]> {
    const ids = (await this.#indexedIds(channels, name, { upTo, limit })).slice(0, limit);
    if (ids.length === 0) return [];
    const redis = await this.#client();
    const epoch = (await this.#currentEpoch()).name;
    const entries = (await runScript(
      redis,
      ENTRIES_SCRIPT,
      [this.#stream],
      ids.map((id) => `${id}-0`),
    )) as Entry[];
    return entries.map((entry) => fromEntry(entry, epoch));
  }

  get(id: number): Promise<StoredEvent | undefined> {
    return this.#timed(this.#get(id));
  }

  async #get(id: number): Promise<StoredEvent | undefined> {
    const { name } = await this.#currentEpoch();
    const [entry] = (await (await this.#client()).xrange(this.#stream, `${id}-0`, `${id}-0`)) as Entry[];
    return entry ? fromEntry(entry, name) : undefined;
  }

  /** From the indexes: at most the newest `INDEX_KEEP` of each channel, and only events the stream still holds. */
  ids(
    channels: readonly Channel[],
    name: string,
    range: { above?: number; upTo?: number; limit?: number } = {},
  ): Promise<number[]> {
    return this.#timed(this.#ids(channels, name, range));
  }

  async #ids(
    channels: readonly Channel[],
    name: string,
    range: { above?: number; upTo?: number; limit?: number },
  ): Promise<number[]> {
    const indexed = await this.#indexedIds(channels, name, range);
    if (indexed.length === 0) return [];
    // The indexes outlive retention's trimming of the stream: count only what it still holds.
    const [oldest] = (await (await this.#client()).xrange(this.#stream, "-", "+", "COUNT", "1")) as Entry[];
    const kept = oldest ? numberOf(oldest[0]) : Infinity;
    const ids = indexed.filter((id) => id >= kept);
    return range.limit === undefined ? ids : ids.slice(0, range.limit);
  }

  async prune(now = Date.now()): Promise<void> {
    const redis = await this.#client();
    // Exact here (appends trim approximately, which is cheaper but may keep a few more).
    await redis.send("XTRIM", [this.#stream, "MAXLEN", String(this.#retention.maxEvents)]);
    // Find the first entry young enough to keep, and trim everything before it.
    const oldest = now - this.#retention.maxAgeMs;
    let from = "-";
    for (;;) {
      const entries = (await redis.xrange(this.#stream, from, "+", "COUNT", String(SCAN))) as Entry[];
      const young = entries.find((entry) => fromEntry(entry, "").at >= oldest);
      if (young) {
        await redis.send("XTRIM", [this.#stream, "MINID", young[0]]);
        return;
      }
      if (entries.length < SCAN) {
        // Every entry is too old: keep none (the stream and its last id remain).
        if (entries.length > 0) await redis.send("XTRIM", [this.#stream, "MAXLEN", "0"]);
        return;
      }
      from = `(${entries.at(-1)![0]}`;
    }
  }

  follow(from: Position, deliver: (events: StoredEvent[], reached: Position) => void): { stop(): void } {
    let stopped = false;
    let reader: RedisClient | null = null;
    // The channel index is built now, not by the first replay.
    this.#syncIndex().catch(() => {});
    const loop = async () => {
      let epoch = from.epoch;
      let last = from.id;
      let backoff = 50;
      while (!stopped) {
        try {
          // A blocking read holds its connection: it gets one of its own.
          if (!reader?.connected) {
            reader?.close();
            reader = await (await this.#client()).duplicate();
          }
          // The epoch is read after each blocking read, on the same connection: Redis answers
          // the GET once the read returns, so the entries read belong to the epoch it names.
          // A Redis that hangs (SIGSTOP) would hold this read forever: give up, and reconnect.
          const [reply, current] = (await withinTimeout(
            Promise.all([
              reader.xread(
                "COUNT",
                String(SCAN),
                "BLOCK",
                String(FOLLOW_BLOCK_MS),
                "STREAMS",
                this.#stream,
                `${last}-0`,
              ),
              reader.get(this.#epochKey),
            ]),
            FOLLOW_BLOCK_MS + this.#timeoutMs,
          )) as [Record<string, Entry[]> | null, string | null];
          backoff = 50;
          if (stopped) break;
          if (current === null || parseEpoch(current).name !== epoch) {
            // Redis lost its data (restarted empty, flushed): follow the new history from its start.
            const next = await this.#currentEpoch();
            if (next.name !== epoch) {
              epoch = next.name;
              last = next.start;
              deliver([], { epoch, id: last });
            }
            continue;
          }
          const entries = reply?.[this.#stream] ?? [];
          if (entries.length === 0) continue;
          const after = last;
          last = numberOf(entries.at(-1)![0]);
          const events: StoredEvent[] = [];
          for (const entry of entries) {
            // An entry herald did not write (or a damaged one) is skipped, not read again forever.
            if (parseChannels(entry[1][entry[1].indexOf("channels") + 1] ?? "")) events.push(fromEntry(entry, epoch));
            else this.#onBadEntry(entry[0]);
          }
          // Indexed before the streams are sent them: a replay then finds every event sent before its stream joined.
          this.#indexEntries(epoch, after, events);
          if (events.length > 0) deliver(events, { epoch, id: last });
        } catch {
          // Redis is away: try again from the last entry delivered, so nothing is skipped or
          // repeated, on a new connection (one that timed out may still hold the old read).
          reader?.close();
          reader = null;
          await Bun.sleep(backoff);
          backoff = Math.min(backoff * 2, 2_000);
        }
      }
    };
    void loop();
    return {
      stop() {
        stopped = true;
        reader?.close();
      },
    };
  }

  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    this.#redis.close();
    this.#replayRedis.close();
  }
}
