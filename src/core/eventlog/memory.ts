/**
 * The in-memory event log: a bounded ring, with the ids of each channel's events beside it
 * (`ChannelIndex`), so that a replay, a snapshot or an unread count reads only the channels' own
 * events rather than the whole log (100,000 events by default). Nothing survives a restart: each
 * log is an epoch of its own.
 */
import type { Channel } from "../channel.ts";
import { ChannelIndex } from "./channel-index.ts";
import { newEpoch } from "./epoch.ts";
import type { EventLog, NewEvent, Render, Retention, StoredEvent } from "./event-log.ts";

export class MemoryEventLog implements EventLog {
  readonly #retention: Retention;
  readonly #epoch = newEpoch();
  /** Oldest first; `#events[i].id === #firstId + i`. */
  #events: StoredEvent[] = [];
  #nextId = 1;
  /** Every id up to this one has been dropped by retention. */
  #droppedUpTo = 0;
  readonly #index = new ChannelIndex();

  constructor(retention: Retention) {
    this.#retention = retention;
  }

  async append(event: NewEvent, render?: Render): Promise<StoredEvent> {
    // The id is taken only once the data has rendered: the ring's ids must have no gaps.
    const id = this.#nextId;
    const stored: StoredEvent = {
      channels: event.channels,
      event: event.event,
      data: typeof render === "function" ? render(id) : (render ?? event.data),
      at: event.at,
      id,
      epoch: this.#epoch,
    };
    this.#nextId++;
    this.#events.push(stored);
    this.#index.add(id, event.channels, event.event);
    if (this.#events.length > this.#retention.maxEvents * 1.1) this.#prune(event.at);
    return stored;
  }

  async flush(): Promise<void> {}

  async epoch(): Promise<string> {
    return this.#epoch;
  }

  async lastId(): Promise<number> {
    return this.#nextId - 1;
  }

  async covers(epoch: string, afterId: number): Promise<boolean> {
    return (
      epoch === this.#epoch &&
      Number.isSafeInteger(afterId) &&
      afterId >= this.#droppedUpTo &&
      afterId <= this.#nextId - 1
    );
  }

  /** Index of the first event with id > `afterId`. */
  #indexAfter(afterId: number): number {
    const first = this.#events[0]?.id ?? this.#nextId;
    return Math.max(0, afterId + 1 - first);
  }

  /** The event with `id`, if it is still kept. */
  #find(id: number): StoredEvent | undefined {
    const event = this.#events[this.#indexAfter(id - 1)];
    return event?.id === id ? event : undefined;
  }

  #byIds(ids: readonly number[]): StoredEvent[] {
    const events: StoredEvent[] = [];
    for (const id of ids) {
      const event = this.#find(id);
      if (event) events.push(event);
    }
    return events;
  }

  async readAfter(afterId: number, channels: readonly Channel[], limit: number): Promise<StoredEvent[]> {
    return this.#byIds(this.#index.after(afterId, channels, limit));
  }

  async backlog(afterId: number, channels: readonly Channel[], max: number): Promise<number> {
    return this.#index.after(afterId, channels, max).length;
  }

  async latest(channels: readonly Channel[], name: string, limit: number, upTo = Infinity): Promise<StoredEvent[]> {
    return this.#byIds(this.#index.newest(channels, name, { upTo, limit }));
  }

  async get(id: number): Promise<StoredEvent | undefined> {
    return this.#find(id);
  }

  async ids(
    channels: readonly Channel[],
    event: string,
    range: { above?: number; upTo?: number; limit?: number } = {},
  ): Promise<number[]> {
    return this.#index.newest(channels, event, range);
  }

  async prune(now = Date.now()): Promise<void> {
    this.#prune(now);
  }

  #prune(now: number): void {
    const oldest = now - this.#retention.maxAgeMs;
    let drop = Math.max(0, this.#events.length - this.#retention.maxEvents);
    while (drop < this.#events.length && this.#events[drop]!.at < oldest) drop++;
    if (drop === 0) return;
    this.#droppedUpTo = this.#events[drop - 1]!.id;
    this.#events = this.#events.slice(drop);
    this.#index.dropUpTo(this.#droppedUpTo);
  }

  async close(): Promise<void> {}
}
