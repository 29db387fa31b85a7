/**
 * Replay (herald only): one stream comes back with `Last-Event-ID` after missing `events` events
 * on its topic, published while no one was listening. Measures the time from its request until
 * the last of them arrives, and the time to the first.
 *
 * The id it resumes from is the one before the first missed event: the id of the last warm-up
 * publish (ids increase across the log). herald's log is told to keep at least twice `events`.
 */
import { concurrently } from "../load.ts";
import { publishThroughApi, type Target } from "../targets.ts";

export interface ReplayResult {
  target: string;
  events: number;
  /** Events the stream received (those replayed, then anything live). */
  received: number;
  seconds: number;
  eventsPerS: number;
  firstEventMs: number;
  /** Whether the last frame received was the last event published. */
  complete: boolean;
  spread?: [number, number];
}

const NEWLINE = 10;
const PUBLISHERS = 32;

/**
 * Opens a stream on `topic` resuming after `afterId`, and reads until it has `events` events
 * (frames after the `retry:` hint), or 60 s pass. Times are in ms from the request.
 */
async function resume(port: number, topic: string, afterId: string, events: number) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 60_000);
  const started = performance.now();
  let frames = 0;
  let firstEventMs = Number.NaN;
  let lastWasNewline = false;
  let tail = "";
  try {
    const res = await fetch(`http://127.0.0.1:${port}/sse?topic=${topic}`, {
      headers: { "last-event-id": afterId, accept: "text/event-stream" },
      signal: abort.signal,
    });
    if (res.status !== 200 || !res.body) throw new Error(`replay stream refused: ${res.status}`);
    for await (const body of res.body) {
      // A frame ends with a blank line; a read may split the "\n\n" (as in the load client).
      const chunk = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      let from = 0;
      if (lastWasNewline && chunk[0] === NEWLINE) {
        frames++;
        from = 1;
      }
      for (let at = chunk.indexOf("\n\n", from); at >= 0; at = chunk.indexOf("\n\n", from)) {
        frames++;
        from = at + 2;
      }
      lastWasNewline = chunk[chunk.length - 1] === NEWLINE;
      if (frames >= 2 && Number.isNaN(firstEventMs)) firstEventMs = performance.now() - started;
      if (frames > events) {
        tail = new TextDecoder().decode(chunk.subarray(Math.max(0, chunk.length - 4096)));
        break;
      }
    }
  } catch (error) {
    if (!abort.signal.aborted) throw error;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return { received: Math.max(0, frames - 1), ms: performance.now() - started, firstEventMs, tail };
}

export async function replay(target: Target, events: number): Promise<ReplayResult> {
  // The resuming stream is anonymous: let it replay them all rather than get a snapshot.
  const server = await target.start({
    HERALD_LOG_MAX_EVENTS: String(Math.max(100_000, events * 2)),
    HERALD_REPLAY_MAX_ANONYMOUS: String(events),
  });
  try {
    // Warm-up: publishes, and a replay of them, so that both paths are compiled.
    let afterId = "";
    for (let i = 0; i < 20; i++) afterId = await publishThroughApi(server.port, "warm-up", `warm-up ${i}`);
    // Ids are `<epoch>-<n>`: the warm-up replays from the epoch's start.
    const epoch = afterId.slice(0, afterId.lastIndexOf("-"));
    await resume(server.port, "warm-up", `${epoch}-0`, 20);

    let lastId = 0;
    await concurrently(events, PUBLISHERS, async (i) => {
      const id = await publishThroughApi(
        server.port,
        "replay",
        `missed event ${i} of ${events}: stock of sku-${i % 97} changed`,
      );
      lastId = Math.max(lastId, Number(id.slice(id.lastIndexOf("-") + 1)));
    });
    await Bun.sleep(500);
    const run = await resume(server.port, "replay", afterId, events);
    return {
      target: target.name,
      events,
      received: run.received,
      seconds: run.ms / 1000,
      eventsPerS: Math.round(run.received / (run.ms / 1000)),
      firstEventMs: run.firstEventMs,
      complete: run.tail.includes(`\nid: ${epoch}-${lastId}\n`),
    };
  } finally {
    await server.stop();
  }
}
