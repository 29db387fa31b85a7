/**
 * Many topics: the same number of streams as a one-topic fan-out, spread over many topics (a few
 * streams each), with events published round-robin over the topics by several publishers at
 * once. Each publish reaches only a few streams, so this measures what a publish costs apart from
 * its fan-out (the request, the log, finding the topic's streams) against the one-topic figure.
 */
import { concurrently, connectTopics, percentiles, type LoadClient } from "../load.ts";
import { warmUp, type Target } from "../targets.ts";

export interface TopicsResult {
  target: string;
  topics: number;
  perTopic: number;
  /** Streams open in all. */
  streams: number;
  publishes: number;
  /** Publishers at once. */
  publishers: number;
  deliveriesPerS: number;
  publishesPerS: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  failed: number;
  behind: number;
  spread?: [number, number];
}

export async function manyTopics(target: Target, topicCount: number, perTopic: number, deliveries: number, publishers: number): Promise<TopicsResult> {
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

    for (const client of clients) client.expect(eventsPerTopic);
    const delivered = () => clients.reduce((sum, client) => sum + client.delivered, 0);
    const total = clients.reduce((sum, client) => sum + client.open, 0) * eventsPerTopic;
    const started = performance.now();
    // Publish i goes to topic i mod T, as that topic's event number floor(i / T).
    await concurrently(publishes, publishers, async (i) => {
      const topic = i % topicCount;
      clients[topic]!.published(Math.floor(i / topicCount));
      await publish(topics[topic]!, `event ${i} of ${publishes}: stock of sku-${i % 97} changed`);
    });
    const published = performance.now();
    const deadline = Date.now() + 60_000;
    while (delivered() < total && Date.now() < deadline) await Bun.sleep(2);
    const elapsed = (performance.now() - started) / 1000;

    const samples = clients.map((client) => client.latencySamples());
    const all = new Float64Array(samples.reduce((sum, s) => sum + s.length, 0));
    samples.reduce((at, s) => (all.set(s, at), at + s.length), 0);
    const latency = percentiles(all);
    return {
      target: target.name,
      topics: topicCount,
      perTopic,
      streams: clients.reduce((sum, client) => sum + client.open, 0),
      publishes,
      publishers,
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
