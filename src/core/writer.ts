/**
 * The writer: hands each due stream's queued frames to its socket in one send. It starts at the
 * end of the event loop's current turn (`setImmediate`), after every request that turn took, and
 * works in slices of at most `WRITE_SLICE_MS`; between slices the event loop takes requests, and
 * whatever they publish queues behind. A stream that several events are due for meanwhile gets
 * them in one system call rather than one each, so under load a fan-out costs fewer calls per
 * event; a lone event still goes out in the turn it was published. (Started as a microtask
 * instead, the writer ran once per request: with the memory log, whose appends commit at once,
 * 32 publishers at once sent each event to each stream in a call of its own.)
 *
 * Each hub owns one; a stream is handed the writer of the hub it joins.
 */

/** What the writer sends: a stream with frames queued. */
export interface Due {
  /** Hands the queued frames to the socket. */
  send(): void;
}

/**
 * The most time the writer spends before letting the event loop take requests again (checked
 * every 32 streams). Each I/O step of a publish (its request, a Redis reply) waits for the slice
 * in progress, so a long slice delays every publish behind it (see bench/README.md).
 */
const WRITE_SLICE_MS = 0.5;
/** The largest shared buffer frames are joined in; a larger handover gets its own. */
const JOINED_MAX = 1024 * 1024;

export class Writer {
  /** Streams with frames queued, in the order they became due; those before `#next` are sent. */
  #due: Due[] = [];
  #next = 0;
  #scheduled = false;
  /** Where a stream's frames are joined before one write (see `join`). */
  #joined = new Uint8Array(64 * 1024);
  readonly #run = () => this.#writeDue();
  /**
   * The heartbeat clock: the hub advances it every half heartbeat interval, and a stream notes it
   * each time it hands bytes to its socket (`Subscriber.wroteAt`).
   */
  tick = 0;

  /** Sends `stream`'s frames at the end of this turn (call once, when its queue becomes non-empty). */
  due(stream: Due): void {
    this.#due.push(stream);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#run);
  }

  /**
   * `frames` (`bytes` in all) as one buffer. Several frames are copied into one and written once:
   * a write into Bun's sink costs far more than the copy, and Bun copies what it is given (it
   * holds no reference), so one shared buffer serves every stream in turn.
   */
  join(frames: readonly Uint8Array[], bytes: number): Uint8Array {
    if (frames.length === 1) return frames[0]!;
    if (this.#joined.byteLength < bytes && bytes <= JOINED_MAX) {
      this.#joined = new Uint8Array(Math.min(JOINED_MAX, Math.max(bytes, this.#joined.byteLength * 2)));
    }
    const into = bytes <= this.#joined.byteLength ? this.#joined : new Uint8Array(bytes);
    let at = 0;
    for (const part of frames) {
      into.set(part, at);
      at += part.byteLength;
    }
    return into.subarray(0, at);
  }

  #writeDue(): void {
    const started = performance.now();
    const due = this.#due;
    // Streams that become due meanwhile join the end of `due`, and go in this pass.
    let next = this.#next;
    while (next < due.length) {
      due[next++]!.send();
      if ((next & 31) === 0 && performance.now() - started > WRITE_SLICE_MS) break;
    }
    if (next === due.length) {
      this.#due = [];
      this.#next = 0;
      this.#scheduled = false;
    } else {
      // Where the next slice starts: the list is not copied, which for a large fan-out in many
      // slices would cost more than the writes' own work.
      this.#next = next;
      setImmediate(this.#run);
    }
  }
}
