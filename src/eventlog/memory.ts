/**
 * The in-memory event log: a bounded ring. Nothing survives a restart.
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
  readonly #readUpTo = new Map<string, number>();
  readonly #read = new Map<string, Set<number>>();

  constructor(retention: Retention) {
    this.#retention = retention;
  }

  async append(event: NewEvent, render?: Render): Promise<StoredEvent> {
    const id = this.#nextId++;
    const stored = { ...event, id, data: typeof render === "function" ? render(id) : (render ?? event.data) };
    this.#events.push(stored);
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

  async latest(channels: readonly Channel[], name: string, limit: number, upTo = Infinity): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    for (let i = this.#events.length - 1; i >= 0 && out.length < limit; i--) {
      const event = this.#events[i]!;
      if (event.id <= upTo && event.event === name && this.#on(event, channels)) out.push(event);
    }
    return out;
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
    this.#read.delete(user);
  }

  #isRead(user: string, id: number): boolean {
    return id <= (this.#readUpTo.get(user) ?? 0) || (this.#read.get(user)?.has(id) ?? false);
  }

  async readIds(user: string, ids: readonly number[]): Promise<Set<number>> {
    return new Set(ids.filter((id) => this.#isRead(user, id)));
  }

  async unreadCount(user: string, channels: readonly Channel[], name: string): Promise<number> {
    let count = 0;
    for (const event of this.#events) if (event.event === name && this.#on(event, channels) && !this.#isRead(user, event.id)) count++;
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
  }

  async close(): Promise<void> {}
}
