/**
 * Fan-out on one topic: N idle streams on topic `bench` (memory per idle stream: the growth of
 * VmRSS in /proc/<pid>/status, each read after a full GC, divided by N), then events published
 * one after another until every stream has every one.
 */
import { LoadClient } from "../load.ts";
import { settledRssKb, type Target } from "../targets.ts";

export interface FanoutResult {
  target: string;
  subscribers: number;
  events: number;
  deliveriesPerS: number;
  /** Slowest and fastest round, for the reported (median) round's row. */
  spread?: [number, number];
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  failed: number;
  behind: number;
  bytesPerIdleStream: number;
}

const TOPIC = "bench";

/**
 * One round. A warm-up first opens and closes a batch of streams and publishes to them, then
 * opens and closes a second batch, so that code is compiled and pools are grown before the
 * baseline is read.
 */
export async function fanout(target: Target, subscribers: number, deliveries: number): Promise<FanoutResult> {
  const events = Math.max(10, Math.round(deliveries / subscribers));
  const server = await target.start();
  const path = target.streamPath(TOPIC);
  const client = new LoadClient({ port: server.port, path });
  try {
    const publish = await target.publisher(server.port);
    const warmUp = new LoadClient({ port: server.port, path });
    await warmUp.connect(Math.min(2000, subscribers));
    for (let i = 0; i < 20; i++) await publish(TOPIC, `warm-up ${i}`);
    warmUp.close();
    // A second wave opens streams as the measured ones will be opened, with events in the log
    // (herald's snapshots then carry them), so that one-time costs of that path are paid before
    // the baseline too.
    const again = new LoadClient({ port: server.port, path });
    await again.connect(Math.min(2000, subscribers));
    again.close();
    await Bun.sleep(500);
    const before = await settledRssKb(server.pid);
    await client.connect(subscribers);
    await Bun.sleep(500);
    const after = await settledRssKb(server.pid);

    client.expect(events);
    const total = events * client.open;
    const started = performance.now();
    for (let i = 0; i < events; i++) {
      client.published(i);
      await publish(TOPIC, `event ${i} of ${events}: stock of sku-${i % 97} changed`);
    }
    const deadline = Date.now() + 60_000;
    while (client.delivered < total && Date.now() < deadline) await Bun.sleep(2);
    const elapsed = (performance.now() - started) / 1000;
    const latency = client.latency();
    return {
      target: target.name,
      subscribers,
      events,
      deliveriesPerS: Math.round(client.delivered / elapsed),
      p50Ms: latency.p50,
      p99Ms: latency.p99,
      maxMs: latency.max,
      failed: client.failed,
      behind: client.behind(events),
      bytesPerIdleStream: Math.round(((after - before) * 1024) / subscribers),
    };
  } finally {
    client.close();
    await server.stop();
  }
}
