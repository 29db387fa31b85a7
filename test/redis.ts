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
  /** Kills it with SIGKILL, as a crash would (it can be started again). */
  kill(): Promise<void>;
  /** Freezes it with SIGSTOP: connections stay open, nothing is answered. */
  pause(): void;
  /** Lets it run again after `pause()` (SIGCONT). */
  resume(): void;
  /** `FLUSHALL` on a connection of its own. */
  flushAll(): Promise<void>;
  /** Starts it again after `stop()`. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
}

/** A port nothing listens on (yet). */
export function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

export interface RedisOptions {
  /**
   * Append-only persistence (`appendonly yes`); without it the server keeps nothing across a restart. Defaults to
   * `true`.
   */
  persistence?: boolean;
  /** A port to listen on, for a server started again where another was. Defaults to a free one. */
  port?: number;
}

/**
 * Starts a redis-server in a temporary directory, with append-only persistence unless told otherwise (and never RDB
 * snapshots).
 */
export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), "herald-redis-"));
  const port = options.port ?? freePort();
  const appendonly = options.persistence === false ? "no" : "yes";
  let proc: Subprocess | null = null;
  const start = async () => {
    proc = Bun.spawn(
      [
        REDIS_SERVER,
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        appendonly,
      ],
      {
        stdout: "pipe",
        stderr: "inherit",
      },
    );
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
  const signal = (name: NodeJS.Signals) => (proc as Subprocess | null)?.kill(name);
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    async kill() {
      if (!proc) return;
      proc.kill("SIGKILL");
      await proc.exited;
      proc = null;
    },
    pause: () => signal("SIGSTOP"),
    resume: () => signal("SIGCONT"),
    async flushAll() {
      const client = new Bun.RedisClient(`redis://127.0.0.1:${port}`);
      await client.send("FLUSHALL", []);
      client.close();
    },
    start,
    async destroy() {
      signal("SIGCONT");
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
