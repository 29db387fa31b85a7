/**
 * One open SSE stream: the channels it listens on, who opened it, and the bytes written to it.
 *
 * Backpressure: Bun hands bytes to the socket until the kernel's buffers are full; then
 * `write()` returns a Promise that settles when they drain, and later bytes wait in this
 * process. Those waiting bytes are `pendingBytes`. Past `maxBuffer` the stream is a slow
 * consumer and its connection is dropped at once (see `close`), which frees what it held; the
 * client reconnects with the last id it read. A stream that has not drained for `timeoutMs` is
 * stale and goes the same way.
 *
 * Pacing: what herald itself chose to send a new stream (a replay, a snapshot) is queued apart
 * (`pace`) and written piece by piece, each piece once Bun holds nothing (`paced`), so any amount
 * of it reaches a client that reads, and none of it counts against `maxBuffer`: that limit is
 * for live events the client did not keep up with.
 *
 * Coalescing: a write queues its frame on the stream, and the hub's writer (`./writer.ts`) hands
 * each due stream's frames to its socket in one send.
 *
 * Catch-up: while a resumed stream replays from the event log, live events wait in a queue and
 * are written after the replay, skipping any the replay already wrote. Every event's id is
 * remembered, so no event is written twice. The queue is live traffic: it counts.
 */
import type { Channel } from "./channel.ts";
import { encodeMessage, type SseMessage } from "./sse.ts";
import { CORE_DEFAULTS } from "./defaults.ts";
import { Writer, type Due } from "./writer.ts";

/** Why a stream ended. */
export type CloseReason = "client" | "server" | "slow" | "stale" | "shutdown";

/**
 * How a stream's messages are encoded when not as plain named events: the server frames a page's
 * events for htmx 4 this way (see `src/server/htmx.ts`).
 */
export interface Framing {
  encode(message: SseMessage): Uint8Array;
}

/**
 * An event that goes ahead of what is queued on a stream (`HubOptions.ahead`): its frame
 * without the id, and the id-only frame that takes its place in order.
 */
export interface Ahead {
  frame: Uint8Array;
  marker: Uint8Array;
}

/** Who and what a new stream is for. */
export interface SubscriberInit {
  /** Channels to join. A stream that repeats a channel still gets each event once. */
  channels: readonly Channel[];
  /** The verified user who opened it, or `null` when anonymous. */
  userId: string | null;
  /** Unsent bytes of live events allowed before the stream counts as a slow consumer. Defaults to 1 MiB. */
  maxBuffer?: number;
  /** For a stream opened by htmx 4: how its page's events are framed. Defaults to `null` (htmx 2's named events). */
  framing?: Framing | null;
  /** An opaque label to find the stream by later (the server gives its sign-in session's id). */
  tag?: string;
  /** Sends its queued frames; the hub's own. Defaults to a writer of its own (a stream outside a hub, in a test). */
  writer?: Writer;
}

/**
 * The part of Bun's direct stream controller a subscriber writes through. `close(error)` drops
 * the connection; a sink without it (a test's) is ended instead.
 */
type Sink = Pick<ReadableStreamDirectController, "write" | "flush" | "end"> &
  Partial<Pick<ReadableStreamDirectController, "close">>;

/**
 * Why a slow or stale stream's connection is dropped. Bun 1.4.5 keeps a connection open while it
 * holds unsent bytes for it, whatever `end()` or `server.timeout(req, 1)` asked (no FIN for as
 * long as we watched); `close(error)` drops those bytes and resets the connection at once. Bun
 * prints the error on stderr, with its stack and source lines unless it has none: made without
 * a stack, the line is just `error: herald: ...`.
 */
const DROPPED = (() => {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const error = new Error(
    "herald: a slow or stalled stream's connection was dropped (see the log's \"stream closed\" line)",
  );
  Error.stackTraceLimit = limit;
  return error;
})();

/** Bytes of herald's own frames (a replay, a snapshot) handed to the socket at a time. */
const PACE_PIECE = 64 * 1024;

let lastSerial = 0;

export class Subscriber implements Due {
  /** Process-unique number, for logs and the monitor. */
  readonly serial = ++lastSerial;
  readonly channels: readonly Channel[];
  readonly userId: string | null;
  /** The label it was opened with (`SubscriberInit.tag`), or `null`. */
  readonly tag: string | null;
  readonly connectedAt = Date.now();
  /** How this stream's events are framed: `null` for named events (htmx 2), else for its htmx 4 page. */
  readonly framing: Framing | null;
  /** Events delivered to this stream (heartbeats not counted). */
  eventsSent = 0;
  /** Bytes written, heartbeats included. */
  bytesSent = 0;
  /** `Date.now()` of the last event delivered, or `null` before the first. */
  lastEventAt: number | null = null;
  /** The highest event id written; a live event at or below it is not written again. */
  lastId = 0;
  /** The writer's `tick` when bytes were last handed to the socket: the hub's heartbeat skips busy streams. */
  wroteAt: number;
  /** `Date.now()` when the socket stopped taking bytes, or `null` while it keeps up. */
  drainingSince: number | null = null;
  /** Why the stream ended, once it has. */
  closeReason: CloseReason | null = null;

  readonly #sink: Sink;
  readonly #writer: Writer;
  readonly #maxBuffer: number;
  /** Settles once Bun holds nothing for the socket, or the stream has closed; `null` while Bun holds nothing. */
  #drain: Promise<void> | null = null;
  #settleDrain: (() => void) | null = null;
  /** Live events held back during a replay, or `null` when live. */
  #queue: Array<{ frame: Uint8Array; id: number; at: number }> | null = null;
  #onClose: Array<(subscriber: Subscriber) => void> = [];
  /**
   * Frames written but not yet handed to the socket, and their bytes; `null` when there are none
   * (most streams, most of the time: no list is kept for them).
   */
  #out: Uint8Array[] | null = null;
  #outBytes = 0;
  /** Bytes of the catch-up queue. */
  #queuedBytes = 0;
  /** Bytes of live frames handed to Bun that it holds until the socket drains. */
  #heldBytes = 0;
  /** herald's own frames (a replay, a snapshot), written at the socket's pace by `paced()`. */
  #own: Uint8Array[] | null = null;
  #ownBytes = 0;

  /**
   * Hands the stream's queued frames to its socket in one write, then flushes, so they leave in
   * one system call (uWS sends a socket's corked bytes when another socket is written or on a
   * flush, not on each write).
   */
  send(): void {
    const frames = this.#out;
    if (frames === null || this.closed) return;
    const bytes = this.#outBytes;
    this.#out = null;
    this.#outBytes = 0;
    this.#tryHand(frames, bytes, true);
  }

  #tryHand(frames: readonly Uint8Array[], bytes: number, live: boolean): void {
    try {
      this.#hand(frames, bytes, live);
    } catch {
      // A stream Bun has already torn down throws on write: it is gone, and the writer goes on to the others.
      this.close(undefined, "client");
    }
  }

  /** Writes `frames` to the socket; bytes Bun then holds count against `maxBuffer` when `live`. */
  #hand(frames: readonly Uint8Array[], bytes: number, live: boolean): void {
    const written = this.#sink.write(this.#writer.join(frames, bytes));
    // Bun returns 0 once the client has gone, sometimes before it cancels the stream's body.
    if (written === 0) {
      this.close(undefined, "client");
      return;
    }
    const full = typeof written === "number" ? null : written;
    this.#sink.flush();
    this.wroteAt = this.#writer.tick;
    if (full && !this.#drain) this.#watchDrain(full);
    if (this.#drain && live) {
      this.#heldBytes += bytes;
      if (this.pendingBytes > this.#maxBuffer) this.#fail("slow");
    }
  }

  #watchDrain(full: Promise<number>): void {
    this.drainingSince = Date.now();
    let settle!: () => void;
    const drain = new Promise<void>((resolve) => (settle = resolve));
    this.#drain = drain;
    this.#settleDrain = settle;
    full.then(
      () => {
        if (this.#drain === drain) {
          this.#drain = null;
          this.#settleDrain = null;
          this.drainingSince = null;
          this.#heldBytes = 0;
        }
        settle();
      },
      () => {
        // When the client goes, Bun resolves a pending write (and cancels the body); a rejection
        // can only mean the connection is gone too.
        this.close(undefined, "client");
        settle();
      },
    );
  }

  constructor(sink: Sink, init: SubscriberInit) {
    this.#sink = sink;
    this.channels = [...new Set(init.channels)];
    this.userId = init.userId;
    this.tag = init.tag ?? null;
    this.#maxBuffer = init.maxBuffer ?? CORE_DEFAULTS.maxBuffer;
    this.#writer = init.writer ?? new Writer();
    this.wroteAt = this.#writer.tick;
    this.framing = init.framing ?? null;
  }

  /** A message as this stream gets it (see `framing`). */
  encode(message: SseMessage): Uint8Array {
    return this.framing ? this.framing.encode(message) : encodeMessage(message);
  }

  /**
   * Bytes of live traffic waiting in this process: queued, held back during a replay, or held by
   * Bun until the socket drains. herald's own frames (`pace`) are not counted.
   */
  get pendingBytes(): number {
    return this.#outBytes + this.#queuedBytes + this.#heldBytes;
  }

  get closed(): boolean {
    return this.closeReason !== null;
  }

  /** Runs `listener` once when the stream closes, for whatever reason. */
  onClose(listener: (subscriber: Subscriber) => void): void {
    if (this.closed) listener(this);
    else this.#onClose.push(listener);
  }

  /**
   * Writes a live event published at `at`, or queues it during a replay. With `ahead`, and
   * anything queued in this process before it, the event goes first, without its id, and its id
   * follows in its place. Returns `false` once the stream is gone.
   */
  deliver(frame: Uint8Array, id: number, at: number, ahead?: Ahead): boolean {
    if (this.closed) return false;
    if (id <= this.lastId) return true;
    if (ahead && (this.#out !== null || this.#queue !== null || this.#own !== null)) {
      // What Bun already holds cannot be overtaken; what waits here can.
      if (this.#out === null) {
        this.#out = [];
        this.#writer.due(this);
      }
      this.#out.unshift(ahead.frame);
      this.#outBytes += ahead.frame.byteLength;
      this.bytesSent += ahead.frame.byteLength;
      frame = ahead.marker;
    }
    if (this.#queue) {
      this.#queue.push({ frame, id, at });
      this.#queuedBytes += frame.byteLength;
      if (this.pendingBytes > this.#maxBuffer) this.#fail("slow");
      return !this.closed;
    }
    return this.#event(frame, id, at);
  }

  /**
   * Queues an event from the log (a replay), skipping ids already written, to be written by
   * `paced()`. Returns `false` once the stream is gone.
   */
  replay(frame: Uint8Array, id: number, at: number): boolean {
    if (this.closed) return false;
    if (id <= this.lastId) return true;
    this.pace(frame);
    this.lastId = id;
    this.eventsSent++;
    this.lastEventAt = at;
    return true;
  }

  /**
   * Queues a frame herald chose to send (a replay's event, a snapshot, a notice), to be written by
   * `paced()` after what `write()` queued before it. Not counted against `maxBuffer`.
   */
  pace(frame: Uint8Array): void {
    if (this.closed) return;
    if (this.#own === null) this.#own = [frame];
    else this.#own.push(frame);
    this.#ownBytes += frame.byteLength;
    this.bytesSent += frame.byteLength;
  }

  /**
   * Writes the frames `pace` queued at the socket's pace: a piece at a time, each once Bun holds
   * nothing for the socket. Resolves with `true` once all are written and taken, `false` once the
   * stream has closed (the client left, or it was dropped as stale meanwhile).
   */
  async paced(): Promise<boolean> {
    while (!this.closed) {
      if (this.#drain) {
        await this.#drain;
        continue;
      }
      const own = this.#own;
      if (own === null) return true;
      // What `write()` queued before (the stream's `retry:` line) goes first.
      this.send();
      if (this.closed || this.#drain) continue;
      let count = 0;
      let bytes = 0;
      while (count < own.length && (count === 0 || bytes + own[count]!.byteLength <= PACE_PIECE))
        bytes += own[count++]!.byteLength;
      const piece = own.splice(0, count);
      if (own.length === 0) this.#own = null;
      this.#ownBytes -= bytes;
      this.#tryHand(piece, bytes, false);
    }
    return false;
  }

  #event(frame: Uint8Array, id: number, at: number): boolean {
    if (!this.write(frame)) return false;
    this.lastId = id;
    this.eventsSent++;
    this.lastEventAt = at;
    return true;
  }

  /** Holds live events back until `endCatchUp()`. */
  beginCatchUp(): void {
    this.#queue ??= [];
  }

  /** Writes the live events that arrived during the replay (those it did not cover), and goes live. */
  endCatchUp(): void {
    const queue = this.#queue;
    this.#queue = null;
    if (!queue) return;
    for (const { frame, id, at } of queue) {
      this.#queuedBytes -= frame.byteLength;
      if (id > this.lastId && !this.#event(frame, id, at)) return;
    }
  }

  /** Writes raw bytes (a heartbeat, a snapshot): queued for the writer. Returns `false` once the stream is gone. */
  write(frame: Uint8Array): boolean {
    if (this.closed) return false;
    if (this.#out === null) {
      this.#out = [frame];
      this.#writer.due(this);
    } else this.#out.push(frame);
    this.#outBytes += frame.byteLength;
    this.bytesSent += frame.byteLength;
    if (this.pendingBytes > this.#maxBuffer) {
      this.#fail("slow");
      return false;
    }
    return true;
  }

  /** True when the socket has not drained for longer than `timeoutMs`: a stalled or half-open client. */
  isStale(now: number, timeoutMs: number): boolean {
    return this.drainingSince !== null && now - this.drainingSince > timeoutMs;
  }

  /** Ends a stream that cannot keep up: its connection is dropped (see `close`). */
  #fail(reason: "slow" | "stale"): void {
    this.close(undefined, reason);
  }

  /** Ends the stream of a client that left: Bun cancelled its body, and has torn the stream down. */
  clientLeft(): void {
    this.#end(undefined, "client", true);
  }

  /** Ends a stalled stream; see `isStale`. */
  dropStale(): void {
    this.#fail("stale");
  }

  /**
   * Ends the stream and leaves every channel. Safe to call twice. What `write()` queued is sent
   * first, then `farewell`, if given; what `pace()` queued is not (the client resumes from the
   * last id it read, before those). A slow or stale stream's connection is dropped instead, with
   * whatever Bun and the kernel still hold for it: its client reconnects at once and resumes from
   * the last id it read. Ended instead, it would keep its connection while Bun holds bytes for it:
   * a client that does not read would see no end, and an EventSource that sees none never
   * reconnects.
   */
  close(farewell?: Uint8Array, reason: CloseReason = "server"): void {
    this.#end(farewell, reason, false);
  }

  /** `close`, for a stream Bun has already torn down when `torn`. */
  #end(farewell: Uint8Array | undefined, reason: CloseReason, torn: boolean): void {
    if (this.closed) return;
    const drop = reason === "slow" || reason === "stale";
    const frames = drop || reason === "client" ? [] : (this.#out ?? []);
    this.#out = null;
    this.#outBytes = 0;
    this.#own = null;
    this.#ownBytes = 0;
    if (farewell && !drop && reason !== "client") frames.push(farewell);
    // Marked closed before the last writes, so that nothing they might set off closes it twice.
    this.closeReason = reason;
    try {
      for (const frame of frames) this.#sink.write(frame);
    } catch {
      // Bun already tore the stream down (the client left): nothing more can be written to it.
    }
    this.#queue = null;
    this.#queuedBytes = 0;
    this.#settleDrain?.();
    try {
      if (drop && this.#sink.close) this.#sink.close(DROPPED);
      // A client that left took its stream with it: Bun has torn it down, and ending it costs a
      // thrown error for nothing. A failed write ends it, whatever made it fail.
      else if (!torn) this.#sink.end();
    } catch {
      // The client already went away; ending a cancelled stream throws and there is nothing left to end.
    }
    for (const listener of this.#onClose.splice(0)) listener(this);
  }
}
