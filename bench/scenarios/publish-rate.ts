/**
 * Publish throughput through the API, acknowledged only once durable: `concurrency` publishers
 * at once, 10 subscribers reading every event. Shows what batching the log's commits buys.
 */
import { concurrently, LoadClient, percentiles } from "../load.ts";
import { engineEnv, startHeraldProcess, TOKEN, type Engine } from "../targets.ts";

export interface RateResult {
  eventLog: string;
  publishes: number;
  concurrency: number;
  publishesPerS: number;
  ackP50Ms: number;
  ackP99Ms: number;
  behind: number;
}

export async function publishRate(eventLog: Engine, publishes: number, concurrency: number): Promise<RateResult> {
  const server = await startHeraldProcess(engineEnv(eventLog));
  const client = new LoadClient({ port: server.port, path: "/sse?topic=rate" });
  try {
    await client.connect(10);
    await Bun.sleep(300);
    client.expect(publishes);
    const url = `http://127.0.0.1:${server.port}/api/publish`;
    const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
    const acks = new Float64Array(publishes);
    const started = performance.now();
    await concurrently(publishes, concurrency, async (i) => {
      const sent = performance.now();
      const res = await fetch(url, {
        method: "POST",
        headers,
        body: JSON.stringify({ target: "topic:rate", message: `rate ${i}` }),
      });
      if (res.status !== 200) throw new Error(`publish failed: ${res.status}`);
      await res.arrayBuffer();
      acks[i] = performance.now() - sent;
    });
    const elapsed = (performance.now() - started) / 1000;
    const deadline = Date.now() + 30_000;
    while (client.behind(publishes) > 0 && Date.now() < deadline) await Bun.sleep(5);
    const ack = percentiles(acks);
    return {
      eventLog,
      publishes,
      concurrency,
      publishesPerS: Math.round(publishes / elapsed),
      ackP50Ms: ack.p50,
      ackP99Ms: ack.p99,
      behind: client.behind(publishes),
    };
  } finally {
    client.close();
    await server.stop();
  }
}
