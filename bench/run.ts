/**
 * `bun run bench`: herald against the bare Bun floor, in the same run on the same machine.
 *
 * For each subscriber count, each server runs in its own process. A warm-up opens and closes a
 * batch of streams and publishes to them, so that code is compiled and pools are grown before the
 * baseline is read. Then the load client opens N idle streams on one topic (memory per idle
 * stream: the growth of VmRSS in /proc/<pid>/status, each read after a full GC, divided by N),
 * and publishes events one
 * after another (herald through `POST /api/publish`) and waits for every stream to receive every
 * event.
 *
 * With `taskset` and two or more cores, each server runs pinned to core 0 and the load client to
 * core 1, so that they do not take turns on one core (BENCH_PIN=off turns this off).
 *
 * herald runs with each event log of BENCH_ENGINES (default "sqlite,memory,redis"; Redis on a
 * redis-server the bench starts, skipped when there is none). Then publish throughput through
 * the API (acknowledged once durable) with each log, one publisher at a time and 32 at once:
 * BENCH_PUBLISHES (default 5000).
 *
 * Environment: BENCH_SUBSCRIBERS (default "1000,10000"), BENCH_DELIVERIES per scenario
 * (default 1000000), BENCH_ROUNDS (default 5; rounds alternate between the servers so that drift
 * in the machine's load hits both alike, and each server's median round is reported).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { LoadClient } from "./load.ts";
import { notificationItem } from "../views/notification.ts";
import { startRedis, type RedisServer } from "../test/redis.ts";

const root = join(import.meta.dir, "..");
const taskset = Bun.which("taskset");
const pin = taskset !== null && cpus().length >= 2 && process.env.BENCH_PIN !== "off";

if (pin && process.env.BENCH_PINNED !== "1") {
  // Run the load client itself on core 1; servers get core 0.
  const self = Bun.spawn([taskset!, "-c", "1", process.execPath, import.meta.path], {
    env: { ...process.env, BENCH_PINNED: "1" },
    stdio: ["inherit", "inherit", "inherit"],
  });
  process.exit(await self.exited);
}
const subscriberCounts = (process.env.BENCH_SUBSCRIBERS ?? "1000,10000").split(",").map(Number);
const deliveriesPerScenario = Number(process.env.BENCH_DELIVERIES ?? 1_000_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);

interface Running {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

interface Target {
  name: string;
  path: string;
  start(): Promise<Running>;
  /** Returns a function that publishes one event and resolves when the server has answered. */
  publisher(port: number): Promise<(message: string) => Promise<void>>;
}

async function spawnServer(args: string[], env: Record<string, string>): Promise<Running & { proc: Bun.Subprocess }> {
  // taskset execs the server, so the pid is the server's own.
  const command = pin ? [taskset!, "-c", "0", process.execPath, ...args] : [process.execPath, ...args];
  const proc = Bun.spawn(command, { cwd: root, env: { ...process.env, ...env }, stdout: "pipe", stderr: "inherit" });
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
    const match = /listening on http:\/\/[^:]+:(\d+)/.exec(text);
    if (match) {
      // Keep reading the server's log lines so that a full pipe never blocks it.
      void (async () => {
        while (!(await reader.read()).done);
      })();
      return {
        proc,
        port: Number(match[1]),
        pid: proc.pid,
        async stop() {
          proc.kill("SIGKILL");
          await proc.exited;
        },
      };
    }
  }
  throw new Error(`${args.join(" ")} exited before listening: ${text}`);
}

const TOKEN = "bench-publish-token-0123456789";

/** herald in its own process with the bench's settings, plus `env`. */
async function startHeraldProcess(env: Record<string, string> = {}): Promise<Running> {
  const dataDir = mkdtempSync(join(tmpdir(), "herald-bench-"));
  const running = await spawnServer(["src/main.ts"], {
    PORT: "0",
    HOST: "127.0.0.1",
    HERALD_DATA_DIR: dataDir,
    HERALD_HEARTBEAT_MS: "3600000",
    HERALD_PUBLISH_TOKENS: TOKEN,
    // The load client opens every stream from one address, far faster than a browser would.
    HERALD_MAX_CLIENTS: "100000",
    HERALD_STREAMS_PER_IP_PER_S: "1000000",
    HERALD_PUBLISH_RATE_TOKEN: "1000000",
    ...env,
  });
  return {
    ...running,
    async stop() {
      await running.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** herald with one event log: `sqlite` (its default), `memory`, or `redis` (on the bench's own redis-server). */
function heraldTarget(engine: Engine): Target {
  return {
    name: engine === "sqlite" ? "herald" : `herald ${engine}`,
    path: "/sse?topic=bench",
    start: () => startHeraldProcess(engineEnv(engine)),
    publisher: publishThroughApi,
  };
}

type Engine = "sqlite" | "memory" | "redis";
let redis: RedisServer | null = null;
let redisRuns = 0;

function engineEnv(engine: Engine): Record<string, string> {
  if (engine === "memory") return { HERALD_EVENT_LOG: "memory" };
  // A fresh key prefix per server, so no run replays or snapshots another's events.
  if (engine === "redis") return { REDIS_URL: redis!.url, HERALD_REDIS_PREFIX: `bench${++redisRuns}:` };
  return {};
}

const publishThroughApi: Target["publisher"] = async (port) => {
  const url = `http://127.0.0.1:${port}/api/publish`;
  const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
  return async (message) => {
    const res = await fetch(url, { method: "POST", headers, body: JSON.stringify({ target: "topic:bench", message }) });
    if (res.status !== 200) throw new Error(`herald publish failed: ${res.status} ${await res.text()}`);
  };
};

const floor: Target = {
  name: "bun floor",
  path: "/sse",
  start: () => spawnServer(["bench/floor.ts"], { PORT: "0" }),
  async publisher(port) {
    let id = 0;
    return async (message) => {
      // The same fragment herald would render, so both write frames of the same size.
      const fragment = notificationItem({ id: ++id, message, title: "", level: "info", channel: "topic:bench", from: null, sentAt: Date.now() });
      const res = await fetch(`http://127.0.0.1:${port}/publish`, { method: "POST", body: fragment.value });
      if (!res.ok) throw new Error(`floor publish failed: ${res.status}`);
    };
  },
};

/** Resident memory after a full garbage collection (both servers run one on SIGUSR2). */
async function settledRssKb(pid: number): Promise<number> {
  process.kill(pid, "SIGUSR2");
  await Bun.sleep(500);
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
}

interface Result {
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

async function measure(target: Target, subscribers: number): Promise<Result> {
  const events = Math.max(10, Math.round(deliveriesPerScenario / subscribers));
  const server = await target.start();
  const client = new LoadClient({ port: server.port, path: target.path });
  try {
    const publish = await target.publisher(server.port);
    const warmUp = new LoadClient({ port: server.port, path: target.path });
    await warmUp.connect(Math.min(2000, subscribers));
    for (let i = 0; i < 20; i++) await publish(`warm-up ${i}`);
    warmUp.close();
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
      await publish(`event ${i} of ${events}: stock of sku-${i % 97} changed`);
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

function table(results: Result[]): string {
  const rows = [
    ["server", "subscribers", "events", "deliveries/s", "rounds' range", "p50 ms", "p99 ms", "max ms", "failed", "behind", "bytes/idle stream"],
    ...results.map((r) => [
      r.target,
      String(r.subscribers),
      String(r.events),
      r.deliveriesPerS.toLocaleString("en-US"),
      r.spread ? r.spread.map((n) => `${Math.round(n / 1000)}k`).join("–") : "",
      r.p50Ms.toFixed(1),
      r.p99Ms.toFixed(1),
      r.maxMs.toFixed(1),
      String(r.failed),
      String(r.behind),
      r.bytesPerIdleStream.toLocaleString("en-US"),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(rows[0]!), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)].join("\n");
}

const results: Result[] = [];
/** The median round by deliveries/s: one lucky or unlucky round on a shared machine does not decide. */
function median(runs: Result[]): Result {
  const sorted = [...runs].sort((a, b) => a.deliveriesPerS - b.deliveriesPerS);
  return { ...sorted[Math.floor((sorted.length - 1) / 2)]!, spread: [sorted[0]!.deliveriesPerS, sorted.at(-1)!.deliveriesPerS] };
}

const engines = (process.env.BENCH_ENGINES ?? "sqlite,memory,redis").split(",") as Engine[];
if (engines.includes("redis")) {
  if (Bun.which("redis-server")) redis = await startRedis();
  else {
    console.error("*** Redis figures SKIPPED: no redis-server (apt-get install -y redis-server).");
    engines.splice(engines.indexOf("redis"), 1);
  }
}

for (const subscribers of subscriberCounts) {
  const runs = new Map<Target, Result[]>([[floor, []], ...engines.map((engine) => [heraldTarget(engine), []] as [Target, Result[]])]);
  for (let round = 0; round < rounds; round++) {
    for (const [target, done] of runs) {
      const result = await measure(target, subscribers);
      console.error(`round ${round + 1}: ${target.name} ${subscribers}: ${result.deliveriesPerS.toLocaleString("en-US")} deliveries/s, ${result.bytesPerIdleStream} bytes/idle stream`);
      done.push(result);
    }
  }
  for (const done of runs.values()) results.push(median(done));
}

interface RateResult {
  eventLog: string;
  publishes: number;
  concurrency: number;
  publishesPerS: number;
  ackP50Ms: number;
  ackP99Ms: number;
  behind: number;
}

/**
 * Publish throughput through the API, acknowledged only once durable: `concurrency` publishers
 * at once, 10 subscribers reading every event. Shows what batching the log's commits buys.
 */
async function publishRate(eventLog: Engine, publishes: number, concurrency: number): Promise<RateResult> {
  const server = await startHeraldProcess(engineEnv(eventLog));
  const client = new LoadClient({ port: server.port, path: "/sse?topic=rate" });
  try {
    await client.connect(10);
    await Bun.sleep(300);
    client.expect(publishes);
    const url = `http://127.0.0.1:${server.port}/api/publish`;
    const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
    const acks: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < publishes) {
          const i = next++;
          const sent = performance.now();
          const res = await fetch(url, { method: "POST", headers, body: JSON.stringify({ target: "topic:rate", message: `rate ${i}` }) });
          if (res.status !== 200) throw new Error(`publish failed: ${res.status}`);
          await res.arrayBuffer();
          acks.push(performance.now() - sent);
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    const deadline = Date.now() + 30_000;
    while (client.behind(publishes) > 0 && Date.now() < deadline) await Bun.sleep(5);
    acks.sort((a, b) => a - b);
    return {
      eventLog,
      publishes,
      concurrency,
      publishesPerS: Math.round(publishes / elapsed),
      ackP50Ms: acks[Math.floor(acks.length * 0.5)]!,
      ackP99Ms: acks[Math.floor(acks.length * 0.99)]!,
      behind: client.behind(publishes),
    };
  } finally {
    client.close();
    await server.stop();
  }
}

const rates: RateResult[] = [];
for (const engine of engines) {
  for (const concurrency of [1, 32]) rates.push(await publishRate(engine, Number(process.env.BENCH_PUBLISHES ?? 5000), concurrency));
}
await redis?.destroy();

const ratios = subscriberCounts.map((subscribers) => {
  const of = (name: string) => results.find((r) => r.target === name && r.subscribers === subscribers)?.deliveriesPerS ?? Number.NaN;
  return { subscribers, heraldVsFloor: of("herald") / of("bun floor"), redisVsMemory: of("herald redis") / of("herald memory") };
});
const machine = `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, Bun ${Bun.version}, ${process.platform}${pin ? ", server on core 0, load client on core 1" : ""}`;
console.log(`\n${machine}\n`);
console.log(table(results));
for (const { subscribers, heraldVsFloor, redisVsMemory } of ratios) {
  console.log(`herald at ${subscribers} subscribers: ${(heraldVsFloor * 100).toFixed(1)}% of the floor's deliveries/s`);
  if (!Number.isNaN(redisVsMemory)) console.log(`  with Redis: ${(redisVsMemory * 100).toFixed(1)}% of the memory log's deliveries/s`);
}
console.log("\nPublishes through POST /api/publish, each acknowledged once durable (10 subscribers on the topic):\n");
console.log("| event log | publishers at once | publishes/s | ack p50 ms | ack p99 ms | subscribers behind |");
console.log("|-----------|--------------------|-------------|------------|------------|--------------------|");
for (const r of rates) {
  console.log(`| ${r.eventLog.padEnd(9)} | ${String(r.concurrency).padEnd(18)} | ${r.publishesPerS.toLocaleString("en-US").padEnd(11)} | ${r.ackP50Ms.toFixed(2).padEnd(10)} | ${r.ackP99Ms.toFixed(2).padEnd(10)} | ${String(r.behind).padEnd(18)} |`);
}
mkdirSync(join(root, "bench", "results"), { recursive: true });
writeFileSync(join(root, "bench", "results", "latest.json"), JSON.stringify({ date: new Date().toISOString(), machine, results, ratios, rates }, null, 2) + "\n");
process.exit(0);
