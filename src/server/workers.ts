/**
 * `HERALD_WORKERS=N`: this process starts N herald processes on one port (`reusePort`), watches
 * them, starts a new one when one dies, and passes SIGTERM/SIGINT on for a graceful stop.
 * They share their hub through Redis (`REDIS_URL`). Each worker holds a pipe from this process
 * on its standard input and stops when it closes, so no worker outlives its supervisor.
 */
import type { Subprocess } from "bun";
import type { Config } from "./config.ts";

/** Set in a worker's environment: it serves instead of starting workers of its own. */
export const WORKER_ENV = "HERALD_WORKER";

function freePort(host: string): number {
  const listener = Bun.listen({ hostname: host, port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

/** Runs the workers until a signal stops them; resolves with the exit code. */
export function superviseWorkers(config: Config, entry: string): Promise<number> {
  // Every worker must bind the same port, so a random one is chosen here, once.
  const port = config.port === 0 ? freePort(config.host) : config.port;
  const workers = new Map<number, Subprocess>();
  let stopping = false;
  let finished!: (code: number) => void;
  const done = new Promise<number>((resolve) => (finished = resolve));

  let listening = 0;
  let ready!: () => void;
  const allListening = new Promise<void>((resolve) => (ready = resolve));

  const start = (index: number) => {
    const child = Bun.spawn([process.execPath, entry], {
      env: { ...process.env, PORT: String(port), [WORKER_ENV]: String(index) },
      stdio: ["pipe", "pipe", "inherit"],
    });
    workers.set(index, child);
    // Pass the worker's lines on, and note when it listens.
    void (async () => {
      let seen = false;
      for await (const chunk of child.stdout as ReadableStream<Uint8Array>) {
        process.stdout.write(chunk);
        if (!seen && new TextDecoder().decode(chunk).includes("listening on")) {
          seen = true;
          if (++listening === config.workers) ready();
        }
      }
    })();
    void child.exited.then((code) => {
      workers.delete(index);
      if (stopping) {
        if (workers.size === 0) finished(0);
        return;
      }
      console.error(
        JSON.stringify({
          time: new Date().toISOString(),
          level: "error",
          msg: "worker exited; starting another",
          worker: index,
          code,
        }),
      );
      setTimeout(() => start(index), 1_000);
    });
  };

  for (let i = 1; i <= config.workers; i++) start(i);
  void allListening.then(() =>
    console.log(
      `herald: ${config.workers} workers listening on ${config.tlsCert ? "https" : "http"}://${config.host === "0.0.0.0" ? "localhost" : config.host}:${port}`,
    ),
  );

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(1);
      stopping = true;
      for (const child of workers.values()) child.kill(signal);
      if (workers.size === 0) finished(0);
    });
  }
  return done;
}

/** In a worker: resolves when the supervisor's pipe on standard input closes (it stopped or died). */
export async function supervisorGone(): Promise<void> {
  for await (const _ of Bun.stdin.stream()) {
    // The supervisor writes nothing; reading only waits for the end.
  }
}
