/**
 * Entry point: the only module with side effects. `bun src/main.ts`.
 */
import { startHerald } from "./app.ts";
import { loadConfig } from "./config.ts";
import { HeraldError } from "./errors.ts";

let herald;
try {
  herald = startHerald(loadConfig());
} catch (error) {
  if (!(error instanceof HeraldError)) throw error;
  console.error(error.message);
  process.exit(1);
}

const running = herald;
console.log(`herald listening on ${running.url}`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    // A second signal while draining means: now.
    if (stopping) process.exit(1);
    stopping = true;
    void running.shutdown().then(() => process.exit(0));
  });
}

// A full garbage collection on request, so that memory can be measured without garbage in it
// (the benchmarks and the churn test use it): kill -USR2 <pid>.
process.on("SIGUSR2", () => Bun.gc(true));
