/**
 * The hub: channels → subscribers, fan-out, and the event log behind it.
 *
 * A publish is appended to the log, and once its batch is committed, its frame is encoded once
 * and the same bytes are written to the target channel's subscribers, found through the
 * channel index: its cost grows with that channel's subscribers, never with every open stream.
 * Because nothing is sent before it is in the log, a stream that resumes from an id finds every
 * later event there.
 */
import {
  channelKind,
  channelName,
  EVERYONE,
  topicChannel,
  userChannel,
  type Channel,
  type ChannelKind,
} from "./channel.ts";
import { formatEventId, parseEventId, type EventLog, type Position } from "./eventlog/index.ts";
import { encodeComment, encodeIdOnly, encodeMessage, type SseMessage } from "./sse.ts";
import { Subscriber, type Ahead, type CloseReason, type Framing, type SubscriberInit } from "./subscriber.ts";
import { CORE_DEFAULTS } from "./defaults.ts";
import { Writer } from "./writer.ts";

/** The outcome of one publish. */
export interface PublishResult {
  /** The event's id, sent as `id:` (`<epoch>-<n>`); ids increase across the hub within an epoch. */
  id: string;
  /** How many open streams the event was written to. */
  delivered: number;
}

/** What to publish: an SSE event name and its data, or a function that renders the data from the event's id. */
export interface Publication {
  event: string;
  data: string | ((id: number) => string);
}

/** This process's streams: in total, per user, per topic. */
export interface PresenceCounts {
  clients: number;
  users: Record<string, number>;
  topics: Record<string, number>;
}

/** Figures for `/healthz`, `/metrics` and the monitor. */
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
  /** Events written to resuming streams from the log. */
  replayed: number;
  /** Streams ended because they could not keep up, or stalled. */
  droppedSlow: number;
  droppedStale: number;
  /** `Date.now()` of the last publish, or `null`. */
  lastEventAt: number | null;
  /** Bytes written to streams, heartbeats included, closed streams too. */
  bytesWritten: number;
  /** Publish durations (append to fan-out): counts per upper bound in seconds, their sum, their count. */
  publishSeconds: { buckets: ReadonlyArray<readonly [number, number]>; sum: number; count: number };
}

/** Upper bounds, in seconds, of the publish duration histogram. */
export const PUBLISH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] as const;

export interface HubOptions {
  /** Where events are kept for replay. */
  log: EventLog;
  /**
   * Longest a stream goes without a byte: one that nothing was written to for between half this
   * and this gets a heartbeat comment, an idle one every interval; `0` sends none. Defaults to `15000`.
   */
  heartbeatMs?: number;
  /** A stream whose socket has not drained for this long is dropped; `0` never. Defaults to `45000`. */
  clientTimeoutMs?: number;
  /**
   * With a shared log, how long a publisher waits for its event to come round before it is answered anyway. Defaults to
   * `5000`.
   */
  followWaitMs?: number;
  /**
   * Names of events that go ahead of what is queued on a stream and not yet sent (an urgent
   * notice): written at once without their id, with an id-only frame in their place, so that
   * `Last-Event-ID` still names the last event received in order. Such an event may reach a
   * client twice (ahead, then in a replay), so it should replace a region rather than add to
   * one. Defaults to none.
   */
  ahead?: readonly string[];
}

const HEARTBEAT = encodeComment("ping");
/** Event names already found safe to send. */
const checkedNames = new Set<string>();

/** One message's htmx 4 variants, each encoded the first time a stream needs it. */
class Variants {
  readonly #message: SseMessage;
  #frames: Map<Framing, Uint8Array> | null = null;

  constructor(message: SseMessage) {
    this.#message = message;
  }

  for(framing: Framing): Uint8Array {
    this.#frames ??= new Map();
    let frame = this.#frames.get(framing);
    if (!frame) this.#frames.set(framing, (frame = framing.encode(this.#message)));
    return frame;
  }
}

/** An event that goes ahead (`HubOptions.ahead`): its frames without the id, per framing, and its id-only frame. */
class AheadVariants {
  readonly #plain: Uint8Array;
  readonly #variants: Variants;
  readonly #marker: Uint8Array;

  constructor(message: SseMessage) {
    const withoutId = { ...message, id: undefined };
    this.#plain = encodeMessage(withoutId);
    this.#variants = new Variants(withoutId);
    this.#marker = encodeIdOnly(message.id ?? "");
  }

  for(framing: Framing | null): Ahead {
    return { frame: framing === null ? this.#plain : this.#variants.for(framing), marker: this.#marker };
  }
}

/**
 * Settles once `subscriber` closes, and closes it when the client goes, if a `signal` is given
 * (the body's `cancel` does that too). Made apart from `Hub.open`, so that the closures a stream
 * keeps for its life hold nothing else.
 */
function whileOpen(subscriber: Subscriber, signal: AbortSignal | null): Promise<void> {
  return new Promise<void>((resolve) => {
    // `resolve` itself, not a closure around it: one object fewer for each open stream.
    subscriber.onClose(resolve as () => void);
    if (signal === null) return;
    if (signal.aborted) return subscriber.clientLeft();
    signal.addEventListener("abort", () => subscriber.clientLeft(), { once: true });
  });
}

/**
 * Followed events whose delivered counts are kept for publishers their event came round before (a few batches' worth).
 */
const RECENT_KEPT = 16_384;
/** Events read from the log per step of a replay. */
const REPLAY_BATCH = 500;

/** How a new stream begins: see `Hub.open`. */
export interface StreamStart {
  /** The id the client asks to resume after (`Last-Event-ID`), as it sent it, or `null`. */
  resumeFrom: string | null;
  /**
   * Whether a replay of what the stream missed after `afterId` may be served; when not, it gets
   * a fresh start instead (a cap on what one anonymous resume may pull). Defaults to yes.
   */
  mayReplay?(afterId: number, subscriber: Subscriber): Promise<boolean>;
  /**
   * The messages a stream starting afresh gets, as of `position` (the first should carry its id
   * so a reconnect resumes from there): a page's snapshot, and a notice when `cut` (an id was
   * asked for that the log does not cover).
   */
  fresh(position: Position, cut: boolean, subscriber: Subscriber): Promise<SseMessage[]>;
  /** Called once the stream has joined the hub (to log it, say). */
  opened?(subscriber: Subscriber): void;
  /** Called after a replay with how many events it wrote. */
  replayed?(subscriber: Subscriber, count: number): void;
  /** Called when the replay or the fresh start failed; the stream is closed after `farewell`. */
  failed?(subscriber: Subscriber, error: unknown): void;
}

/** A new stream: `SubscriberInit`, and the bytes written before anything else (a `retry:` line). */
export interface StreamInit extends Omit<SubscriberInit, "writer"> {
  first?: Uint8Array;
}

export class Hub {
  readonly log: EventLog;
  /** Hands every stream's queued frames to its socket, coalesced (`./writer.ts`). */
  readonly writer = new Writer();
  readonly #channels = new Map<Channel, Set<Subscriber>>();
  readonly #subscribers = new Set<Subscriber>();
  readonly #timers: Array<ReturnType<typeof setInterval>> = [];
  readonly #clientTimeoutMs: number;
  readonly #followWaitMs: number;
  #published = 0;
  #delivered = 0;
  #replayed = 0;
  #dropped: Record<"slow" | "stale", number> = { slow: 0, stale: 0 };
  #lastEventAt: number | null = null;
  /** Bytes written to streams that have closed; open ones count their own. */
  #bytesOfClosed = 0;
  readonly #publishBuckets = PUBLISH_BUCKETS.map(() => 0);
  #publishSum = 0;
  #publishCount = 0;
  readonly #leave = (subscriber: Subscriber) => this.#unsubscribe(subscriber);
  readonly #listeners = new Set<(channels: readonly Channel[], event: string) => void>();
  #onListenerError: ((error: unknown) => void) | undefined;
  #closed = false;
  /** With a shared log: what is followed, how far, and publishers waiting for their event to come round. */
  readonly #following: Promise<{ stop(): void }> | null;
  #followed = 0;
  /** Whether a shared log did not answer when the follower tried to start (and has not since). */
  #unreachable = false;
  /** The epoch followed; a new one restarts the ids. */
  #followedEpoch = "";
  /** Publishers waiting, by event id, each with the time it stops waiting (in the order they started). */
  readonly #waiting = new Map<number, { resolve: (delivered: number) => void; epoch: string; until: number }>();
  /** One timer for every waiting publisher, rather than one per publish that mostly fires for nothing. */
  #waitTimer: ReturnType<typeof setTimeout> | null = null;
  /**
   * Delivered counts of the latest followed events, for a publisher whose event came round first:
   * a ring by id (a slot holds the newest id that maps to it). A Map trimmed from its oldest key
   * cost time in proportion to its size in JSC (its iterator skips the deleted entries): 15 µs an
   * event at this size, half of what a Redis publish cost.
   */
  readonly #recent: { ids: Float64Array; delivered: Uint32Array };
  /** See `HubOptions.ahead`. */
  readonly #ahead: ReadonlySet<string>;

  constructor(options: HubOptions) {
    this.log = options.log;
    this.#ahead = new Set(options.ahead ?? []);
    const heartbeatMs = options.heartbeatMs ?? CORE_DEFAULTS.heartbeatMs;
    this.#clientTimeoutMs = options.clientTimeoutMs ?? CORE_DEFAULTS.clientTimeoutMs;
    this.#followWaitMs = options.followWaitMs ?? CORE_DEFAULTS.followWaitMs;
    // One timer for every stream: a timer per stream would cost memory and wake-ups per client.
    // It ticks twice an interval, so that a stream is never silent for longer than one.
    if (heartbeatMs > 0) this.#timers.push(setInterval(() => this.#beat(), heartbeatMs / 2));
    if (this.#clientTimeoutMs > 0) {
      this.#timers.push(setInterval(() => this.#sweep(), Math.max(50, Math.min(this.#clientTimeoutMs / 4, 5_000))));
    }
    const kept = this.log.follow ? RECENT_KEPT : 0;
    this.#recent = { ids: new Float64Array(kept), delivered: new Uint32Array(kept) };
    this.#following = this.log.follow ? this.#follow(this.log.follow.bind(this.log)) : null;
  }

  /**
   * A shared log: every process fans out what it follows, its own publishes included, so that all
   * send the same events in the same order (fanning out its own at once could overtake another
   * process's earlier event, which the stream would then skip as already seen).
   */
  async #follow(follow: NonNullable<EventLog["follow"]>): Promise<{ stop(): void }> {
    // Redis may not answer yet (herald started first): wait for it, rather than fail (an
    // unhandled rejection would end the process); until then streams and publishes get 503s.
    for (let wait = 100; ; wait = Math.min(wait * 2, 2_000)) {
      if (this.#closed) return { stop() {} };
      try {
        this.#followedEpoch = await this.log.epoch();
        this.#followed = await this.log.lastId();
        break;
      } catch {
        this.#unreachable = true;
        await Bun.sleep(wait);
      }
    }
    this.#unreachable = false;
    return follow({ epoch: this.#followedEpoch, id: this.#followed }, (events, reached) => {
      if (reached.epoch !== this.#followedEpoch) this.#newEpoch(reached);
      for (const event of events) {
        const delivered = this.#fanOut(
          event.channels,
          { event: event.event, id: formatEventId(event.epoch, event.id), data: event.data },
          event.id,
          event.at,
        );
        this.#followed = event.id;
        const waiting = this.#waiting.get(event.id);
        if (waiting?.epoch === event.epoch) {
          waiting.resolve(delivered);
          this.#waiting.delete(event.id);
        }
        const slot = event.id % RECENT_KEPT;
        this.#recent.ids[slot] = event.id;
        this.#recent.delivered[slot] = delivered;
      }
    });
  }

  /**
   * The shared log started a new history (Redis lost its data): its ids start again, so what the
   * streams have been sent and the recent delivered counts say nothing about them any more.
   */
  #newEpoch(reached: Position): void {
    this.#followedEpoch = reached.epoch;
    this.#followed = reached.id;
    this.#recent.ids.fill(0);
    for (const subscriber of this.#subscribers) subscriber.lastId = 0;
  }

  /**
   * The position up to which this hub has sent everything: a stream that starts from a snapshot
   * of the log up to here gets every later event live.
   */
  async position(): Promise<Position> {
    if (!this.#following) return { epoch: await this.log.epoch(), id: await this.log.lastId() };
    await this.#following;
    return { epoch: this.#followedEpoch, id: this.#followed };
  }

  /** Whether streams can start: false while a shared log has not answered since herald started. */
  get ready(): boolean {
    return !this.#unreachable;
  }

  /** Whether `epoch` is the one this hub sends now (a shared log's may have changed since a `position()`). */
  isCurrent(epoch: string): boolean {
    return this.#following === null || epoch === this.#followedEpoch;
  }

  /**
   * A stream that writes to `sink` (anything shaped like Bun's direct stream controller), through
   * this hub's writer, subscribed and live from now: for using the hub without HTTP, and in tests.
   */
  attach(sink: ConstructorParameters<typeof Subscriber>[0], init: Omit<SubscriberInit, "writer">): Subscriber {
    const subscriber = new Subscriber(sink, { ...init, writer: this.writer });
    this.subscribe(subscriber);
    return subscriber;
  }

  /** Adds an open stream to each of its channels, live from now; it leaves them all when it closes. */
  subscribe(subscriber: Subscriber): void {
    if (subscriber.closed) return;
    // A stream that arrives as the hub closes (its request was accepted just before) ends at once.
    if (this.#closed) {
      subscriber.close(undefined, "shutdown");
      return;
    }
    this.#subscribers.add(subscriber);
    for (const channel of subscriber.channels) {
      let members = this.#channels.get(channel);
      if (!members) this.#channels.set(channel, (members = new Set()));
      members.add(subscriber);
    }
    subscriber.onClose(this.#leave);
  }

  #unsubscribe(subscriber: Subscriber): void {
    if (!this.#subscribers.delete(subscriber)) return;
    this.#bytesOfClosed += subscriber.bytesSent;
    const reason = subscriber.closeReason;
    if (reason === "slow" || reason === "stale") this.#dropped[reason]++;
    for (const channel of subscriber.channels) {
      const members = this.#channels.get(channel);
      if (!members) continue;
      members.delete(subscriber);
      if (members.size === 0) this.#channels.delete(channel);
    }
  }

  /**
   * A `Response` body for a new stream, and the one owner of its start. When Bun asks for the
   * body, the stream writes `first`, joins its channels (live events wait from this moment), then
   * either replays what it missed after `start.resumeFrom`, when the log covers that position and
   * `mayReplay` agrees, or sends `start.fresh`; both at the socket's pace. Then it goes live, with
   * the events that arrived meanwhile and that the replay or the fresh start did not cover. It
   * stays open until it is closed or the client leaves, which Bun tells the body by cancelling it.
   * `signal` (the request's) may be given too, or `null`: reading `req.signal` makes Bun create
   * an `AbortSignal` for the request, which the stream would then keep for its life, so herald's
   * own route passes `null`.
   */
  open(init: StreamInit, signal: AbortSignal | null, start: StreamStart): ReadableStream {
    // A stream lives for hours and its start for a moment: what only the start needs (the
    // caller's callbacks and what they hold) is let go once it has run, rather than kept by
    // closures that live as long as the stream.
    let starting: { init: StreamInit; start: StreamStart } | null = { init, start };
    let opened: Subscriber | null = null;
    return new ReadableStream({
      type: "direct",
      pull: (controller) => {
        if (starting === null) return;
        const { init, start } = starting;
        starting = null;
        const subscriber = new Subscriber(controller, { ...init, writer: this.writer });
        opened = subscriber;
        const ended = whileOpen(subscriber, signal);
        if (subscriber.closed) return ended;
        const first = init.first;
        if (first) subscriber.write(first);
        subscriber.beginCatchUp();
        this.subscribe(subscriber);
        start.opened?.(subscriber);
        this.#begin(subscriber, start).catch((error: unknown) => {
          start.failed?.(subscriber, error);
          subscriber.close(first);
        });
        return ended;
      },
      // Bun cancels a response's body when its client goes (the connection closed, or an HTTP/2
      // stream reset), before the stream starts too.
      cancel: () => {
        starting = null;
        opened?.clientLeft();
      },
    });
  }
  async #begin(subscriber: Subscriber, start: StreamStart): Promise<void> {
    // An id of another epoch (another history: a new database, a Redis that lost its data), or
    // one from before epochs, is never taken as covered.
    const after = start.resumeFrom === null ? null : parseEventId(start.resumeFrom);
    if (
      after &&
      (await this.log.covers(after.epoch, after.id)) &&
      (!start.mayReplay || (await start.mayReplay(after.id, subscriber)))
    ) {
      start.replayed?.(subscriber, await this.replay(subscriber, after.id));
      return;
    }
    const position = await this.position();
    const messages = await start.fresh(position, start.resumeFrom !== null, subscriber);
    // A fresh start can be larger than the slow-consumer limit (a long inbox): it goes at the socket's pace.
    for (const message of messages) subscriber.pace(subscriber.encode(message));
    if (this.isCurrent(position.epoch)) subscriber.lastId = Math.max(subscriber.lastId, position.id);
    if (await subscriber.paced()) subscriber.endCatchUp();
  }

  /**
   * Writes a subscribed stream every logged event on its channels after `afterId`, in order,
   * then the live events that arrived meanwhile. The log is read a page at a time, and each page
   * is written at the socket's pace (`Subscriber.paced`) before the next is read, so a replay of
   * any length holds one page in memory, never counts as a slow consumer, and stops when the
   * stream closes. Call `beginCatchUp` and `subscribe` first (so nothing published during the
   * replay is missed) and check `log.covers(epoch, afterId)` (so nothing before it is). Resolves
   * with the number replayed.
   */
  async replay(subscriber: Subscriber, afterId: number): Promise<number> {
    subscriber.beginCatchUp();
    subscriber.lastId = Math.max(subscriber.lastId, afterId);
    let cursor = afterId;
    let count = 0;
    for (;;) {
      const events = await this.log.readAfter(cursor, subscriber.channels, REPLAY_BATCH);
      if (subscriber.closed) return count;
      for (const event of events) {
        if (
          !subscriber.replay(
            subscriber.encode({ event: event.event, id: formatEventId(event.epoch, event.id), data: event.data }),
            event.id,
            event.at,
          )
        )
          return count;
        cursor = event.id;
        count++;
      }
      this.#replayed += events.length;
      if (!(await subscriber.paced())) return count;
      if (events.length < REPLAY_BATCH) break;
    }
    subscriber.endCatchUp();
    return count;
  }

  /**
   * Logs one event and, once it is durable, sends it to every stream on `target` (or on any of
   * several targets; a stream on more than one of them still gets it once). Resolves with its
   * id and how many streams it was written to. Throws `HeraldError` for an unsafe event name.
   */
  async publish(target: Channel | readonly Channel[], publication: Publication): Promise<PublishResult> {
    const channels = typeof target === "string" ? [target] : target.length === 1 ? target : [...new Set(target)];
    // Refuse a bad event name before anything is logged (each name is checked once).
    if (!checkedNames.has(publication.event)) {
      encodeMessage({ event: publication.event, data: "" });
      if (checkedNames.size < 10_000) checkedNames.add(publication.event);
    }
    const started = performance.now();
    const { data } = publication;
    const stored = await this.log.append(
      { channels, event: publication.event, data: typeof data === "string" ? data : "", at: Date.now() },
      data,
    );
    const id = formatEventId(stored.epoch, stored.id);
    const delivered = this.#following
      ? await this.#followedOut(stored.id, stored.epoch)
      : this.#fanOut(channels, { event: stored.event, id, data: stored.data }, stored.id, stored.at);
    this.#observePublish((performance.now() - started) / 1000);
    return { id, delivered };
  }

  #observePublish(seconds: number): void {
    this.#publishSum += seconds;
    this.#publishCount++;
    for (let i = 0; i < PUBLISH_BUCKETS.length; i++) {
      if (seconds <= PUBLISH_BUCKETS[i]!) {
        this.#publishBuckets[i]!++;
        return;
      }
    }
  }

  /** Resolves with how many of this process's streams got event `id` of `epoch` once the follower has sent it. */
  #followedOut(id: number, epoch: string): Promise<number> {
    if (epoch === this.#followedEpoch && id <= this.#followed) {
      const slot = id % RECENT_KEPT;
      return Promise.resolve(this.#recent.ids[slot] === id ? this.#recent.delivered[slot]! : 0);
    }
    return new Promise((resolve) => {
      // The event is stored; if the follower is held up (Redis away), do not hold the publisher.
      this.#waiting.set(id, { resolve, epoch, until: performance.now() + this.#followWaitMs });
      if (!this.#waitTimer) this.#waitTimer = setTimeout(() => this.#stopWaiting(), this.#followWaitMs).unref();
    });
  }

  /** Answers the publishers that have waited `followWaitMs` (with 0 streams), and waits for the next. */
  #stopWaiting(): void {
    this.#waitTimer = null;
    const now = performance.now();
    for (const [id, { resolve, until }] of this.#waiting) {
      if (until > now) {
        this.#waitTimer = setTimeout(() => this.#stopWaiting(), until - now).unref();
        return;
      }
      this.#waiting.delete(id);
      resolve(0);
    }
  }

  #fanOut(channels: readonly Channel[], message: SseMessage, id: number, at: number): number {
    // Encoded once for every stream, when the first needs it (most events of a busy feed reach
    // none); htmx 4 streams get their page's variant, also encoded once.
    let frame: Uint8Array | null = null;
    // Made only when a stream needs a variant: most events reach none.
    let variants: Variants | null = null;
    const ahead = this.#ahead.size > 0 && this.#ahead.has(message.event ?? "") ? new AheadVariants(message) : null;
    let delivered = 0;
    if (channels.length === 1) {
      const members = this.#channels.get(channels[0]!);
      if (members)
        for (const subscriber of members)
          if (
            subscriber.deliver(
              subscriber.framing === null
                ? (frame ??= encodeMessage(message))
                : (variants ??= new Variants(message)).for(subscriber.framing),
              id,
              at,
              ahead?.for(subscriber.framing),
            )
          )
            delivered++;
    } else {
      const seen = new Set<Subscriber>();
      for (const channel of channels) {
        const members = this.#channels.get(channel);
        if (!members) continue;
        for (const subscriber of members) {
          if (seen.has(subscriber)) continue;
          seen.add(subscriber);
          if (
            subscriber.deliver(
              subscriber.framing === null
                ? (frame ??= encodeMessage(message))
                : (variants ??= new Variants(message)).for(subscriber.framing),
              id,
              at,
              ahead?.for(subscriber.framing),
            )
          )
            delivered++;
        }
      }
    }
    this.#published++;
    this.#delivered += delivered;
    this.#lastEventAt = at;
    for (const listener of this.#listeners) {
      try {
        listener(channels, message.event ?? "message");
      } catch (error) {
        // A listener's fault is its own: the event is stored and sent, and the next one too.
        this.#onListenerError?.(error);
      }
    }
    return delivered;
  }

  /**
   * Calls `listener` with the channels and name of every event this hub sends to its streams,
   * its own publishes and (with a shared log) every other process's, right after it is queued on
   * the streams. Returns a function that removes it.
   */
  onSent(
    listener: (channels: readonly Channel[], event: string) => void,
    onError?: (error: unknown) => void,
  ): () => void {
    this.#listeners.add(listener);
    this.#onListenerError ??= onError;
    return () => this.#listeners.delete(listener);
  }

  /** The users with a stream open on `channel` here (each once), and how many streams there are not signed in. */
  usersOn(channel: Channel): { users: string[]; anonymous: number } {
    const users = new Set<string>();
    let anonymous = 0;
    for (const subscriber of this.#channels.get(channel) ?? []) {
      if (subscriber.userId === null) anonymous++;
      else users.add(subscriber.userId);
    }
    return { users: [...users], anonymous };
  }

  /** How many of this hub's streams on `channel` belong to `userId`. */
  usersStreams(channel: Channel, userId: string): number {
    let n = 0;
    for (const subscriber of this.#channels.get(channel) ?? []) if (subscriber.userId === userId) n++;
    return n;
  }

  /** The users with a stream open on this hub. */
  connectedUsers(): string[] {
    const users: string[] = [];
    for (const channel of this.#channels.keys()) if (channelKind(channel) === "user") users.push(channelName(channel));
    return users;
  }

  /** Sends to every stream of one signed-in user. */
  publishToUser(userId: string, publication: Publication): Promise<PublishResult> {
    return this.publish(userChannel(userId), publication);
  }

  /** Sends to every stream following `topic`. */
  publishToTopic(topic: string, publication: Publication): Promise<PublishResult> {
    return this.publish(topicChannel(topic), publication);
  }

  /** Sends to every open stream. */
  publishToEveryone(publication: Publication): Promise<PublishResult> {
    return this.publish(EVERYONE, publication);
  }

  /**
   * Writes a frame that is not logged (a per-user figure, a notice) to the streams on `channel`
   * now. Returns how many got it.
   */
  signal(channel: Channel, message: SseMessage): number {
    const frame = encodeMessage(message);
    const variants = new Variants(message);
    let written = 0;
    for (const subscriber of this.#channels.get(channel) ?? [])
      if (subscriber.write(subscriber.framing === null ? frame : variants.for(subscriber.framing))) written++;
    return written;
  }

  /**
   * Like `signal`, with a message made for each user on `channel` (`null` for streams not signed
   * in), so that one user can be told something the others are not, or the reverse (a typing
   * indicator that never shows the typist themselves). `render` is called and its message encoded
   * once per user; a `null` from it sends that user nothing. Returns how many streams got one.
   */
  signalEach(channel: Channel, render: (userId: string | null) => SseMessage | null): number {
    const made = new Map<string | null, { frame: Uint8Array; variants: Variants } | null>();
    let written = 0;
    for (const subscriber of this.#channels.get(channel) ?? []) {
      let own = made.get(subscriber.userId);
      if (own === undefined) {
        const message = render(subscriber.userId);
        own = message && { frame: encodeMessage(message), variants: new Variants(message) };
        made.set(subscriber.userId, own);
      }
      if (own && subscriber.write(subscriber.framing === null ? own.frame : own.variants.for(subscriber.framing)))
        written++;
    }
    return written;
  }

  /** Open streams in total. */
  get clientCount(): number {
    return this.#subscribers.size;
  }

  /** Open streams on one channel. */
  subscriberCount(channel: Channel): number {
    return this.#channels.get(channel)?.size ?? 0;
  }

  /** This process's open streams, for the monitor. */
  subscribers(): IterableIterator<Subscriber> {
    return this.#subscribers.values();
  }

  /** Whether the user has at least one open stream. */
  isConnected(userId: string): boolean {
    return this.subscriberCount(userChannel(userId)) > 0;
  }

  /** Closes every stream of a user (after sending `farewell`, if given). Returns how many were closed. */
  disconnectUser(userId: string, farewell?: SseMessage): number {
    return this.disconnect({ channel: userChannel(userId) }, farewell);
  }

  /**
   * Closes this hub's streams on `channel` and/or opened with `tag` (after sending `farewell`, if
   * given). Returns how many were closed.
   */
  disconnect({ channel, tag }: { channel?: Channel; tag?: string }, farewell?: SseMessage): number {
    const pool = channel ? (this.#channels.get(channel) ?? new Set<Subscriber>()) : this.#subscribers;
    const closing = [...pool].filter((subscriber) => tag === undefined || subscriber.tag === tag);
    const frame = farewell && encodeMessage(farewell);
    for (const subscriber of closing) subscriber.close(frame);
    return closing.length;
  }

  /** Open streams in total, per user and per topic. */
  counts(): PresenceCounts {
    // Null-prototype maps: a user or topic named "constructor" is a key like any other.
    const counts: PresenceCounts = {
      clients: this.#subscribers.size,
      users: Object.create(null),
      topics: Object.create(null),
    };
    for (const [channel, members] of this.#channels) {
      const kind = channelKind(channel);
      if (kind === "user") counts.users[channelName(channel)] = members.size;
      else if (kind === "topic") counts.topics[channelName(channel)] = members.size;
    }
    return counts;
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
      replayed: this.#replayed,
      droppedSlow: this.#dropped.slow,
      droppedStale: this.#dropped.stale,
      lastEventAt: this.#lastEventAt,
      bytesWritten: this.#bytesOfClosed + this.#bytesOfOpen(),
      publishSeconds: {
        // Cumulative, as Prometheus histograms are.
        buckets: PUBLISH_BUCKETS.map(
          (bound, i) => [bound, this.#publishBuckets.slice(0, i + 1).reduce((a, b) => a + b, 0)] as const,
        ),
        sum: this.#publishSum,
        count: this.#publishCount,
      },
    };
  }

  #bytesOfOpen(): number {
    let bytes = 0;
    for (const subscriber of this.#subscribers) bytes += subscriber.bytesSent;
    return bytes;
  }

  /**
   * A heartbeat comment to each stream that nothing was handed to for a whole tick, that is, for
   * between half an interval and one: as Mercure's heartbeat, it keeps quiet connections open
   * through proxies, and a stream that events keep busy gets none. At a broadcast to every stream,
   * a heartbeat to every stream in the same moment would double the fan-out's writes.
   */
  #beat(): void {
    const tick = ++this.writer.tick;
    for (const subscriber of this.#subscribers) if (tick - subscriber.wroteAt >= 2) subscriber.write(HEARTBEAT);
  }

  #sweep(): void {
    const now = Date.now();
    for (const subscriber of [...this.#subscribers])
      if (subscriber.isStale(now, this.#clientTimeoutMs)) subscriber.dropStale();
  }

  /**
   * Stops the timers and closes every stream, each after a frame from `farewell` (a `retry:`
   * hint, say), with `reason`.
   */
  close(farewell?: (subscriber: Subscriber) => Uint8Array | undefined, reason: CloseReason = "server"): void {
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
    this.#closed = true;
    void this.#following?.then((follower) => follower.stop());
    // Publishers waiting for their event to come round are answered now, not after `followWaitMs`.
    if (this.#waitTimer) clearTimeout(this.#waitTimer);
    this.#waitTimer = null;
    for (const { resolve } of this.#waiting.values()) resolve(0);
    this.#waiting.clear();
    for (const subscriber of [...this.#subscribers]) subscriber.close(farewell?.(subscriber), reason);
  }
}
