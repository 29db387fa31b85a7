/**
 * The event log: every published event, in id order, for replay after a reconnect, snapshots of
 * a page's state, and the inbox's unread counts (its read marks are kept apart, `../read-marks.ts`). Backends behind one interface: `bun:sqlite` (the
 * default, durable), memory (a bounded ring, for tests and throwaway runs), and Redis Streams
 * (shared by several processes).
 *
 * Ids are whole numbers from 1, increasing, assigned when an event is appended, within the log's
 * epoch (`./epoch.ts`): the identity of its history, stored with it. Appends are
 * batched, and `append` resolves once its event is committed, so a publisher is acknowledged only
 * then. Every method answers with a Promise, so that a backend across the network fits the same
 * interface; the local backends answer at once.
 */
import type { Channel } from "../channel.ts";
import type { Position } from "./epoch.ts";

export interface NewEvent {
  channels: readonly Channel[];
  /** SSE event name. */
  event: string;
  /** SSE data: the HTML fragment. */
  data: string;
  /** `Date.now()` when it was published. */
  at: number;
}

/** Makes an event's data once its id is known (the data may then name its own id). */
export type Render = string | ((id: number) => string);

export interface StoredEvent extends NewEvent {
  id: number;
  /** The epoch the id belongs to. */
  epoch: string;
}

export interface Retention {
  /** Most events kept; older ones are dropped first. */
  maxEvents: number;
  /** Oldest event kept, in milliseconds of age. */
  maxAgeMs: number;
}

export interface EventLog {
  /**
   * Appends an event, giving it the next id; `render`, when given, makes the data from that id.
   * Resolves once the event is committed (with its batch); rejects if the commit failed.
   */
  append(event: NewEvent, render?: Render): Promise<StoredEvent>;
  /** Resolves once every event appended so far is committed. */
  flush(): Promise<void>;
  /** The log's current epoch (a shared log's may change while it runs: a flushed Redis starts a new one). */
  epoch(): Promise<string>;
  /** The highest id committed in the current epoch, or 0. */
  lastId(): Promise<number>;
  /**
   * Whether the log holds every event after `afterId` of `epoch`, so that a replay from it is
   * complete: false for another epoch than the current one, when retention dropped some, or when
   * the id is not one this log gave.
   */
  covers(epoch: string, afterId: number): Promise<boolean>;
  /**
   * Committed events after `afterId` on any of `channels`, oldest first, at most `limit`. Reads
   * only those channels' events (through an index), never the whole log.
   */
  readAfter(afterId: number, channels: readonly Channel[], limit: number): Promise<StoredEvent[]>;
  /**
   * How many committed events after `afterId` are on any of `channels`, counted up to `max` (from the index, reading no
   * event).
   */
  backlog(afterId: number, channels: readonly Channel[], max: number): Promise<number>;
  /**
   * The newest committed events named `event` on any of `channels`, up to id `upTo` (all when
   * omitted), newest first, at most `limit`.
   */
  latest(channels: readonly Channel[], event: string, limit: number, upTo?: number): Promise<StoredEvent[]>;
  /** One committed event by id, if it is still kept. */
  get(id: number): Promise<StoredEvent | undefined>;

  /**
   * Ids of the events named `event` on any of `channels`, with ids in (`above`, `upTo`], newest
   * first, at most `limit`: only events the log still holds. The inbox counts unread ones with it.
   */
  ids(
    channels: readonly Channel[],
    event: string,
    range?: { above?: number; upTo?: number; limit?: number },
  ): Promise<number[]>;

  /** Drops events past retention. Runs on its own timer too. */
  prune(now?: number): Promise<void>;
  /** Commits what is pending and releases the backend. */
  close(): Promise<void>;

  /**
   * Present on a log that several processes share: calls `deliver` with every event appended
   * after `from`, by any process, in id order, as they come, until `stop()`, with the position
   * reached. Each process sends its streams what it follows, so all of them send the same events
   * in the same order. When the log's epoch changes, `deliver` is called with no events and the
   * new epoch's start, then with that epoch's events.
   */
  follow?(from: Position, deliver: (events: StoredEvent[], reached: Position) => void): { stop(): void };
}
