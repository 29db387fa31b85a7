/**
 * Publish throughput through the API, acknowledged only once durable: `concurrency` publishers
 * at once (each on its own keep-alive connection, see `../http-client.ts`), 10 subscribers
 * reading every event. Shows what batching the log's commits buys. With `server` "bun floor", the
 * floor's publish API (`startPublishFloor`), which stores each event in SQLite before it answers.
 */
import { HttpConnection, postJson } from "../http-client.ts";
import { LoadClient, percentiles } from "../load.ts";
import { engineEnv, startHeraldProcess, startPublishFloor, TOKEN, type Engine } from "../targets.ts";

export type RateServer = "herald" | "bun floor";

export interface RateResult {
  server: RateServer;
  eventLog: string;
  publishes: number;
  concurrency: number;
  publishesPerS: number;
  ackP50Ms: number;
  ackP99Ms: number;
  behind: number;
}

export async function publishRate(
  eventLog: Engine,
  publishes: number,
  concurrency: number,
  serverName: RateServer = "herald",
  warmSeconds = 5,
): Promise<RateResult> {
  const server = serverName === "herald" ? await startHeraldProcess(engineEnv(eventLog)) : await startPublishFloor();
  const client = new LoadClient({ port: server.port, path: "/sse?topic=rate" });
  try {
    await client.connect(10);
    await Bun.sleep(300);
    // One keep-alive connection per publisher, each waiting for its answer before the next.
    const connections = await Promise.all(
      Array.from({ length: Math.min(concurrency, publishes) }, () => HttpConnection.open(server.port)),
    );
    const acks = new Float64Array(publishes);
    const send = async (count: number, measured: boolean) => {
      let next = 0;
      await Promise.all(
        connections.map(async (connection) => {
          while (next < count) {
            const i = next++;
            const request = postJson("/api/publish", TOKEN, { target: "topic:rate", message: `rate ${i}` });
            const sent = performance.now();
            const answer = await connection.request(request);
            if (answer.status !== 200) throw new Error(`publish failed: ${answer.status} ${answer.body}`);
            if (measured) acks[i] = performance.now() - sent;
          }
        }),
      );
    };
    // `warmSeconds` of the same load first, unmeasured: the server's JIT compiles its publish path
    // over the first seconds (herald's rate rises by half over them; see bench/README.md).
    let warm = 0;
    const until = performance.now() + warmSeconds * 1000;
    client.expect(0);
    while (performance.now() < until) {
      await send(1000, false);
      warm += 1000;
    }
    const warmed = Date.now() + 30_000;
    while (client.behind(warm) > 0 && Date.now() < warmed) await Bun.sleep(5);
    // Warm-up frames still on their way would be counted as measured ones.
    if (client.behind(warm) > 0) throw new Error(`${serverName}: ${client.behind(warm)} streams lack warm-up events`);
    client.expect(publishes);
    const started = performance.now();
    await send(publishes, true);
    for (const connection of connections) connection.close();
    const elapsed = (performance.now() - started) / 1000;
    const deadline = Date.now() + 30_000;
    while (client.behind(publishes) > 0 && Date.now() < deadline) await Bun.sleep(5);
    const ack = percentiles(acks);
    return {
      server: serverName,
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
