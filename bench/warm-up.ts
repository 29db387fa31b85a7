/**
 * `bun run bench:warmup`: how a server's publish rate rises over its first publishes, while its
 * JIT compiles the publish path. 32 keep-alive publishers on `POST /api/publish`, 10 streams
 * reading the topic, herald on the sqlite log against the floor's publish API (`bench/floor.ts`
 * with `FLOOR_LOG`), a fresh server each round, the servers alternating round by round.
 *
 * For each chunk of publishes: publishes/s, and the share of the server's CPU that its JIT
 * threads (`JITWorker`, from `/proc/<pid>/task/*\/comm`) took meanwhile; the median over rounds.
 * This is why `bun run bench` and `bun run bench:event` warm each server up for a few seconds
 * before they measure it (`BENCH_WARM_S`, `EVENT_WARM_S`).
 *
 * Environment: WARMUP_ROUNDS [3], WARMUP_CHUNK publishes [5000], WARMUP_CHUNKS [16].
 */
import { readdirSync, readFileSync } from "node:fs";
import { HttpConnection, postJson } from "./http-client.ts";
import { LoadClient } from "./load.ts";
import { count, inTurn, medianOf, percent, table } from "./report.ts";
import { runOnClientCore, startHeraldProcess, startPublishFloor, statCpuMs, TOKEN, type Running } from "./targets.ts";

await runOnClientCore(import.meta.path);

const rounds = Number(process.env.WARMUP_ROUNDS ?? 3);
const chunk = Number(process.env.WARMUP_CHUNK ?? 5000);
const chunks = Number(process.env.WARMUP_CHUNKS ?? 16);

/** CPU ms of `pid` so far: all its threads, and its JIT threads. */
function cpu(pid: number): { all: number; jit: number } {
  const totals = { all: 0, jit: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const { user, system } = statCpuMs(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8"));
      totals.all += user + system;
      if (readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").startsWith("JITWorker")) totals.jit += user + system;
    } catch {
      // The thread ended meanwhile.
    }
  }
  return totals;
}

interface Chunk {
  perS: number;
  jitShare: number;
}

async function series(start: () => Promise<Running>): Promise<Chunk[]> {
  const server = await start();
  const client = new LoadClient({ port: server.port, path: "/sse?topic=rate" });
  const connections: HttpConnection[] = [];
  try {
    await client.connect(10);
    await Bun.sleep(300);
    connections.push(...(await Promise.all(Array.from({ length: 32 }, () => HttpConnection.open(server.port)))));
    const out: Chunk[] = [];
    let next = 0;
    for (let c = 0; c < chunks; c++) {
      const end = next + chunk;
      const before = cpu(server.pid);
      const started = performance.now();
      await Promise.all(
        connections.map(async (connection) => {
          while (next < end) {
            const i = next++;
            const answer = await connection.request(
              postJson("/api/publish", TOKEN, { target: "topic:rate", message: `rate ${i}` }),
            );
            if (answer.status !== 200) throw new Error(`publish failed: ${answer.status} ${answer.body}`);
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const after = cpu(server.pid);
      out.push({ perS: chunk / seconds, jitShare: (after.jit - before.jit) / Math.max(1, after.all - before.all) });
    }
    return out;
  } finally {
    for (const connection of connections) connection.close();
    client.close();
    await server.stop();
  }
}

const servers = [
  { name: "herald (sqlite)", start: () => startHeraldProcess({ HERALD_EVENT_LOG: "sqlite" }) },
  { name: "bun floor", start: startPublishFloor },
];
const runs = new Map<string, Chunk[][]>(servers.map((server) => [server.name, []]));
for (let round = 0; round < rounds; round++) {
  for (const server of inTurn(servers, round)) {
    const result = await series(server.start);
    runs.get(server.name)!.push(result);
    console.error(`round ${round + 1}: ${server.name}: ${result.map((c) => count(c.perS)).join(", ")}`);
  }
}

console.log(
  `\nPublishes/s over a server's first publishes, 32 publishers, in chunks of ${count(chunk)} (median of ${rounds} rounds; JIT: the JIT threads' share of the server's CPU meanwhile):\n`,
);
console.log(
  table(
    ["publishes", ...servers.flatMap((server) => [server.name, "JIT"])],
    Array.from({ length: chunks }, (_, c) => [
      `${count(c * chunk + 1)}–${count((c + 1) * chunk)}`,
      ...servers.flatMap((server) => {
        const chunkRuns = runs.get(server.name)!.map((run) => run[c]!);
        return [count(medianOf(chunkRuns.map((r) => r.perS))), percent(medianOf(chunkRuns.map((r) => r.jitShare)))];
      }),
    ]),
  ),
);
process.exit(0);
