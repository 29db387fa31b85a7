/**
 * Entry point: the only module with side effects. `bun src/main.ts`.
 */
import { startHerald } from "./app.ts";
import { loadConfig, type Config } from "./server/config.ts";
import { HeraldError, isDiskFull } from "./core/errors.ts";
import { superviseWorkers, supervisorGone, WORKER_ENV } from "./server/workers.ts";

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof HeraldError)) throw error;
  console.error(error.message);
  process.exit(1);
}

if (config.workers > 1 && !process.env[WORKER_ENV]) {
  process.exit(await superviseWorkers(config, import.meta.path));
}

let running: ReturnType<typeof startHerald>;
try {
  running = startHerald(config);
  await running.app.ctx.identity.ready;
} catch (error) {
  // A damaged database or a full disk at start: one line that says which and where, not a stack.
  if (error instanceof HeraldError) console.error(error.message);
  else if (isDiskFull(error))
    console.error(`herald: cannot start: the disk holding ${config.dataDir} is full (${(error as Error).message}).`);
  else throw error;
  process.exit(1);
}
console.log(`herald listening on ${running.url}`);

let stopping = false;
function stop(): void {
  // A second signal while draining means: now.
  if (stopping) process.exit(1);
  stopping = true;
  void running.shutdown().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(`herald: shutdown failed: ${String(error)}`);
      process.exit(1);
    },
  );
}
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, stop);
if (process.env[WORKER_ENV]) void supervisorGone().then(() => stopping || stop());

// A full garbage collection on request, so that memory can be measured without garbage in it
// (the benchmarks and the churn test use it): kill -USR2 <pid>.
process.on("SIGUSR2", () => Bun.gc(true));
