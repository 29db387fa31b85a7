/**
 * Isolation: does a publish cost more when many streams sit on other topics? A few streams on
 * topic `hot` receive events published one at a time, each publish waiting until every one of
 * them has it (publish → all received, a closed loop): alone, then with `idle` streams open on
 * other topics (10 per topic), then alone again once they have closed, in one server process.
 * The idle streams are held by a client process of their own (`bench/idle-holder.ts`), so the
 * measuring client's event loop and collector do not carry them. Each measured phase follows an
 * unmeasured fifth as many publishes and a wait until the server is quiet (`quiet`), as the
 * first one always did: 10,000 streams opening run code that the publish path shares, and the
 * JIT then recompiles it, on the server's core, during the next publishes. Without this, herald's
 * `JITWorker` thread used 110–160 ms in the phase with the idle streams against 20–70 ms in the
 * others, and that phase's publishes/s varied by ±15% from round to round.
 * The figure is the ratio of the rates with and without them: a server that finds a topic's
 * streams by index keeps it near 100%, one that scans every open stream per publish does not.
 */
import { join } from "node:path";
import { LoadClient, percentiles } from "../load.ts";
import { quiet, warmUp, type Publish, type Target } from "../targets.ts";

export interface IsolationResult {
  target: string;
  /** Streams on the published topic. */
  subscribers: number;
  /** Streams open on other topics in the second phase. */
  idle: number;
  /** Publishes per phase. */
  publishes: number;
  /** Publishes/s without the idle streams: the harmonic mean of the phases before and after them. */
  alonePerS: number;
  withIdlePerS: number;
  /** `withIdlePerS / alonePerS`. */
  ratio: number;
  /** Publish → all received, per publish, with the idle streams open. */
  p50Ms: number;
  p99Ms: number;
  failed: number;
  spread?: [number, number];
}

const HOT = "hot";
const IDLE_PER_TOPIC = 10;
/** Longest a publish may take to reach every stream before the round fails. */
const TIMEOUT_MS = 10_000;

/** The first line a process writes on stdout. */
async function firstLine(stdout: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the idle-stream holder exited before it was ready: ${JSON.stringify(text)}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return text.slice(0, text.indexOf("\n"));
}

export async function isolation(
  target: Target,
  subscribers: number,
  idle: number,
  publishes: number,
): Promise<IsolationResult> {
  const server = await target.start();
  let want = 0;
  let wake: (() => void) | null = null;
  const hot: LoadClient = new LoadClient({
    port: server.port,
    path: target.streamPath(HOT),
    onDelivery: () => {
      if (wake && hot.delivered >= want) {
        const resolve = wake;
        wake = null;
        resolve();
      }
    },
  });
  /** Resolves once the hot streams have received `count` measured events in all. */
  const received = (count: number) =>
    new Promise<void>((resolve, reject) => {
      if (hot.delivered >= count) return resolve();
      const timer = setTimeout(
        () => reject(new Error(`${target.name}: only ${hot.delivered}/${count} deliveries after ${TIMEOUT_MS} ms`)),
        TIMEOUT_MS,
      );
      want = count;
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  /** `count` publishes to the hot topic, one at a time: publishes/s, and each one's round trip in ms. */
  const closedLoop = async (publish: Publish, count: number) => {
    hot.expect(count);
    const roundTrips = new Float64Array(count);
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      const sent = performance.now();
      await Promise.all([
        publish(HOT, `event ${i} of ${count}: stock of sku-${i % 97} changed`),
        received((i + 1) * hot.open),
      ]);
      roundTrips[i] = performance.now() - sent;
    }
    return { perS: count / ((performance.now() - started) / 1000), roundTrips };
  };

  let holder: Bun.Subprocess<"pipe", "pipe", "inherit"> | null = null;
  try {
    const publish = await target.publisher(server.port);
    await warmUp(target, server.port, publish);
    await hot.connect(subscribers);
    await Bun.sleep(500);
    /** A fifth as many publishes, not measured, then a wait until the server is quiet. */
    const settle = async () => {
      await closedLoop(publish, Math.max(50, Math.round(publishes / 5)));
      await quiet(server.pid);
    };
    await settle();
    const before = await closedLoop(publish, publishes);

    const prefix = target.streamPath("");
    if (target.streamPath("x") !== `${prefix}x`)
      throw new Error(`${target.name}: a topic's stream path must end with the topic`);
    holder = Bun.spawn(
      [
        process.execPath,
        join(import.meta.dir, "..", "idle-holder.ts"),
        String(server.port),
        String(Math.ceil(idle / IDLE_PER_TOPIC)),
        String(IDLE_PER_TOPIC),
        prefix,
      ],
      {
        stdin: "pipe",
        stdout: "pipe",
        stderr: "inherit",
      },
    );
    const held = JSON.parse(await firstLine(holder.stdout)) as { ready: number; failed: number };
    await Bun.sleep(1000);
    await settle();
    const withIdle = await closedLoop(publish, publishes);
    const failed = hot.failed + held.failed;
    const idleOpen = held.ready;

    // Alone once more after the idle streams have gone: alone is the mean of before and after,
    // so that drift over the round (the JIT, the machine's load) does not pass for a cost of idle streams.
    holder.stdin.end();
    await holder.exited;
    holder = null;
    await Bun.sleep(1000);
    await settle();
    const after = await closedLoop(publish, publishes);
    const alonePerS = 2 / (1 / before.perS + 1 / after.perS);
    const latency = percentiles(withIdle.roundTrips);
    return {
      target: target.name,
      subscribers: hot.open,
      idle: idleOpen,
      publishes,
      alonePerS: Math.round(alonePerS),
      withIdlePerS: Math.round(withIdle.perS),
      ratio: withIdle.perS / alonePerS,
      p50Ms: latency.p50,
      p99Ms: latency.p99,
      failed,
    };
  } finally {
    hot.close();
    holder?.kill();
    await server.stop();
  }
}
