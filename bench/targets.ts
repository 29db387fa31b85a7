/**
 * The servers the bench measures, each in its own process: herald (`src/main.ts`) with one event
 * log, the bare Bun floor (`bench/floor.ts`) and the naive Node `http` peer (`bench/naive.mjs`, run
 * by Node when it is installed, as such servers are; by Bun otherwise).
 * Each announces "listening on http://host:PORT" on stdout; each runs a full GC on SIGUSR2.
 *
 * With `taskset` and two or more cores, servers run pinned to core 0 (the load client takes core 1).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { LoadClient } from "./load.ts";
import { notificationItem } from "../views/notification.ts";
import { startRedis, type RedisServer } from "../test/redis.ts";

const root = join(import.meta.dir, "..");
export const taskset = Bun.which("taskset");
/** Whether servers and the load client run on separate cores. `BENCH_PIN=off` turns it off. */
export const pin = taskset !== null && cpus().length >= 2 && process.env.BENCH_PIN !== "off";

export interface Running {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Publishes one event with `message` to `topic`; resolves when the server has answered. */
export type Publish = (topic: string, message: string) => Promise<void>;
/** Publishes several events, each to its topic, in one request; resolves when the server has answered. */
export type PublishBatch = (events: ReadonlyArray<{ topic: string; message: string }>) => Promise<void>;

export interface Target {
  name: string;
  /** The stream request path for one topic. */
  streamPath(topic: string): string;
  /** Starts the server, with `env` added to its environment. */
  start(env?: Record<string, string>): Promise<Running>;
  publisher(port: number): Promise<Publish>;
  batchPublisher(port: number): PublishBatch;
}

async function spawnServer(
  args: string[],
  env: Record<string, string>,
  runtime: string = process.execPath,
): Promise<Running> {
  // BENCH_CPU_PROF=<dir>: Bun's CPU profile of each Bun server (markdown and .cpuprofile), written when it stops.
  const profile = process.env.BENCH_CPU_PROF && runtime === process.execPath;
  if (profile) args = ["--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`, ...args];
  // taskset execs the server, so the pid is the server's own.
  const command = pin ? [taskset!, "-c", "0", runtime, ...args] : [runtime, ...args];
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
        port: Number(match[1]),
        pid: proc.pid,
        async stop() {
          // A profiled server stops on its own, so that Bun writes the profile on the way out.
          proc.kill(profile ? "SIGTERM" : "SIGKILL");
          await proc.exited;
        },
      };
    }
  }
  throw new Error(`${args.join(" ")} exited before listening: ${text}`);
}

export const TOKEN = "bench-publish-token-0123456789";

/** Starts a server with a data directory of its own, which goes when the server stops. */
async function withDataDir(prefix: string, start: (dataDir: string) => Promise<Running>): Promise<Running> {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const running = await start(dataDir);
  return {
    ...running,
    async stop() {
      await running.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** herald in its own process with the bench's settings, plus `env`. */
export function startHeraldProcess(env: Record<string, string> = {}): Promise<Running> {
  return withDataDir("herald-bench-", (dataDir) =>
    spawnServer(["src/main.ts"], {
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
    }),
  );
}

/** The floor with its publish API (`FLOOR_LOG`, see bench/floor.ts), plus `env`. */
function spawnPublishFloor(env: Record<string, string> = {}): Promise<Running> {
  return withDataDir("floor-bench-", (dataDir) =>
    spawnServer(["bench/floor.ts"], { PORT: "0", FLOOR_TOKEN: TOKEN, FLOOR_LOG: join(dataDir, "floor.db"), ...env }),
  );
}

/**
 * The floor with its publish API: a bare Bun server that checks the token, parses the JSON,
 * renders, stores the event in SQLite before it answers, and writes the streams as herald's writer
 * does (each stream's frames once per turn). What the publish-rate scenario measures herald's
 * sqlite log against.
 */
export function startPublishFloor(): Promise<Running> {
  return spawnPublishFloor({ FLOOR_COALESCE: "1" });
}

export type Engine = "sqlite" | "memory" | "redis";
let redis: RedisServer | null = null;
let redisRuns = 0;

/**
 * The engines of `wanted` that can run here; starts the bench's own redis-server for `redis`, and
 * leaves `redis` out, loudly, when there is none.
 */
export async function availableEngines(wanted: readonly Engine[]): Promise<Engine[]> {
  const engines = [...wanted];
  if (engines.includes("redis")) {
    if (Bun.which("redis-server")) redis = await startRedis();
    else {
      console.error("*** Redis figures SKIPPED: no redis-server (apt-get install -y redis-server).");
      engines.splice(engines.indexOf("redis"), 1);
    }
  }
  return engines;
}

/** Stops the bench's redis-server, if it started one. */
export async function stopRedis(): Promise<void> {
  await redis?.destroy();
  redis = null;
}

/** The environment that selects an event log. */
export function engineEnv(engine: Engine): Record<string, string> {
  if (engine === "memory") return { HERALD_EVENT_LOG: "memory" };
  // A fresh key prefix per server, so no run replays or snapshots another's events.
  if (engine === "redis") return { REDIS_URL: redis!.url, HERALD_REDIS_PREFIX: `bench${++redisRuns}:` };
  return {};
}

/** `POST /api/publish` with the bench's token; resolves with the event's id (`<epoch>-<n>`). */
export async function publishThroughApi(port: number, topic: string, message: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/api/publish`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ target: `topic:${topic}`, message }),
  });
  if (res.status !== 200) throw new Error(`herald publish failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** herald with one event log: `sqlite` (its default), `memory`, or `redis` (on the bench's own redis-server). */
export function heraldTarget(engine: Engine): Target {
  return {
    name: engine === "sqlite" ? "herald" : `herald ${engine}`,
    streamPath: (topic) => `/sse?topic=${topic}`,
    start: (env = {}) => startHeraldProcess({ ...engineEnv(engine), ...env }),
    publisher: async (port) => async (topic, message) => void (await publishThroughApi(port, topic, message)),
    batchPublisher: (port) => async (events) => {
      const res = await fetch(`http://127.0.0.1:${port}/api/publish`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify(events.map(({ topic, message }) => ({ target: `topic:${topic}`, message }))),
      });
      if (res.status !== 200) throw new Error(`herald batch publish failed: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    },
  };
}

/** The same fragment herald would render, so that every server writes frames of the same size. */
function fragment(id: number, topic: string, message: string): string {
  return notificationItem({
    id,
    message,
    title: "",
    level: "info",
    channel: `topic:${topic}`,
    from: null,
    sentAt: Date.now(),
  }).value;
}

export const floor: Target = {
  name: "bun floor",
  streamPath: (topic) => `/sse?topic=${topic}`,
  start: (env = {}) => spawnServer(["bench/floor.ts"], { PORT: "0", ...env }),
  async publisher(port) {
    let id = 0;
    return async (topic, message) => {
      const res = await fetch(`http://127.0.0.1:${port}/publish?topic=${topic}`, {
        method: "POST",
        body: fragment(++id, topic, message),
      });
      if (!res.ok) throw new Error(`floor publish failed: ${res.status}`);
      await res.arrayBuffer();
    };
  },
  batchPublisher(port) {
    let id = 0;
    return async (events) => {
      const body = JSON.stringify(
        events.map(({ topic, message }) => ({ topic, html: fragment(++id, topic, message) })),
      );
      const res = await fetch(`http://127.0.0.1:${port}/publish-batch`, { method: "POST", body });
      if (!res.ok) throw new Error(`floor batch publish failed: ${res.status}`);
      await res.arrayBuffer();
    };
  },
};

/**
 * The floor writing as herald's writer does: each stream's frames at the end of the event loop's
 * turn, in one write. Not a peer in `bun run bench` (its latency would be herald's by design); in
 * `bun run bench:event` it is the least a server can spend per event with herald's batching.
 */
export const coalescedFloor: Target = {
  ...floor,
  name: "bun floor, coalesced",
  start: (env = {}) => spawnServer(["bench/floor.ts"], { PORT: "0", FLOOR_COALESCE: "1", ...env }),
};

/**
 * The floor taking herald's publish API and storing each event in SQLite before it sends and
 * answers it (`FLOOR_LOG`), writing each stream at once: the least a server does for what herald's
 * publish promises. In the latency scenario, beside the floor whose events come rendered.
 */
export const durableFloor: Target = {
  name: "bun floor, durable",
  streamPath: (topic) => `/sse?topic=${topic}`,
  start: (env = {}) => spawnPublishFloor(env),
  publisher: async (port) => async (topic, message) => void (await publishThroughApi(port, topic, message)),
  batchPublisher: () => async () => {
    // Several requests would not be the one request a batch is for.
    throw new Error("the durable floor's publish API takes one event a request");
  },
};

/** Node, for the naive peer as such servers are run; Bun's own node:http when there is no Node. */
const node = Bun.which("node");

export const naive: Target = {
  name: node ? "naive (Node http)" : "naive (Bun node:http)",
  streamPath: (topic) => `/sse?topic=${topic}`,
  start: (env = {}) =>
    node
      ? spawnServer(["--expose-gc", "bench/naive.mjs"], { PORT: "0", ...env }, node)
      : spawnServer(["bench/naive.mjs"], { PORT: "0", ...env }),
  async publisher(port) {
    let id = 0;
    return async (topic, message) => {
      const body = JSON.stringify({ topic, event: "notification", html: fragment(++id, topic, message) });
      const res = await fetch(`http://127.0.0.1:${port}/publish`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      if (!res.ok) throw new Error(`naive publish failed: ${res.status}`);
      await res.arrayBuffer();
    };
  },
  batchPublisher(port) {
    let id = 0;
    return async (events) => {
      const body = JSON.stringify(
        events.map(({ topic, message }) => ({ topic, event: "notification", html: fragment(++id, topic, message) })),
      );
      const res = await fetch(`http://127.0.0.1:${port}/publish`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      if (!res.ok) throw new Error(`naive batch publish failed: ${res.status}`);
      await res.arrayBuffer();
    };
  },
};

/**
 * Re-runs this script (`path`, its `import.meta.path`) on core 1 and exits with its code, when
 * servers are pinned to core 0 and this is not that run already; otherwise returns.
 */
export async function runOnClientCore(path: string): Promise<void> {
  if (!pin || process.env.BENCH_PINNED === "1") return;
  const self = Bun.spawn([taskset!, "-c", "1", process.execPath, path], {
    env: { ...process.env, BENCH_PINNED: "1" },
    stdio: ["inherit", "inherit", "inherit"],
  });
  process.exit(await self.exited);
}

/** User and system CPU time, in ms, from the text of a `/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat` file. */
export function statCpuMs(stat: string): { user: number; system: number } {
  // The command name, in parentheses, may itself hold spaces or ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(fields[11]) * (1000 / 100), system: Number(fields[12]) * (1000 / 100) };
}

/** CPU time (user + system, all threads) a process has used, in ms. */
export function cpuMs(pid: number): number {
  const { user, system } = statCpuMs(readFileSync(`/proc/${pid}/stat`, "utf8"));
  return user + system;
}

/**
 * Waits until the server is quiet: under 5 ms of CPU in a 250 ms window (at most `maxMs`). After
 * a burst of new streams the JIT's compiler threads go on compiling what the burst ran for a
 * second or more, on the server's core; a phase measured meanwhile would count that as a cost
 * of the streams being open.
 */
export async function quiet(pid: number, maxMs = 10_000): Promise<void> {
  const until = Date.now() + maxMs;
  let before = cpuMs(pid);
  while (Date.now() < until) {
    await Bun.sleep(250);
    const now = cpuMs(pid);
    if (now - before < 5) return;
    before = now;
  }
}

/** Resident memory after a full garbage collection (every server runs one on SIGUSR2). */
export async function settledRssKb(pid: number): Promise<number> {
  process.kill(pid, "SIGUSR2");
  await Bun.sleep(500);
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
}

/**
 * Compiles the server's stream and publish paths and grows its pools before anything is
 * measured: opens `streams` streams on a topic of its own, publishes to them, and closes them.
 */
/**
 * Publishes a few events to a topic no stream follows, ignoring failures, right before a measured
 * phase: a keep-alive connection the server closed while idle (Bun's idle timeout is 10 s, and
 * opening 10,000 streams can take that long on a busy machine) fails here, not in the phase.
 */
export async function freshen(publish: Publish): Promise<void> {
  for (let i = 0; i < 3; i++) await publish("warm-up", `freshen ${i}`).catch(() => {});
}

export async function warmUp(target: Target, port: number, publish: Publish, streams = 200): Promise<void> {
  const client = new LoadClient({ port, path: target.streamPath("warm-up") });
  await client.connect(streams);
  for (let i = 0; i < 20; i++) await publish("warm-up", `warm-up ${i}`);
  client.close();
  await Bun.sleep(300);
}
