/**
 * Many topics: the same number of streams as a one-topic fan-out, spread over many topics (a few
 * streams each), with events published round-robin over the topics by several publishers at
 * once, `batch` events to consecutive topics per request (as a feed of many symbols or products
 * publishes; 1 sends each event on its own). Each event reaches only a few streams, so this
 * measures what an event costs apart from its fan-out (the log, finding the topic's streams, the
 * request's share) against the one-topic figure.
 *
 * `warmSeconds` of the same load go first, unmeasured: a server's JIT compiles its publish path over
 * the first seconds of load, on the core the server is pinned to, and herald's path is far longer
 * than the floor's (see bench/README.md, "Warming up").
 */
import { concurrently, connectTopics, latencyOfAll, type LoadClient } from "../load.ts";
import { warmUp, type Running, type Target } from "../targets.ts";

export interface TopicsResult {
  target: string;
  topics: number;
  perTopic: number;
  /** Streams open in all. */
  streams: number;
  publishes: number;
  /** Publishers at once. */
  publishers: number;
  /** Events per request. */
  batch: number;
  deliveriesPerS: number;
  publishesPerS: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  failed: number;
  behind: number;
  spread?: [number, number];
}

/** Called with the server's process as the measured publishes start and once every stream has them all. */
export interface PhaseObserver {
  started(server: Running): void;
  ended(server: Running): void;
}

export async function manyTopics(
  target: Target,
  topicCount: number,
  perTopic: number,
  deliveries: number,
  publishers: number,
  batch = 1,
  { observer, warmSeconds = 0 }: { observer?: PhaseObserver; warmSeconds?: number } = {},
): Promise<TopicsResult> {
  const eventsPerTopic = Math.max(1, Math.round(deliveries / (topicCount * perTopic)));
  const publishes = eventsPerTopic * topicCount;
  const topics = Array.from({ length: topicCount }, (_, i) => `t${i}`);
  const server = await target.start();
  let clients: LoadClient[] = [];
  try {
    const publish = await target.publisher(server.port);
    await warmUp(target, server.port, publish);
    clients = await connectTopics(server.port, target.streamPath, topics, perTopic);
    await Bun.sleep(500);

    const publishBatch = target.batchPublisher(server.port);
    // Sends `count` events: event i goes to topic i mod T, as that topic's event number
    // floor(i / T); a request carries events i … i + batch - 1. `record` notes each send's time.
    const send = (count: number, record: boolean) =>
      concurrently(Math.ceil(count / batch), publishers, async (b) => {
        const events = [];
        for (let i = b * batch; i < Math.min(count, (b + 1) * batch); i++) {
          const topic = i % topicCount;
          if (record) clients[topic]!.published(Math.floor(i / topicCount));
          events.push({ topic: topics[topic]!, message: `event ${i} of ${count}: stock of sku-${i % 97} changed` });
        }
        if (events.length === 1) await publish(events[0]!.topic, events[0]!.message);
        else await publishBatch(events);
      });

    if (warmSeconds > 0) {
      // Whole passes over the topics, enough at once to keep every publisher busy; each chunk is
      // delivered before the next is sent, so the streams never fall behind (a server acknowledges
      // a broadcast to 10,000 streams far sooner than it has written it to them all).
      const chunk = Math.ceil(Math.max(topicCount, publishers * batch) / topicCount) * topicCount;
      for (const client of clients) client.expect(0);
      let passes = 0;
      const until = performance.now() + warmSeconds * 1000;
      while (performance.now() < until) {
        await send(chunk, false);
        passes += chunk / topicCount;
        const deadline = Date.now() + 60_000;
        while (clients.some((client) => client.behind(passes) > 0) && Date.now() < deadline) await Bun.sleep(2);
        const behind = clients.reduce((sum, client) => sum + client.behind(passes), 0);
        if (behind > 0) throw new Error(`${target.name}: ${behind} streams still lack warm-up events after a minute`);
      }
    }

    for (const client of clients) client.expect(eventsPerTopic);
    const delivered = () => clients.reduce((sum, client) => sum + client.delivered, 0);
    const total = clients.reduce((sum, client) => sum + client.open, 0) * eventsPerTopic;
    observer?.started(server);
    const started = performance.now();
    await send(publishes, true);
    const published = performance.now();
    const deadline = Date.now() + 60_000;
    while (delivered() < total && Date.now() < deadline) await Bun.sleep(2);
    const elapsed = (performance.now() - started) / 1000;
    observer?.ended(server);

    const latency = latencyOfAll(clients);
    return {
      target: target.name,
      topics: topicCount,
      perTopic,
      streams: clients.reduce((sum, client) => sum + client.open, 0),
      publishes,
      publishers,
      batch,
      deliveriesPerS: Math.round(delivered() / elapsed),
      publishesPerS: Math.round(publishes / ((published - started) / 1000)),
      p50Ms: latency.p50,
      p99Ms: latency.p99,
      maxMs: latency.max,
      failed: clients.reduce((sum, client) => sum + client.failed, 0),
      behind: clients.reduce((sum, client) => sum + client.behind(eventsPerTopic), 0),
    };
  } finally {
    for (const client of clients) client.close();
    await server.stop();
  }
}
