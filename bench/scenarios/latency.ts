/**
 * Latency at an equal, fixed load: events published at a fixed rate (not as fast as each is
 * acknowledged), so that every server does the same work per second and their publish-to-receive
 * latencies compare directly. Each event is sent at its scheduled moment, whether or not the
 * ones before it have been acknowledged; on many topics they go round-robin over the topics.
 * `warmSeconds` of the same load go first, unmeasured.
 */
import { connectTopics, latencyOfAll, type LoadClient } from "../load.ts";
import { cpuMs, freshen, warmUp, type Target } from "../targets.ts";

export interface LatencyResult {
  target: string;
  streams: number;
  topics: number;
  /** Events per second asked for. */
  rate: number;
  events: number;
  /** Events per second as sent (below `rate` when the publisher could not keep up). */
  sentRate: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  failed: number;
  behind: number;
  /**
   * The server's CPU time over the measured events' wall time, all its threads: the share of one
   * core it kept busy (the servers run pinned to one core, see targets.ts).
   */
  serverCpu: number;
  spread?: [number, number];
}

export async function fixedRate(
  target: Target,
  streams: number,
  topicCount: number,
  rate: number,
  seconds: number,
  warmSeconds: number,
): Promise<LatencyResult> {
  const events = Math.max(topicCount, Math.round(rate * seconds));
  const perTopic = Math.max(1, Math.round(streams / topicCount));
  const topics = Array.from({ length: topicCount }, (_, i) => `t${i}`);
  const server = await target.start();
  let clients: LoadClient[] = [];
  try {
    const publish = await target.publisher(server.port);
    await warmUp(target, server.port, publish);
    clients = await connectTopics(server.port, target.streamPath, topics, perTopic);
    await Bun.sleep(500);
    await freshen(publish);

    // Sends `count` events at the fixed rate, round-robin over the topics; `record` notes each one's
    // send time for the latency figures. Resolves once all are acknowledged and every stream has them.
    const drive = async (count: number, record: boolean) => {
      // Topic `index` gets events index, index + topicCount, …
      const share = (index: number) => Math.floor(count / topicCount) + (index < count % topicCount ? 1 : 0);
      for (const [index, client] of clients.entries()) client.expect(share(index));
      const sends: Promise<void>[] = [];
      const cpuBefore = cpuMs(server.pid);
      const started = performance.now();
      for (let i = 0; i < count; i++) {
        const due = started + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 1) await Bun.sleep(wait);
        const topic = i % topicCount;
        if (record) clients[topic]!.published(Math.floor(i / topicCount));
        sends.push(publish(topics[topic]!, `event ${i} of ${count}: price of sym-${topic} changed`));
      }
      const sentSeconds = (performance.now() - started) / 1000;
      const serverCpu = (cpuMs(server.pid) - cpuBefore) / (sentSeconds * 1000);
      await Promise.all(sends);
      const deadline = Date.now() + 60_000;
      const done = () => clients.every((client, index) => client.behind(share(index)) === 0);
      while (!done() && Date.now() < deadline) await Bun.sleep(5);
      return {
        sentSeconds,
        serverCpu,
        behind: clients.reduce((sum, client, index) => sum + client.behind(share(index)), 0),
      };
    };
    // The same load, unmeasured, first: what is compared is each server running steadily, not its
    // JIT compiling its code on the first events.
    await drive(Math.max(topicCount, Math.round(rate * warmSeconds)), false);
    await freshen(publish);
    const { sentSeconds, serverCpu, behind } = await drive(events, true);
    const total = clients.reduce((sum, client) => sum + client.open, 0);
    const latency = latencyOfAll(clients);
    return {
      target: target.name,
      streams: total,
      topics: topicCount,
      rate,
      events,
      sentRate: Math.round(events / sentSeconds),
      p50Ms: latency.p50,
      p99Ms: latency.p99,
      maxMs: latency.max,
      failed: clients.reduce((sum, client) => sum + client.failed, 0),
      behind,
      serverCpu,
    };
  } finally {
    for (const client of clients) client.close();
    await server.stop();
  }
}
