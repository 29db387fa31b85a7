/**
 * Each channel's event ids, oldest first, with each event's name beside its id: what a replay,
 * a snapshot or an unread count looks up, kept in memory by the logs that one process owns
 * (memory and sqlite). A lookup reads only the asked channels' own ids, never the whole log, and
 * an append costs an array push per channel rather than a write to an on-disk index.
 */
import type { Channel } from "../channel.ts";

interface Entries {
  ids: number[];
  names: string[];
}

/** Index of the first id above `id` in ascending `ids`. */
function firstAbove(ids: readonly number[], id: number): number {
  let low = 0;
  let high = ids.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (ids[mid]! <= id) low = mid + 1;
    else high = mid;
  }
  return low;
}

export class ChannelIndex {
  readonly #byChannel = new Map<Channel, Entries>();

  /** Adds event `id` (higher than any added before) named `name` on each of `channels`. */
  add(id: number, channels: readonly Channel[], name: string): void {
    for (let i = 0; i < channels.length; i++) {
      const channel = channels[i]!;
      // A channel named twice by one event is indexed once.
      if (channels.indexOf(channel) !== i) continue;
      const entries = this.#byChannel.get(channel);
      if (entries) {
        entries.ids.push(id);
        entries.names.push(name);
      } else this.#byChannel.set(channel, { ids: [id], names: [name] });
    }
  }

  /** Ids on any of `channels` above `afterId`, oldest first, at most `limit`. */
  after(afterId: number, channels: readonly Channel[], limit: number): number[] {
    const found: number[] = [];
    for (const channel of new Set(channels)) {
      const ids = this.#byChannel.get(channel)?.ids;
      if (!ids) continue;
      const from = firstAbove(ids, afterId);
      for (let i = from; i < ids.length && i < from + limit; i++) found.push(ids[i]!);
    }
    return [...new Set(found)].sort((a, b) => a - b).slice(0, limit);
  }

  /** Ids named `name` on any of `channels` in (`above`, `upTo`], newest first, at most `limit`. */
  newest(
    channels: readonly Channel[],
    name: string,
    { above = 0, upTo = Infinity, limit = Infinity }: { above?: number; upTo?: number; limit?: number },
  ): number[] {
    const found = new Set<number>();
    for (const channel of new Set(channels)) {
      const entries = this.#byChannel.get(channel);
      if (!entries) continue;
      const { ids, names } = entries;
      let taken = 0;
      for (let i = firstAbove(ids, upTo) - 1; i >= 0 && taken < limit; i--) {
        const id = ids[i]!;
        if (id <= above) break;
        if (names[i] !== name) continue;
        found.add(id);
        taken++;
      }
    }
    return [...found].sort((a, b) => b - a).slice(0, limit);
  }

  /** Forgets every id up to `id` (retention dropped those events). */
  dropUpTo(id: number): void {
    for (const [channel, entries] of this.#byChannel) {
      const kept = firstAbove(entries.ids, id);
      if (kept === entries.ids.length) this.#byChannel.delete(channel);
      else if (kept > 0) {
        entries.ids.splice(0, kept);
        entries.names.splice(0, kept);
      }
    }
  }
}
