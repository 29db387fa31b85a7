/**
 * `bun bench/scale.ts`: herald as several processes on one port (HERALD_WORKERS) sharing a Redis,
 * holding many streams (more than one process's open-file limit allows) from several load-client
 * processes, each stream receiving every broadcast. Reports streams held, deliveries/s,
 * publish-to-receive latency across processes, and the workers' memory.
 *
 * With BENCH_SCALE_SERVER=floor it runs the floor instead, in the same layout: as many
 * `bench/floor.ts` processes on one port, each broadcast going to all of them through Redis
 * pub/sub (`FLOOR_REDIS`), the same fragment's size written to every stream. Its results go to
 * bench/results/scale-floor.json.
 *
 * Environment: BENCH_SCALE_STREAMS (default 60000), BENCH_SCALE_WORKERS (default 4),
 * BENCH_SCALE_EVENTS (broadcasts, default 5), BENCH_SCALE_SERVER (herald or floor, default
 * herald). Needs redis-server.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { startRedis } from "../test/redis.ts";
import { cpuMs, floor } from "./targets.ts";

const root = join(import.meta.dir, "..");
const streams = Number(process.env.BENCH_SCALE_STREAMS ?? 60_000);
const workers = Number(process.env.BENCH_SCALE_WORKERS ?? 4);
const events = Number(process.env.BENCH_SCALE_EVENTS ?? 5);
const serverKind = process.env.BENCH_SCALE_SERVER ?? "herald";
if (serverKind !== "herald" && serverKind !== "floor")
  throw new Error(`BENCH_SCALE_SERVER: "${serverKind}" is neither herald nor floor`);
const PER_CLIENT = 15_000;
const TOKEN = "scale-bench-token-0123456789";

type Message = {
  ready?: number;
  got?: number;
  failed?: number;
  armed?: boolean;
  done?: boolean;
  delivered?: number;
  behind?: number;
  receipts?: number[][];
};

/** A child process that speaks JSON lines on stdout. */
function child(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn([process.execPath, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  started.push(proc);
  const messages: Message[] = [];
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  void (async () => {
    let buffer = "";
    for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
      buffer += new TextDecoder().decode(chunk);
      let at: number;
      while ((at = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 1);
        lines.push(line);
        if (line.startsWith("{")) messages.push(JSON.parse(line) as Message);
        for (const wake of waiters) wake();
      }
    }
  })();
  const until = async (check: () => boolean, what: string, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      if (proc.exitCode !== null || proc.signalCode !== null)
        throw new Error(`${args.join(" ")} exited (${proc.exitCode ?? proc.signalCode}) while waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          waiters.delete(wake);
          resolve();
        };
        waiters.add(wake);
        setTimeout(wake, 200);
      });
    }
  };
  return {
    proc,
    messages,
    lines,
    until,
    send: (text: string) => (proc.stdin as import("bun").FileSink).write(text + "\n"),
  };
}

function rssKb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
  } catch {
    return 0;
  }
}

/**
 * A process's proportional set size (kB): its own pages, and its share of those it maps with other
 * processes. Every worker maps the same Bun executable, and RSS counts its pages in each of them;
 * PSS splits them among every process mapping them, the load clients and the bench included.
 */
function pssKb(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))![1]);
  } catch {
    return 0;
  }
}

function cpuMsOrZero(pid: number): number {
  try {
    return cpuMs(pid);
  } catch {
    return 0; // Gone meanwhile.
  }
}

/** CPU ms so far of the server's processes, the load clients, and redis-server. */
function cpuByRole(serverPids: number[], clientPids: number[]): { workers: number; clients: number; redis: number } {
  const sum = (pids: number[]) => pids.reduce((total, pid) => total + cpuMsOrZero(pid), 0);
  return {
    workers: sum(serverPids),
    clients: sum(clientPids),
    redis: redis ? sum(descendants(process.pid).filter((pid) => commandOf(pid) === "redis-server")) : 0,
  };
}

/** A process's command name; "" once it has gone. */
function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/** Every process this run started: ended on the way out, whether the run finished or failed. */
const started: import("bun").Subprocess[] = [];
let redis: Awaited<ReturnType<typeof startRedis>> | null = null;

/** The worker processes the supervisor `pid` started, and theirs. */
function descendants(pid: number): number[] {
  const children = new TextDecoder()
    .decode(Bun.spawnSync(["pgrep", "-P", String(pid)]).stdout)
    .trim()
    .split("\n")
    .filter(Boolean)
    .map(Number);
  return children.flatMap((child) => [child, ...descendants(child)]);
}

/** Ends the load clients, the workers (SIGTERM, then SIGKILL after 5 s) and redis-server. */
async function cleanUp(): Promise<void> {
  const all = started.flatMap((proc) => [...descendants(proc.pid), proc.pid]);
  for (const proc of started) proc.kill("SIGTERM");
  const deadline = Date.now() + 5_000;
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  while (all.some(alive) && Date.now() < deadline) await Bun.sleep(100);
  for (const pid of all.filter(alive)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Gone meanwhile.
    }
  }
  await redis?.destroy();
  redis = null;
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    void cleanUp().then(() => process.exit(130));
  });
}

/** The server under test: its port, its processes, those holding streams, and a broadcast. */
interface ScaleServer {
  port: number;
  /** Every process of the server, whose CPU counts as the workers'. */
  serverPids: () => number[];
  /** The processes that hold streams (whose memory is measured). */
  workerPids: () => number[];
  publish: (message: string) => Promise<void>;
}

/** herald with HERALD_WORKERS on Redis. */
async function startHerald(redisUrl: string): Promise<ScaleServer> {
  const server = child(["src/main.ts"], {
    PORT: "0",
    // Every loopback address: each client connects to its own (127.0.0.2, …), since one source and
    // destination address pair has only about 28,000 source ports.
    HOST: "0.0.0.0",
    REDIS_URL: redisUrl,
    HERALD_REDIS_PREFIX: `scale${Date.now()}:`,
    HERALD_WORKERS: String(workers),
    HERALD_PUBLISH_TOKENS: TOKEN,
    HERALD_PUBLISH_RATE_TOKEN: "1000000",
    HERALD_MAX_CLIENTS: "100000",
    HERALD_STREAMS_PER_IP_PER_S: "1000000",
    HERALD_HEARTBEAT_MS: "3600000",
    HERALD_LOG: "warn",
    HERALD_DATA_DIR: "/tmp",
  });
  await server.until(() => server.lines.some((line) => line.includes("workers listening on")), "the workers", 30_000);
  await Bun.sleep(500);
  const port = Number(/:(\d+)\s*$/.exec(server.lines.find((line) => line.includes("workers listening on"))!)![1]);
  return {
    port,
    serverPids: () => [server.proc.pid, ...descendants(server.proc.pid)],
    workerPids: () => descendants(server.proc.pid),
    async publish(message) {
      const res = await fetch(`http://127.0.0.1:${port}/api/publish`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ target: "topic:scale", message }),
      });
      if (res.status !== 200) throw new Error(`publish failed: ${res.status} ${await res.text()}`);
    },
  };
}

/** As many floor processes on one free port, broadcasting through Redis pub/sub. */
async function startFloors(redisUrl: string): Promise<ScaleServer> {
  const probe = Bun.serve({ port: 0, hostname: "0.0.0.0", fetch: () => new Response() });
  const port = probe.port!;
  await probe.stop(true);
  const floors = Array.from({ length: workers }, () =>
    child(["bench/floor.ts"], { PORT: String(port), HOST: "0.0.0.0", FLOOR_REDIS: redisUrl }),
  );
  for (const f of floors)
    await f.until(() => f.lines.some((line) => line.includes("floor listening on")), "a floor", 30_000);
  await Bun.sleep(500);
  const publish = await floor.publisher(port);
  const pids = () => floors.map((f) => f.proc.pid);
  return { port, serverPids: pids, workerPids: pids, publish: (message) => publish("scale", message) };
}

let exitCode = 0;
try {
  redis = await startRedis();
  const {
    port,
    serverPids,
    workerPids: streamHolders,
    publish,
  } = serverKind === "herald" ? await startHerald(redis!.url) : await startFloors(redis!.url);

  // The workers' own memory before any stream, after a full GC, to tell it from the streams'.
  const idleWorkers = streamHolders();
  for (const pid of idleWorkers) process.kill(pid, "SIGUSR2");
  await Bun.sleep(1000);
  const idleKb = idleWorkers.reduce((sum, pid) => sum + rssKb(pid), 0);

  // One client opens its streams at a time: ten clients opening 500 each at once overflowed the
  // workers' accept queues, and the dropped connection attempts were retried too late to open.
  const clients = [];
  const connectStarted = performance.now();
  for (let left = streams; left > 0; left -= PER_CLIENT) {
    const c = child([
      "bench/scale-client.ts",
      String(port),
      String(Math.min(PER_CLIENT, left)),
      `127.0.0.${clients.length + 2}`,
    ]);
    clients.push(c);
    await c.until(() => c.messages.some((m) => m.ready !== undefined), "a client's streams", 300_000);
  }
  const connectSeconds = (performance.now() - connectStarted) / 1000;
  const held = clients.reduce((sum, c) => sum + c.messages.find((m) => m.ready !== undefined)!.ready!, 0);
  const failed = clients.reduce((sum, c) => sum + c.messages.find((m) => m.ready !== undefined)!.failed!, 0);
  await Bun.sleep(1000);

  // Memory after a full GC in every worker (herald's SIGUSR2), as the other benches measure it.
  const workerPids = streamHolders();
  for (const pid of workerPids) process.kill(pid, "SIGUSR2");
  await Bun.sleep(3000);
  const memoryKb = workerPids.reduce((sum, pid) => sum + rssKb(pid), 0);
  const pssTotalKb = workerPids.reduce((sum, pid) => sum + pssKb(pid), 0);

  for (const c of clients) c.send(`measure ${events}`);
  for (const c of clients) await c.until(() => c.messages.some((m) => m.armed), "a client to arm", 10_000);
  const publishedAt: number[] = [];
  const cpuBefore = cpuByRole(
    serverPids(),
    clients.map((c) => c.proc.pid),
  );
  for (let i = 0; i < events; i++) {
    publishedAt.push(performance.timeOrigin + performance.now());
    await publish(`broadcast ${i + 1} of ${events}`);
    // One broadcast at a time, so each one's fan-out is timed alone: the next goes once every
    // stream has this one (or after a minute, and then the figures say how many are behind).
    for (const c of clients)
      await c.until(() => c.messages.some((m) => m.got === i + 1), "a broadcast", 60_000).catch(() => {});
    await Bun.sleep(500);
  }
  const cpuAfter = cpuByRole(
    serverPids(),
    clients.map((c) => c.proc.pid),
  );
  const deadline = Date.now() + 120_000;
  for (const c of clients) {
    await c
      .until(() => c.messages.some((m) => m.done) || Date.now() > deadline, "a client's report", 130_000)
      .catch(() => {});
    if (!c.messages.some((m) => m.done)) c.send("report");
  }
  for (const c of clients) await c.until(() => c.messages.some((m) => m.done), "a client's report", 30_000);

  const latencies: number[] = [];
  let delivered = 0;
  let behind = 0;
  // Per broadcast: from its publish to the last stream receiving it.
  const lastReceive = publishedAt.map(() => 0);
  for (const c of clients) {
    const done = c.messages.find((m) => m.done)!;
    delivered += done.delivered!;
    behind += done.behind!;
    done.receipts!.forEach((times, n) => {
      // Frames past the broadcasts (a demo page's event on everyone, say) are not broadcasts.
      if (n >= events) return;
      for (const at of times ?? []) {
        latencies.push(at - publishedAt[n]!);
        lastReceive[n] = Math.max(lastReceive[n]!, at);
      }
    });
  }
  const fanOutSeconds = lastReceive.reduce((sum, last, n) => sum + Math.max(0, last - publishedAt[n]!), 0) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  const result = {
    server: serverKind === "herald" ? "herald" : "bun floor",
    date: new Date().toISOString(),
    machine: `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, Bun ${Bun.version}`,
    workers,
    streamsAsked: streams,
    streamsHeld: held,
    failed,
    connectSeconds: Number(connectSeconds.toFixed(1)),
    broadcasts: events,
    delivered,
    expected: held * events,
    behind,
    deliveriesPerS: Math.round(delivered / fanOutSeconds),
    latencyMs: { p50: Number(at(0.5).toFixed(1)), p99: Number(at(0.99).toFixed(1)), max: Number(at(1).toFixed(1)) },
    // Each broadcast's fan-out: from its publish to the last stream receiving it (null: none did).
    fanOutMs: lastReceive.map((last, n) => (last === 0 ? null : Math.round(Math.max(0, last - publishedAt[n]!)))),
    workersRssMb: Math.round(memoryKb / 1024),
    bytesPerStream: Math.round((memoryKb * 1024) / Math.max(1, held)),
    idleWorkersRssMb: Math.round(idleKb / 1024),
    bytesPerStreamAboveIdle: Math.round(((memoryKb - idleKb) * 1024) / Math.max(1, held)),
    // The same memory with each page shared between processes split among them: the workers,
    // and every other process mapping it (the Bun executable: also the load clients and the bench).
    workersPssMb: Math.round(pssTotalKb / 1024),
    pssBytesPerStream: Math.round((pssTotalKb * 1024) / Math.max(1, held)),
    // CPU per delivery while broadcasting (µs), by who spent it: the two cores' budget is 2 s per s.
    cpuUsPerDelivery: Object.fromEntries(
      (["workers", "clients", "redis"] as const).map((role) => [
        role,
        Number((((cpuAfter[role] - cpuBefore[role]) * 1000) / Math.max(1, delivered)).toFixed(2)),
      ]),
    ),
  };
  console.log(JSON.stringify(result, null, 2));
  mkdirSync(join(root, "bench", "results"), { recursive: true });
  const file = serverKind === "herald" ? "scale.json" : "scale-floor.json";
  writeFileSync(join(root, "bench", "results", file), JSON.stringify(result, null, 2) + "\n");
} catch (error) {
  console.error(`bench:scale failed: ${(error as Error).message}`);
  exitCode = 1;
} finally {
  await cleanUp();
}
process.exit(exitCode);
