/**
 * One open SSE stream: the channels it listens on, who opened it, and the bytes written to it.
 */
import type { Channel } from "./channel.ts";

/** Who and what a new stream is for. */
export interface SubscriberInit {
  /** Channels to join. A stream that repeats a channel still gets each event once. */
  channels: readonly Channel[];
  /** The verified user who opened it, or `null` when anonymous. */
  userId: string | null;
}

/** The part of Bun's direct stream controller a subscriber writes through. */
type Sink = Pick<ReadableStreamDirectController, "write" | "flush" | "end">;

let lastId = 0;

export class Subscriber {
  /** Process-unique number, for logs and the monitor. */
  readonly id = ++lastId;
  readonly channels: readonly Channel[];
  readonly userId: string | null;
  readonly connectedAt = Date.now();
  /** Events delivered to this stream (heartbeats not counted). */
  eventsSent = 0;
  /** Bytes written, heartbeats included. */
  bytesSent = 0;
  /** `Date.now()` of the last event delivered, or `null` before the first. */
  lastEventAt: number | null = null;

  #sink: Sink;
  #closed = false;
  #onClose: Array<() => void> = [];

  constructor(sink: Sink, init: SubscriberInit) {
    this.#sink = sink;
    this.channels = [...new Set(init.channels)];
    this.userId = init.userId;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Runs `listener` once when the stream closes, for whatever reason. */
  onClose(listener: () => void): void {
    if (this.#closed) listener();
    else this.#onClose.push(listener);
  }

  /** Writes an event frame published at `now`. Returns `false` when the stream is already gone. */
  deliver(frame: Uint8Array, now: number): boolean {
    if (!this.write(frame)) return false;
    this.eventsSent++;
    this.lastEventAt = now;
    return true;
  }

  /** Writes raw bytes (a heartbeat, a retry hint). Returns `false` when the stream is already gone. */
  write(frame: Uint8Array): boolean {
    if (this.#closed) return false;
    // Bun returns 0 once the client has gone, sometimes before the request's abort signal fires.
    // A pending Promise means Bun buffered the bytes for a client that is not reading yet.
    if (this.#sink.write(frame) === 0) {
      this.close();
      return false;
    }
    this.#sink.flush();
    this.bytesSent += frame.byteLength;
    return true;
  }

  /** Ends the stream (after writing `farewell`, if given) and leaves every channel. Safe to call twice. */
  close(farewell?: Uint8Array): void {
    if (this.#closed) return;
    if (farewell) this.write(farewell);
    this.#closed = true;
    try {
      this.#sink.end();
    } catch {
      // The client already went away; ending a cancelled stream throws and there is nothing left to end.
    }
    for (const listener of this.#onClose.splice(0)) listener();
  }
}

/**
 * A `ReadableStream` for a `Response` body: writes `first` at once (Bun holds back the response
 * head until the first body bytes), then hands the subscriber to `attach`. It stays open until the
 * client disconnects (`signal`) or the subscriber is closed.
 */
export function subscriberStream(
  init: SubscriberInit,
  first: Uint8Array,
  signal: AbortSignal,
  attach: (subscriber: Subscriber) => void,
): ReadableStream {
  return new ReadableStream({
    type: "direct",
    pull(controller) {
      const subscriber = new Subscriber(controller, init);
      return new Promise<void>((resolve) => {
        subscriber.onClose(resolve);
        if (signal.aborted || !subscriber.write(first)) return subscriber.close();
        signal.addEventListener("abort", () => subscriber.close(), { once: true });
        attach(subscriber);
      });
    },
  });
}
