/**
 * A real `redis-server` for tests: a free port on 127.0.0.1, a temporary directory, stopped and
 * removed afterwards. Without `redis-server` the suites that need it are skipped with a loud
 * message, except under `CI=true`, where a missing server fails the run (`.ci/run` installs it).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

const REDIS_SERVER = process.env.HERALD_REDIS_SERVER ?? "redis-server";

/** Whether the Redis suites can run here. Throws under CI when they cannot. */
export function redisAvailable(): boolean {
  if (Bun.which(REDIS_SERVER)) return true;
  const message = `Redis tests SKIPPED: no ${REDIS_SERVER} on PATH. Install it with: apt-get update && apt-get install -y redis-server (or set HERALD_REDIS_SERVER).`;
  if (process.env.CI === "true") throw new Error(message);
  console.warn(`\n*** ${message}\n`);
  return false;
}

export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server (it can be started again on the same port and data). */
  stop(): Promise<void>;
  /** Starts it again after `stop()`. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
}

function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

/** Starts a redis-server with append-only persistence in a temporary directory. */
export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), "herald-redis-"));
  const port = freePort();
  let proc: Subprocess | null = null;
  const start = async () => {
    proc = Bun.spawn([REDIS_SERVER, "--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "yes"], {
      stdout: "pipe",
      stderr: "inherit",
    });
    let text = "";
    const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
    while (!text.includes("Ready to accept connections")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`redis-server exited before it was ready: ${text}`);
      text += new TextDecoder().decode(value);
    }
    void (async () => {
      while (!(await reader.read()).done);
    })();
  };
  const stop = async () => {
    if (!proc) return;
    proc.kill("SIGTERM");
    await proc.exited;
    proc = null;
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    start,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
