/**
 * `bun run bench`: herald against the bare Bun floor, in the same run on the same machine.
 *
 * For each subscriber count, each server runs in its own process: the load client opens N idle
 * streams on one topic (memory per idle stream from /proc/<pid>/status), then publishes events one
 * after another and waits for every stream to receive every event.
 *
 * Environment: BENCH_SUBSCRIBERS (default "1000,10000"), BENCH_DELIVERIES per scenario
 * (default 1000000), BENCH_ROUNDS (default 3; rounds alternate between the servers so that drift
 * in the machine's load hits both alike, and each server's best round is reported).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { LoadClient } from "./load.ts";
import { notificationItem } from "../views/notification.ts";

const root = join(import.meta.dir, "..");
const subscriberCounts = (process.env.BENCH_SUBSCRIBERS ?? "1000,10000").split(",").map(Number);
const deliveriesPerScenario = Number(process.env.BENCH_DELIVERIES ?? 1_000_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);

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
  const proc = Bun.spawn([process.execPath, ...args], { cwd: root, env: { ...process.env, ...env }, stdout: "pipe", stderr: "inherit" });
  let text = "";
  for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
    text += new TextDecoder().decode(chunk);
    const match = /listening on http:\/\/[^:]+:(\d+)/.exec(text);
    if (match) {
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

const herald: Target = {
  name: "herald",
  path: "/sse?topic=bench",
  async start() {
    const dataDir = mkdtempSync(join(tmpdir(), "herald-bench-"));
    const running = await spawnServer(["src/main.ts"], {
      PORT: "0",
      HOST: "127.0.0.1",
      HERALD_DATA_DIR: dataDir,
      HERALD_HEARTBEAT_MS: "3600000",
    });
    return {
      ...running,
      async stop() {
        await running.stop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
  async publisher(port) {
    const base = `http://127.0.0.1:${port}`;
    const login = await fetch(`${base}/login`, { method: "POST", body: new URLSearchParams({ name: "bench" }), redirect: "manual" });
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0]!;
    return async (message) => {
      const res = await fetch(`${base}/notify`, {
        method: "POST",
        body: new URLSearchParams({ target: "topic:bench", message }),
        headers: { cookie },
        redirect: "manual",
      });
      if (res.status !== 303) throw new Error(`herald publish failed: ${res.status} ${await res.text()}`);
    };
  },
};

const floor: Target = {
  name: "bun floor",
  path: "/sse",
  start: () => spawnServer(["bench/floor.ts"], { PORT: "0" }),
  async publisher(port) {
    return async (message) => {
      // The same fragment herald would render, so both write frames of the same size.
      const fragment = notificationItem({ message, title: "", level: "info", channel: "topic:bench", from: "bench", sentAt: Date.now() });
      const res = await fetch(`http://127.0.0.1:${port}/publish`, { method: "POST", body: fragment.value });
      if (!res.ok) throw new Error(`floor publish failed: ${res.status}`);
    };
  },
};

function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
}

interface Result {
  target: string;
  subscribers: number;
  events: number;
  deliveriesPerS: number;
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
    await publish("warm-up: nobody is listening yet");
    await Bun.sleep(300);
    const before = rssKb(server.pid);
    await client.connect(subscribers);
    await Bun.sleep(1000);
    const after = rssKb(server.pid);

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
    ["server", "subscribers", "events", "deliveries/s", "p50 ms", "p99 ms", "max ms", "failed", "behind", "bytes/idle stream"],
    ...results.map((r) => [
      r.target,
      String(r.subscribers),
      String(r.events),
      r.deliveriesPerS.toLocaleString("en-US"),
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
for (const subscribers of subscriberCounts) {
  const best = new Map<Target, Result>();
  for (let round = 0; round < rounds; round++) {
    for (const target of [floor, herald]) {
      const result = await measure(target, subscribers);
      console.error(`round ${round + 1}: ${target.name} ${subscribers}: ${result.deliveriesPerS.toLocaleString("en-US")} deliveries/s`);
      const previous = best.get(target);
      if (!previous || result.deliveriesPerS > previous.deliveriesPerS) best.set(target, result);
    }
  }
  results.push(...best.values());
}

const ratios = subscriberCounts.map((subscribers) => {
  const of = (name: string) => results.find((r) => r.target === name && r.subscribers === subscribers)!;
  return { subscribers, heraldVsFloor: of("herald").deliveriesPerS / of("bun floor").deliveriesPerS };
});
const machine = `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, Bun ${Bun.version}, ${process.platform}`;
console.log(`\n${machine}\n`);
console.log(table(results));
for (const { subscribers, heraldVsFloor } of ratios) {
  console.log(`herald at ${subscribers} subscribers: ${(heraldVsFloor * 100).toFixed(1)}% of the floor's deliveries/s`);
}
mkdirSync(join(root, "bench", "results"), { recursive: true });
writeFileSync(join(root, "bench", "results", "latest.json"), JSON.stringify({ date: new Date().toISOString(), machine, results, ratios }, null, 2) + "\n");
process.exit(0);
