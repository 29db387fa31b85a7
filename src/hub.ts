/**
 * The hub: channels → subscribers, and fan-out.
 *
 * A publish encodes its frame once and writes the same bytes to the target channel's
 * subscribers, found through the channel index: its cost grows with that channel's
 * subscribers, never with every open stream.
 */
import { channelKind, EVERYONE, topicChannel, userChannel, type Channel, type ChannelKind } from "./channel.ts";
import { encodeComment, encodeMessage, type SseMessage } from "./sse.ts";
import type { Subscriber } from "./subscriber.ts";

/** The outcome of one publish. */
export interface PublishResult {
  /** The event's id, sent as `id:`; ids increase across the hub. */
  id: string;
  /** How many open streams the event was written to. */
  delivered: number;
}

/** Figures for `/healthz` and the monitor. */
export interface HubStats {
  clients: number;
  /** Channels with at least one subscriber. */
  channels: number;
  /** Open streams by channel kind (a stream counts once per channel it is on). */
  byKind: Record<ChannelKind, number>;
  /** Users with at least one open stream. */
  users: number;
  published: number;
  delivered: number;
  /** `Date.now()` of the last publish, or `null`. */
  lastEventAt: number | null;
}

export interface HubOptions {
  /** Milliseconds between heartbeat comments; `0` sends none. Defaults to `15000`. */
  heartbeatMs?: number;
}

const HEARTBEAT = encodeComment("ping");

export class Hub {
  readonly #channels = new Map<Channel, Set<Subscriber>>();
  readonly #subscribers = new Set<Subscriber>();
  #published = 0;
  #lastId = 0;
  #delivered = 0;
  #lastEventAt: number | null = null;
  #heartbeat: ReturnType<typeof setInterval> | undefined;

  constructor(options: HubOptions = {}) {
    const heartbeatMs = options.heartbeatMs ?? 15_000;
    // One timer for every stream: a timer per stream would cost memory and wake-ups per client.
    if (heartbeatMs > 0) this.#heartbeat = setInterval(() => this.#beat(), heartbeatMs);
  }

  /** Adds an open stream to each of its channels; it leaves them all when it closes. */
  subscribe(subscriber: Subscriber): void {
    if (subscriber.closed) return;
    this.#subscribers.add(subscriber);
    for (const channel of subscriber.channels) {
      let members = this.#channels.get(channel);
      if (!members) this.#channels.set(channel, (members = new Set()));
      members.add(subscriber);
    }
    subscriber.onClose(() => this.#unsubscribe(subscriber));
  }

  #unsubscribe(subscriber: Subscriber): void {
    if (!this.#subscribers.delete(subscriber)) return;
    for (const channel of subscriber.channels) {
      const members = this.#channels.get(channel);
      if (!members) continue;
      members.delete(subscriber);
      if (members.size === 0) this.#channels.delete(channel);
    }
  }

  /**
   * Sends one event to every stream on `target` (or on any of several targets; a stream on
   * more than one of them still gets it once). The hub gives it the next id. Throws
   * `HeraldError` for an unsafe event name.
   */
  publish(target: Channel | readonly Channel[], message: Omit<SseMessage, "id">): PublishResult {
    const id = String(this.#lastId + 1);
    const frame = encodeMessage({ ...message, id });
    this.#lastId++;
    const now = Date.now();
    let delivered = 0;
    if (typeof target === "string") {
      const members = this.#channels.get(target);
      if (members) for (const subscriber of members) if (subscriber.deliver(frame, now)) delivered++;
    } else {
      const seen = new Set<Subscriber>();
      for (const channel of target) {
        const members = this.#channels.get(channel);
        if (!members) continue;
        for (const subscriber of members) {
          if (seen.has(subscriber)) continue;
          seen.add(subscriber);
          if (subscriber.deliver(frame, now)) delivered++;
        }
      }
    }
    this.#published++;
    this.#delivered += delivered;
    this.#lastEventAt = now;
    return { id, delivered };
  }

  /** Sends to every stream of one signed-in user. */
  publishToUser(userId: string, message: Omit<SseMessage, "id">): PublishResult {
    return this.publish(userChannel(userId), message);
  }

  /** Sends to every stream following `topic`. */
  publishToTopic(topic: string, message: Omit<SseMessage, "id">): PublishResult {
    return this.publish(topicChannel(topic), message);
  }

  /** Sends to every open stream. */
  publishToEveryone(message: Omit<SseMessage, "id">): PublishResult {
    return this.publish(EVERYONE, message);
  }

  /** Open streams in total. */
  get clientCount(): number {
    return this.#subscribers.size;
  }

  /** Open streams on one channel. */
  subscriberCount(channel: Channel): number {
    return this.#channels.get(channel)?.size ?? 0;
  }

  /** Whether the user has at least one open stream. */
  isConnected(userId: string): boolean {
    return this.subscriberCount(userChannel(userId)) > 0;
  }

  /** Closes every stream of a user (after sending `farewell`, if given). Returns how many were closed. */
  disconnectUser(userId: string, farewell?: SseMessage): number {
    const members = this.#channels.get(userChannel(userId));
    if (!members) return 0;
    const frame = farewell && encodeMessage(farewell);
    const closing = [...members];
    for (const subscriber of closing) subscriber.close(frame);
    return closing.length;
  }

  /** A snapshot of the hub's figures. */
  stats(): HubStats {
    const byKind: Record<ChannelKind, number> = { everyone: 0, topic: 0, user: 0, group: 0 };
    let users = 0;
    for (const [channel, members] of this.#channels) {
      const kind = channelKind(channel);
      byKind[kind] += members.size;
      if (kind === "user") users++;
    }
    return {
      clients: this.#subscribers.size,
      channels: this.#channels.size,
      byKind,
      users,
      published: this.#published,
      delivered: this.#delivered,
      lastEventAt: this.#lastEventAt,
    };
  }

  #beat(): void {
    for (const subscriber of this.#subscribers) subscriber.write(HEARTBEAT);
  }

  /** Stops the heartbeat and closes every stream (after sending `farewell`, if given). */
  close(farewell?: SseMessage): void {
    clearInterval(this.#heartbeat);
    const frame = farewell && encodeMessage(farewell);
    for (const subscriber of [...this.#subscribers]) subscriber.close(frame);
  }
}
