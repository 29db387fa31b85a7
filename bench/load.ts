/**
 * The load client: holds many SSE streams over raw TCP (`Bun.connect`, so one process holds
 * thousands cheaply), counts the frames each receives and records publish-to-receive latency.
 *
 * A frame ends with a blank line ("\n\n"). Bun sends each flushed write as one HTTP chunk, so a
 * frame never straddles chunk framing; only a TCP read can split it, which `lastWasNewline` covers.
 */
import type { Socket } from "bun";

const NEWLINE = 10;

interface StreamState {
  frames: number;
  /** Frames received before the measured events (the retry hint, a snapshot). */
  base: number;
  lastWasNewline: boolean;
  headersDone: boolean;
  /** The response head received so far, while it is incomplete (a TCP read can end inside it). */
  head: Buffer | null;
  status: number;
}

export interface LoadOptions {
  /**
   * Address to connect to. Defaults to `127.0.0.1`; another loopback address (127.0.0.2, …) gives another range of
   * source ports.
   */
  host?: string;
  /** Called for every measured event a stream receives: its number (1-based) and the wall-clock time in ms. */
  onDelivery?: (n: number, at: number) => void;
  port: number;
  /** Request path with query, e.g. `/sse?topic=bench`. */
  path: string;
  /** Extra request header lines, e.g. a cookie. */
  headers?: Record<string, string>;
}

export class LoadClient {
  readonly #options: LoadOptions;
  readonly #sockets: Socket<StreamState>[] = [];
  /** Measured events received across all streams (see `expect`). */
  delivered = 0;
  failed = 0;
  /** Publish send times, by publish number (0-based). */
  #publishedAt: number[] = [];
  #latencies: Float64Array = new Float64Array(0);
  #latencyCount = 0;

  constructor(options: LoadOptions) {
    this.#options = options;
  }

  get open(): number {
    return this.#sockets.length;
  }

  /** Opens `count` streams, `batch` at a time, and waits until each has its first frame. */
  async connect(count: number, batch = 250): Promise<void> {
    const { port, path, headers = {} } = this.#options;
    const request = `GET ${path} HTTP/1.1\r\nHost: ${this.#options.host ?? "127.0.0.1"}:${port}\r\nAccept: text/event-stream\r\n${Object.entries(
      headers,
    )
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("")}\r\n`;
    const client = this;
    for (let started = 0; started < count; started += batch) {
      const wave = Math.min(batch, count - started);
      let ready = 0;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${ready}/${wave} streams opened`)), 30_000);
        const done = () => {
          if (++ready === wave) {
            clearTimeout(timer);
            resolve();
          }
        };
        for (let i = 0; i < wave; i++) {
          Bun.connect<StreamState>({
            hostname: this.#options.host ?? "127.0.0.1",
            port,
            data: { frames: 0, base: 0, lastWasNewline: false, headersDone: false, head: null, status: 0 },
            socket: {
              open(socket) {
                client.#sockets.push(socket);
                socket.write(request);
              },
              data(socket, chunk) {
                const state = socket.data;
                const before = state.frames;
                client.#count(state, chunk);
                if (before === 0 && state.frames > 0) {
                  if (state.status !== 200) client.failed++;
                  done();
                  return;
                }
                const now = performance.now();
                for (let n = before; n < state.frames; n++) client.#record(n + 1 - state.base, now);
              },
              close() {},
              error() {
                client.failed++;
              },
            },
          }).catch(() => {
            client.failed++;
            done();
          });
        }
      });
    }
  }

  #count(state: StreamState, chunk: Buffer): void {
    let from = 0;
    if (!state.headersDone) {
      // The head may arrive over several reads: keep it until its blank line.
      if (state.head) chunk = Buffer.concat([state.head, chunk]);
      const end = chunk.indexOf("\r\n\r\n");
      if (end < 0) {
        state.head = Buffer.from(chunk);
        return;
      }
      state.head = null;
      state.status = Number(chunk.subarray(9, 12).toString());
      state.headersDone = true;
      from = end + 4;
    }
    if (state.lastWasNewline && chunk[from] === NEWLINE) {
      state.frames++;
      from++;
    }
    for (;;) {
      const at = chunk.indexOf("\n\n", from);
      if (at < 0) break;
      state.frames++;
      from = at + 2;
    }
    state.lastWasNewline = chunk.length > 0 && chunk[chunk.length - 1] === NEWLINE;
  }

  /** Measured event `n` (1-based) of a stream arrived at `now`. */
  #record(n: number, now: number): void {
    if (n < 1) return;
    this.delivered++;
    this.#options.onDelivery?.(n, performance.timeOrigin + now);
    const sentAt = this.#publishedAt[n - 1];
    if (sentAt !== undefined && this.#latencyCount < this.#latencies.length) {
      this.#latencies[this.#latencyCount++] = now - sentAt;
    }
  }

  /**
   * Call before publishing `events` events, once every stream's opening frames have arrived:
   * what each stream has so far is not counted, and the latency record is sized.
   */
  expect(events: number): void {
    for (const socket of this.#sockets) socket.data.base = socket.data.frames;
    this.#publishedAt = [];
    this.#latencies = new Float64Array(events * this.#sockets.length);
    this.#latencyCount = 0;
    this.delivered = 0;
  }

  /** Notes that publish number `index` (0-based) is being sent now. */
  published(index: number): void {
    this.#publishedAt[index] = performance.now();
  }

  /** p50, p99 and max latency in milliseconds. */
  latency(): { p50: number; p99: number; max: number } {
    return percentiles(this.latencySamples());
  }

  /** Every latency recorded since `expect`, in milliseconds, unsorted: to merge several clients' figures. */
  latencySamples(): Float64Array {
    return this.#latencies.slice(0, this.#latencyCount);
  }

  /** Streams that have fewer than `events` of the measured events. */
  behind(events: number): number {
    let behind = 0;
    for (const socket of this.#sockets) if (socket.data.frames - socket.data.base < events) behind++;
    return behind;
  }

  close(): void {
    for (const socket of this.#sockets) socket.end();
    this.#sockets.length = 0;
  }
}

/** p50, p99 and max of latency samples in milliseconds (sorts `samples` in place); NaN when there are none. */
export function percentiles(samples: Float64Array): { p50: number; p99: number; max: number } {
  const sorted = samples.sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? Number.NaN };
}

/** p50, p99 and max latency over several clients' samples together. */
export function latencyOfAll(clients: readonly LoadClient[]): { p50: number; p99: number; max: number } {
  const samples = clients.map((client) => client.latencySamples());
  const all = new Float64Array(samples.reduce((sum, s) => sum + s.length, 0));
  let at = 0;
  for (const s of samples) {
    all.set(s, at);
    at += s.length;
  }
  return percentiles(all);
}

/**
 * Opens `perTopic` streams on each of `topics`, one `LoadClient` per topic (so that each counts
 * and times its own topic's events), several topics at once.
 */
export async function connectTopics(
  port: number,
  pathOf: (topic: string) => string,
  topics: readonly string[],
  perTopic: number,
  onDelivery?: LoadOptions["onDelivery"],
): Promise<LoadClient[]> {
  const clients = topics.map((topic) => new LoadClient({ port, path: pathOf(topic), onDelivery }));
  // About as many streams under way at once as one `connect` opens.
  const wave = Math.max(1, Math.floor(250 / perTopic));
  for (let i = 0; i < clients.length; i += wave)
    await Promise.all(clients.slice(i, i + wave).map((client) => client.connect(perTopic)));
  return clients;
}

/** Runs `task(0)` … `task(count - 1)` with at most `workers` under way at once, in order of start. */
export async function concurrently(
  count: number,
  workers: number,
  task: (index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(workers, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}
