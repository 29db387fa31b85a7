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

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    void running.stop().then(() => process.exit(0));
  });
}
