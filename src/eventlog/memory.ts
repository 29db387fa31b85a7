/**
 * The in-memory event log: a bounded ring, with the ids of each channel's events beside it, so
 * that a snapshot or an unread count reads only the channels' own events rather than the whole
 * log (100,000 events by default). Nothing survives a restart.
 */
import type { Channel } from "../channel.ts";
import type { EventLog, NewEvent, Render, Retention, StoredEvent } from "./index.ts";

export class MemoryEventLog implements EventLog {
  readonly #retention: Retention;
  /** Oldest first; `#events[i].id === #firstId + i`. */
  #events: StoredEvent[] = [];
  #nextId = 1;
  /** Every id up to this one has been dropped by retention. */
  #droppedUpTo = 0;
  /** Each channel's event ids, oldest first; ids retention dropped go at the next prune. */
  readonly #byChannel = new Map<Channel, number[]>();
  readonly #readUpTo = new Map<string, number>();
  readonly #read = new Map<string, Set<number>>();

  constructor(retention: Retention) {
    this.#retention = retention;
  }

  async append(event: NewEvent, render?: Render): Promise<StoredEvent> {
    const id = this.#nextId++;
    const stored = { ...event, id, data: typeof render === "function" ? render(id) : (render ?? event.data) };
    this.#events.push(stored);
    for (const channel of new Set(event.channels)) {
      const ids = this.#byChannel.get(channel);
      if (ids) ids.push(id);
      else this.#byChannel.set(channel, [id]);
    }
    if (this.#events.length > this.#retention.maxEvents * 1.1) this.#prune(event.at);
    return stored;
  }

  async flush(): Promise<void> {}

  async lastId(): Promise<number> {
    return this.#nextId - 1;
  }

  async covers(afterId: number): Promise<boolean> {
    return Number.isSafeInteger(afterId) && afterId >= this.#droppedUpTo && afterId <= this.#nextId - 1;
  }

  #on(event: StoredEvent, channels: readonly Channel[]): boolean {
    return event.channels.some((channel) => channels.includes(channel));
  }

  /** Index of the first event with id > `afterId`. */
  #indexAfter(afterId: number): number {
    const first = this.#events[0]?.id ?? this.#nextId;
    return Math.max(0, afterId + 1 - first);
  }

  async readAfter(afterId: number, channels: readonly Channel[], limit: number): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    for (let i = this.#indexAfter(afterId); i < this.#events.length && out.length < limit; i++) {
      const event = this.#events[i]!;
      if (this.#on(event, channels)) out.push(event);
    }
    return out;
  }

  /**
   * The events named `name` on any of `channels` with ids in (`above`, `upTo`], newest first, at
   * most `limit` of them: each channel's ids walked back from its newest.
   */
  #newest(channels: readonly Channel[], name: string, { above = 0, upTo = Infinity, limit = Infinity }: { above?: number; upTo?: number; limit?: number }): StoredEvent[] {
    const found = new Map<number, StoredEvent>();
    for (const channel of new Set(channels)) {
      const ids = this.#byChannel.get(channel);
      if (!ids) continue;
      let taken = 0;
      for (let i = ids.length - 1; i >= 0 && taken < limit; i--) {
        const id = ids[i]!;
        if (id <= above || id <= this.#droppedUpTo) break;
        if (id > upTo) continue;
        const event = this.#events[this.#indexAfter(id - 1)];
        if (event?.id !== id || event.event !== name) continue;
        found.set(id, event);
        taken++;
      }
    }
    return [...found.values()].sort((a, b) => b.id - a.id).slice(0, limit);
  }

  async latest(channels: readonly Channel[], name: string, limit: number, upTo = Infinity): Promise<StoredEvent[]> {
    return this.#newest(channels, name, { upTo, limit });
  }

  async get(id: number): Promise<StoredEvent | undefined> {
    const event = this.#events[this.#indexAfter(id - 1)];
    return event?.id === id ? event : undefined;
  }

  async markRead(user: string, id: number): Promise<void> {
    let read = this.#read.get(user);
    if (!read) this.#read.set(user, (read = new Set()));
    read.add(id);
  }

  async markAllRead(user: string, upTo: number): Promise<void> {
    this.#readUpTo.set(user, Math.max(upTo, this.#readUpTo.get(user) ?? 0));
    // Marks above `upTo` stay: they are not covered by it.
    const read = this.#read.get(user);
    if (read) for (const id of read) if (id <= upTo) read.delete(id);
  }

  #isRead(user: string, id: number): boolean {
    return id <= (this.#readUpTo.get(user) ?? 0) || (this.#read.get(user)?.has(id) ?? false);
  }

  async readIds(user: string, ids: readonly number[]): Promise<Set<number>> {
    return new Set(ids.filter((id) => this.#isRead(user, id)));
  }

  async unreadCount(user: string, channels: readonly Channel[], name: string): Promise<number> {
    let count = 0;
    for (const event of this.#newest(channels, name, { above: this.#readUpTo.get(user) ?? 0 })) if (!this.#isRead(user, event.id)) count++;
    return count;
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
    for (const [channel, ids] of this.#byChannel) {
      let kept = 0;
      while (kept < ids.length && ids[kept]! <= this.#droppedUpTo) kept++;
      if (kept === ids.length) this.#byChannel.delete(channel);
      else if (kept > 0) ids.splice(0, kept);
    }
  }

  async close(): Promise<void> {}
}
