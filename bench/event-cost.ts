/**
 * `bun run bench:event`: where herald's CPU goes per event and per delivery, through the whole
 * server (requests, the event log, rendering, writes and the kernel's share of them), in the two
 * layouts that `bun run bench` compares:
 *
 * - one topic: 10,000 streams on one topic, events published one after another (as `fanout`);
 * - many topics: 10,000 streams over 1,000 topics, 100 events a request, 32 requests at once
 *   (as `topics`).
 *
 * The server runs alone on core 0 (the load client on core 1), so it is the bottleneck, and its
 * CPU time is read from `/proc/<pid>/task/<tid>/stat` from the first measured publish until every
 * stream has every event: the main thread's user and system time, and the other threads' (the
 * JIT's compilers, the allocator). While the server is saturated, deliveries/s is about 1 / CPU
 * per delivery, so the ratio of the two layouts' CPU per delivery is the ratio their
 * deliveries/s can reach.
 *
 * The floors run the same layouts: the bare Bun fan-out of `bun run bench`, writing each frame at
 * once, and the same with herald's batching (`FLOOR_COALESCE`, each stream's frames in one write
 * at the end of the turn). Their events come rendered from the client, so the difference between
 * the coalesced floor and herald is herald's own work per event: checking, rendering, the log.
 *
 * Each round runs every server once, starting one further along the list each round, so that drift
 * in the machine's load does not fall on one server's rounds.
 *
 * Each server first takes EVENT_WARM_S seconds of the same load, unmeasured, while its JIT compiles.
 *
 * Environment: EVENT_ENGINES [memory,sqlite] (redis too, on a redis-server the bench starts),
 * EVENT_FLOORS [floor,coalesced] (or none), EVENT_ROUNDS [3], EVENT_DELIVERIES per many-topics
 * round [2000000], EVENT_WARM_S [5].
 */
import { readdirSync, readFileSync } from "node:fs";
import { count, inTurn, median, percent, table } from "./report.ts";
import { manyTopics } from "./scenarios/topics.ts";
import {
  availableEngines,
  coalescedFloor,
  floor,
  heraldTarget,
  runOnClientCore,
  statCpuMs,
  stopRedis,
  type Engine,
  type Running,
  type Target,
} from "./targets.ts";

await runOnClientCore(import.meta.path);

const wanted = (process.env.EVENT_ENGINES ?? "memory,sqlite").split(",").map((name) => name.trim()) as Engine[];
const rounds = Number(process.env.EVENT_ROUNDS ?? 3);
const manyDeliveries = Number(process.env.EVENT_DELIVERIES ?? 2_000_000);
const warmSeconds = Number(process.env.EVENT_WARM_S ?? 5);

/** CPU ms per thread of `pid`: the main thread's user and system time, and the other threads' together. */
function threadCpu(pid: number): { user: number; system: number; others: number } {
  const totals = { user: 0, system: 0, others: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue; // The thread ended meanwhile.
    }
    const { user, system } = statCpuMs(stat);
    if (Number(tid) === pid) {
      totals.user += user;
      totals.system += system;
    } else totals.others += user + system;
  }
  return totals;
}

interface Cost {
  deliveriesPerS: number;
  events: number;
  deliveries: number;
  /** Server CPU in the measured phase, in µs per event: main thread user and system time, other threads. */
  userUs: number;
  systemUs: number;
  othersUs: number;
  totalUs: number;
  perDeliveryUs: number;
}

const layouts = [
  {
    name: "1 topic × 10,000, one event at a time",
    topics: 1,
    perTopic: 10_000,
    deliveries: 1_000_000,
    publishers: 1,
    batch: 1,
  },
  {
    name: "1,000 topics × 10, 100 events a request, 32 at once",
    topics: 1_000,
    perTopic: 10,
    deliveries: manyDeliveries,
    publishers: 32,
    batch: 100,
  },
];

const floors = (process.env.EVENT_FLOORS ?? "floor,coalesced")
  .split(",")
  .map((name) => name.trim())
  .filter((name) => name !== "none" && name !== "");
for (const name of floors)
  if (name !== "floor" && name !== "coalesced") throw new Error(`EVENT_FLOORS: unknown floor "${name}"`);

const engines = await availableEngines(wanted);
const targets: Target[] = [
  ...floors.map((name) => (name === "floor" ? floor : coalescedFloor)),
  ...engines.map(heraldTarget),
];
const rows: string[][] = [];
try {
  const costs = new Map<Target, Cost[][]>(targets.map((target) => [target, layouts.map(() => [])]));
  for (const [l, layout] of layouts.entries()) {
    for (let round = 0; round < rounds; round++) {
      for (const target of inTurn(targets, round)) {
        let before = { user: 0, system: 0, others: 0 };
        let after = before;
        const result = await manyTopics(
          target,
          layout.topics,
          layout.perTopic,
          layout.deliveries,
          layout.publishers,
          layout.batch,
          {
            observer: {
              started: (server: Running) => void (before = threadCpu(server.pid)),
              ended: (server: Running) => void (after = threadCpu(server.pid)),
            },
            warmSeconds,
          },
        );
        const events = result.publishes;
        const deliveries = events * layout.perTopic;
        const us = (ms: number) => (ms * 1000) / events;
        const cost = {
          deliveriesPerS: result.deliveriesPerS,
          events,
          deliveries,
          userUs: us(after.user - before.user),
          systemUs: us(after.system - before.system),
          othersUs: us(after.others - before.others),
          totalUs: 0,
          perDeliveryUs: 0,
        };
        cost.totalUs = cost.userUs + cost.systemUs + cost.othersUs;
        cost.perDeliveryUs = (cost.totalUs * events) / deliveries;
        console.error(
          `round ${round + 1}: ${target.name}: ${layout.name}: ${count(cost.deliveriesPerS)} deliveries/s, ${cost.totalUs.toFixed(1)} µs an event`,
        );
        costs.get(target)![l]!.push(cost);
      }
    }
  }
  for (const target of targets) {
    const [one, many] = costs.get(target)!.map((runs) => median(runs, (run) => run.perDeliveryUs));
    if (!one || !many) throw new Error("bench:event: a layout without rounds");
    for (const [i, cost] of [one, many].entries()) {
      rows.push([
        target.name,
        layouts[i]!.name,
        count(cost.deliveriesPerS),
        cost.totalUs.toFixed(1),
        cost.userUs.toFixed(1),
        cost.systemUs.toFixed(1),
        cost.othersUs.toFixed(1),
        cost.perDeliveryUs.toFixed(3),
        i === 1
          ? `${percent(many.deliveriesPerS / one.deliveriesPerS)} / ${percent(one.perDeliveryUs / many.perDeliveryUs)}`
          : "",
      ]);
    }
  }
} finally {
  await stopRedis();
}
console.log(
  `\nCPU per event and per delivery, herald and the floors (median of ${rounds} rounds by CPU per delivery), Bun ${Bun.version}:\n`,
);
console.log(
  table(
    [
      "server",
      "layout",
      "deliveries/s",
      "CPU µs/event",
      "main user",
      "main system",
      "other threads",
      "CPU µs/delivery",
      "many vs one: deliveries/s / CPU per delivery",
    ],
    rows,
  ),
);
process.exit(0);
