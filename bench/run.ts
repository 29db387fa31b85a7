/**
 * `bun run bench`: herald against two peers, in the same run on the same machine: the bare Bun
 * floor (`bench/floor.ts`, as little as an SSE server can do) and a naive `node:http` server
 * (`bench/naive.mjs` on Node, written the way most examples are: every client in one array, each frame
 * built per client). Each server runs in its own process, herald once per event log of
 * BENCH_ENGINES (default "sqlite,memory,redis"; Redis on a redis-server the bench starts, skipped
 * when there is none).
 *
 * Scenarios (BENCH_SCENARIOS, comma-separated, default all, in this order):
 * - `fanout`: N idle streams on one topic (memory per idle stream), then events published one
 *   after another until every stream has every one (`scenarios/fanout.ts`).
 * - `isolation`: publishes to a topic with a few streams, each waiting for all of them to
 *   receive it, alone and with many idle streams on other topics (`scenarios/isolation.ts`).
 * - `topics`: as many streams as the largest fan-out, spread over many topics, events published
 *   round-robin over them (`scenarios/topics.ts`).
 * - `replay`: herald only, one stream resuming with `Last-Event-ID` after many missed events
 *   (`scenarios/replay.ts`).
 * - `publish`: publishes/s through the API with each log, 1 and 32 publishers at once, and with
 *   the sqlite log against the floor's publish API, which stores each event in SQLite before it
 *   answers (`scenarios/publish-rate.ts`).
 * - `latency`: publish-to-receive latency at an equal, fixed load: events sent at a fixed rate,
 *   not as fast as acknowledged, to streams on one or many topics (`scenarios/latency.ts`); the
 *   floor, the durable floor (the floor's publish API, which stores each event in SQLite before it
 *   sends and answers it) and herald with each log.
 *
 * With `taskset` and two or more cores, each server runs pinned to core 0 and the load client to
 * core 1, so that they do not take turns on one core (BENCH_PIN=off turns this off). Rounds
 * alternate between the servers, each round starting one further along the list, so that drift in
 * the machine's load hits all alike, and each server's median round is reported with the range of
 * its rounds.
 *
 * Environment (defaults in brackets):
 * - BENCH_SUBSCRIBERS [1000,10000], BENCH_DELIVERIES per fan-out [1000000], BENCH_ROUNDS [5];
 * - BENCH_EXTRA_ROUNDS, rounds of isolation, topics and replay [BENCH_ROUNDS, at most 3];
 * - BENCH_ISOLATION_SUBSCRIBERS [10], BENCH_IDLE [10000], BENCH_ISOLATION_PUBLISHES per phase [5000];
 * - BENCH_TOPICS [1000], BENCH_TOPIC_SUBSCRIBERS [10], BENCH_TOPICS_DELIVERIES
 *   [BENCH_DELIVERIES, at most 500000], BENCH_TOPICS_PUBLISHERS at once [32], BENCH_TOPICS_BATCH
 *   events per request [100; 1 publishes each event on its own];
 * - BENCH_REPLAY, missed events [10000]; BENCH_PUBLISHES per publish-rate round [20000];
 *   publish rates run BENCH_EXTRA_ROUNDS rounds each;
 * - BENCH_WARM_S, seconds of the same load, unmeasured, before each round of `topics` and
 *   `publish` [5]: each server's JIT compiles its publish path over the first seconds of load;
 * - BENCH_LATENCY, the fixed-load cases as streams x topics @ events/s
 *   [10000x1@4,1000x1@200,10000x1000@2000], BENCH_LATENCY_S seconds of publishing each [10], after
 *   BENCH_LATENCY_WARM_S seconds of the same load unmeasured [3];
 * - BENCH_OUT, the JSON file [bench/results/latest.json].
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { count, inTurn, machine, median, medianOf, ms, percent, range, table, times } from "./report.ts";
import { fanout, type FanoutResult } from "./scenarios/fanout.ts";
import { isolation, type IsolationResult } from "./scenarios/isolation.ts";
import { publishRate, type RateResult, type RateServer } from "./scenarios/publish-rate.ts";
import { replay, type ReplayResult } from "./scenarios/replay.ts";
import { manyTopics, type TopicsResult } from "./scenarios/topics.ts";
import { fixedRate, type LatencyResult } from "./scenarios/latency.ts";
import {
  availableEngines,
  durableFloor,
  floor,
  heraldTarget,
  naive,
  pin,
  runOnClientCore,
  stopRedis,
  type Engine,
  type Target,
} from "./targets.ts";

// Run the load client itself on core 1; servers get core 0.
await runOnClientCore(import.meta.path);

function whole(name: string, fallback: number, least = 1): number {
  const text = process.env[name]?.trim();
  if (!text) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < least)
    throw new Error(`${name} must be a whole number, at least ${least}, got ${JSON.stringify(text)}`);
  return value;
}

function names<T extends string>(name: string, all: readonly T[], fallback: readonly T[]): T[] {
  const asked = (process.env[name]?.trim() || fallback.join(",")).split(",").map((item) => item.trim());
  for (const item of asked)
    if (!(all as readonly string[]).includes(item))
      throw new Error(`${name}: "${item}" is not one of ${all.join(", ")}`);
  return asked as T[];
}

const SCENARIOS = ["fanout", "isolation", "topics", "replay", "publish", "latency"] as const;
const scenarios = new Set(names("BENCH_SCENARIOS", SCENARIOS, SCENARIOS));
const rounds = whole("BENCH_ROUNDS", 5);
const deliveries = whole("BENCH_DELIVERIES", 1_000_000);
const settings = {
  scenarios: [...scenarios],
  engines: names<Engine>("BENCH_ENGINES", ["sqlite", "memory", "redis"], ["sqlite", "memory", "redis"]),
  subscribers: (process.env.BENCH_SUBSCRIBERS ?? "1000,10000").split(",").map(Number),
  deliveries,
  rounds,
  extraRounds: whole("BENCH_EXTRA_ROUNDS", Math.min(3, rounds)),
  isolationSubscribers: whole("BENCH_ISOLATION_SUBSCRIBERS", 10),
  idle: whole("BENCH_IDLE", 10_000),
  isolationPublishes: whole("BENCH_ISOLATION_PUBLISHES", 5000),
  topics: whole("BENCH_TOPICS", 1000),
  topicSubscribers: whole("BENCH_TOPIC_SUBSCRIBERS", 10),
  topicsDeliveries: whole("BENCH_TOPICS_DELIVERIES", Math.min(deliveries, 500_000)),
  topicsPublishers: whole("BENCH_TOPICS_PUBLISHERS", 32),
  topicsBatch: whole("BENCH_TOPICS_BATCH", 100),
  replay: whole("BENCH_REPLAY", 10_000),
  publishes: whole("BENCH_PUBLISHES", 20_000),
  warmSeconds: whole("BENCH_WARM_S", 5, 0),
  latency: (process.env.BENCH_LATENCY ?? "10000x1@4,1000x1@200,10000x1000@2000").split(",").map((text) => {
    const match = /^(\d+)x(\d+)@(\d+)$/.exec(text.trim());
    if (!match) throw new Error(`BENCH_LATENCY: "${text}" is not streams x topics @ events/s, such as 10000x1@4`);
    return { streams: Number(match[1]), topics: Number(match[2]), rate: Number(match[3]) };
  }),
  latencySeconds: whole("BENCH_LATENCY_S", 10),
  latencyWarmSeconds: whole("BENCH_LATENCY_WARM_S", 3, 0),
};
const outFile = resolve(process.env.BENCH_OUT ?? join(import.meta.dir, "results", "latest.json"));

/**
 * Measures each target `count` times, a round of every target after another (in `inTurn`'s
 * order), and keeps each target's median round by `score`.
 */
async function inRounds<R>(
  targets: readonly Target[],
  count: number,
  what: string,
  measure: (target: Target) => Promise<R>,
  score: (result: R) => number,
  describe: (result: R) => string,
): Promise<Array<R & { spread: [number, number] }>> {
  const runs = new Map<Target, R[]>(targets.map((target) => [target, []]));
  for (let round = 0; round < count; round++) {
    for (const target of inTurn(targets, round)) {
      const result = await measure(target);
      console.error(`round ${round + 1}: ${what}: ${target.name}: ${describe(result)}`);
      runs.get(target)!.push(result);
    }
  }
  scores.set(what, new Map([...runs].map(([target, done]) => [target.name, done.map(score)])));
  return [...runs.values()].map((done) => median(done, score));
}

/** Every round's score, per scenario (`what`) and server. */
const scores = new Map<string, Map<string, number[]>>();
/**
 * Every isolation round's with / alone ratio, per server: each round's two figures come from one server process minutes
 * apart.
 */
const isolationRatios = new Map<string, number[]>();

/**
 * The median over rounds of `a`'s score divided by `b`'s in the same round. Rounds alternate
 * between the servers, so a pair shares the machine's state of the moment: on a shared machine
 * whose speed drifts by ±15% between minutes, this compares more fairly than two medians do.
 */
function paired(what: string, a: string, b: string): number {
  const of = scores.get(what);
  const as = of?.get(a);
  const bs = of?.get(b);
  if (!as || !bs) return Number.NaN;
  return medianOf(as.map((score, i) => score / bs[i]!));
}

const engines = await availableEngines(settings.engines);
const heralds = engines.map(heraldTarget);
const servers = [floor, naive, ...heralds];
const results = {
  fanout: [] as FanoutResult[],
  isolation: [] as IsolationResult[],
  topics: [] as TopicsResult[],
  replay: [] as ReplayResult[],
  rates: [] as Array<RateResult & { spread: [number, number] }>,
  latency: [] as LatencyResult[],
};
const started = Date.now();
try {
  if (scenarios.has("fanout")) {
    for (const subscribers of settings.subscribers) {
      results.fanout.push(
        ...(await inRounds(
          servers,
          rounds,
          `fan-out to ${subscribers}`,
          (target) => fanout(target, subscribers, deliveries),
          (r) => r.deliveriesPerS,
          (r) => `${count(r.deliveriesPerS)} deliveries/s, ${r.bytesPerIdleStream} bytes/idle stream`,
        )),
      );
    }
  }
  if (scenarios.has("isolation")) {
    results.isolation = await inRounds(
      servers,
      settings.extraRounds,
      `isolation from ${settings.idle} idle`,
      async (target) => {
        const result = await isolation(
          target,
          settings.isolationSubscribers,
          settings.idle,
          settings.isolationPublishes,
        );
        isolationRatios.set(target.name, [...(isolationRatios.get(target.name) ?? []), result.ratio]);
        return result;
      },
      (r) => r.withIdlePerS,
      (r) =>
        `${count(r.alonePerS)} publishes/s alone, ${count(r.withIdlePerS)} with the idle streams (${percent(r.ratio)})`,
    );
  }
  if (scenarios.has("topics")) {
    results.topics = await inRounds(
      servers,
      settings.extraRounds,
      `${settings.topics} topics`,
      (target) =>
        manyTopics(
          target,
          settings.topics,
          settings.topicSubscribers,
          settings.topicsDeliveries,
          settings.topicsPublishers,
          settings.topicsBatch,
          { warmSeconds: settings.warmSeconds },
        ),
      (r) => r.deliveriesPerS,
      (r) => `${count(r.deliveriesPerS)} deliveries/s, ${count(r.publishesPerS)} publishes/s`,
    );
  }
  if (scenarios.has("replay")) {
    results.replay = await inRounds(
      heralds,
      settings.extraRounds,
      `replay of ${settings.replay}`,
      (target) => replay(target, settings.replay),
      (r) => r.eventsPerS,
      (r) => `${r.received} events in ${r.seconds.toFixed(2)} s`,
    );
  }
  if (scenarios.has("publish")) {
    for (const engine of engines) {
      for (const concurrency of [1, 32]) {
        // With sqlite, the floor's publish API too, alternating with herald round by round.
        const servers: RateServer[] = engine === "sqlite" ? ["bun floor", "herald"] : ["herald"];
        const runs = new Map<RateServer, RateResult[]>(servers.map((server) => [server, []]));
        for (let round = 0; round < settings.extraRounds; round++) {
          for (const server of inTurn(servers, round)) {
            const run = await publishRate(engine, settings.publishes, concurrency, server, settings.warmSeconds);
            console.error(
              `round ${round + 1}: publish rate: ${server}, ${engine}, ${concurrency} at once: ${count(run.publishesPerS)} publishes/s`,
            );
            runs.get(server)!.push(run);
          }
        }
        for (const server of servers) results.rates.push(median(runs.get(server)!, (run) => run.publishesPerS));
      }
    }
  }
  if (scenarios.has("latency")) {
    for (const { streams, topics, rate } of settings.latency) {
      results.latency.push(
        ...(await inRounds(
          [floor, durableFloor, ...heralds],
          settings.extraRounds,
          `latency at ${streams}x${topics}@${rate}`,
          (target) => fixedRate(target, streams, topics, rate, settings.latencySeconds, settings.latencyWarmSeconds),
          // The median round by p99: the figure the target is judged on.
          (r) => -r.p99Ms,
          (r) => `p50 ${ms(r.p50Ms)} ms, p99 ${ms(r.p99Ms)} ms, ${r.sentRate}/s sent, ${r.behind} behind`,
        )),
      );
    }
  }
} finally {
  await stopRedis();
}

/** `value` of the row for `name` among `rows`, NaN when there is none. */
function of<R extends { target: string }>(rows: readonly R[], name: string, value: (row: R) => number): number {
  const row = rows.find((r) => r.target === name);
  return row ? value(row) : Number.NaN;
}

const ratios = {
  fanout: settings.subscribers.flatMap((subscribers) => {
    const rows = results.fanout.filter((r) => r.subscribers === subscribers);
    const rate = (name: string) => of(rows, name, (r) => r.deliveriesPerS);
    return heralds.map(({ name }) => ({
      subscribers,
      target: name,
      vsFloor: rate(name) / rate(floor.name),
      vsNaive: rate(name) / rate(naive.name),
      vsMemory: rate(name) / rate("herald memory"),
      vsFloorPaired: paired(`fan-out to ${subscribers}`, name, floor.name),
      vsNaivePaired: paired(`fan-out to ${subscribers}`, name, naive.name),
    }));
  }),
  isolation: results.isolation.map((r) => ({
    target: r.target,
    withIdleVsAlone: r.ratio,
    withIdleVsAloneOfRounds: medianOf(isolationRatios.get(r.target) ?? []),
    vsFloor: r.withIdlePerS / of(results.isolation, floor.name, (f) => f.withIdlePerS),
    vsNaive: r.withIdlePerS / of(results.isolation, naive.name, (n) => n.withIdlePerS),
  })),
  topics: results.topics.map((r) => ({
    target: r.target,
    vsOneTopic:
      r.deliveriesPerS /
      of(
        results.fanout.filter((f) => f.subscribers === r.streams),
        r.target,
        (f) => f.deliveriesPerS,
      ),
    vsFloor: r.deliveriesPerS / of(results.topics, floor.name, (f) => f.deliveriesPerS),
    vsNaive: r.deliveriesPerS / of(results.topics, naive.name, (n) => n.deliveriesPerS),
  })),
};
const vs = (rows: ReadonlyArray<{ target: string; vsFloor: number; vsNaive: number }>, target: string) => {
  const row = rows.find((r) => r.target === target);
  return row ? [percent(row.vsFloor), times(row.vsNaive)] : ["", ""];
};

const host = machine(pin);
console.log(`\n${host.summary}\n`);
if (results.fanout.length > 0) {
  console.log(
    "Fan-out: N streams on one topic, events published one after another (vs: deliveries/s against the peer's median round; paired: the median of the same-round ratios):\n",
  );
  console.log(
    table(
      [
        "server",
        "subscribers",
        "events",
        "deliveries/s",
        "rounds' range",
        "p50 ms",
        "p99 ms",
        "max ms",
        "failed",
        "behind",
        "bytes/idle stream",
        "vs floor",
        "vs naive",
        "vs floor, paired",
        "vs naive, paired",
      ],
      results.fanout.map((r) => {
        const rows = results.fanout.filter((f) => f.subscribers === r.subscribers);
        const rate = (name: string) => of(rows, name, (f) => f.deliveriesPerS);
        return [
          r.target,
          String(r.subscribers),
          String(r.events),
          count(r.deliveriesPerS),
          range(r.spread),
          ms(r.p50Ms),
          ms(r.p99Ms),
          ms(r.maxMs),
          String(r.failed),
          String(r.behind),
          count(r.bytesPerIdleStream),
          percent(r.deliveriesPerS / rate(floor.name)),
          times(r.deliveriesPerS / rate(naive.name)),
          percent(paired(`fan-out to ${r.subscribers}`, r.target, floor.name)),
          times(paired(`fan-out to ${r.subscribers}`, r.target, naive.name)),
        ];
      }),
    ),
  );
  for (const r of ratios.fanout.filter((r) => r.target === "herald redis" && Number.isFinite(r.vsMemory))) {
    console.log(
      `herald redis at ${r.subscribers} subscribers: ${percent(r.vsMemory)} of the memory log's deliveries/s`,
    );
  }
}
if (results.isolation.length > 0) {
  const [first] = results.isolation;
  console.log(
    `\nIsolation: publishes/s to ${first!.subscribers} streams on one topic, each publish waiting until all have it, alone and with ${count(first!.idle)} idle streams on other topics (target: within 10%):\n`,
  );
  console.log(
    table(
      [
        "server",
        "publishes",
        "alone /s",
        "with idle /s",
        "with / alone",
        "rounds' range",
        "with / alone, median of rounds",
        "rounds' ratios",
        "p50 ms",
        "p99 ms",
        "failed",
        "vs floor",
        "vs naive",
      ],
      results.isolation.map((r) => [
        r.target,
        String(r.publishes),
        count(r.alonePerS),
        count(r.withIdlePerS),
        percent(r.ratio),
        range(r.spread),
        percent(ratios.isolation.find((t) => t.target === r.target)!.withIdleVsAloneOfRounds),
        (isolationRatios.get(r.target) ?? [])
          .map((ratio) => Math.round(ratio * 100))
          .sort((a, b) => a - b)
          .join(", ") + "%",
        ms(r.p50Ms),
        ms(r.p99Ms),
        String(r.failed),
        ...vs(ratios.isolation, r.target),
      ]),
    ),
  );
}
if (results.topics.length > 0) {
  const [first] = results.topics;
  console.log(
    `\nMany topics: ${count(first!.streams)} streams over ${count(first!.topics)} topics, events round-robin over the topics, ${first!.batch} a request, by ${first!.publishers} publishers at once (target: within 20% of one topic):\n`,
  );
  console.log(
    table(
      [
        "server",
        "publishes",
        "publishes/s",
        "deliveries/s",
        "rounds' range",
        "vs one topic",
        "p50 ms",
        "p99 ms",
        "max ms",
        "failed",
        "behind",
        "vs floor",
        "vs naive",
      ],
      results.topics.map((r) => [
        r.target,
        String(r.publishes),
        count(r.publishesPerS),
        count(r.deliveriesPerS),
        range(r.spread),
        percent(ratios.topics.find((t) => t.target === r.target)!.vsOneTopic),
        ms(r.p50Ms),
        ms(r.p99Ms),
        ms(r.maxMs),
        String(r.failed),
        String(r.behind),
        ...vs(ratios.topics, r.target),
      ]),
    ),
  );
}
if (results.replay.length > 0) {
  console.log(`\nReplay: one stream resuming with Last-Event-ID after ${count(settings.replay)} missed events:\n`);
  console.log(
    table(
      ["server", "events", "received", "complete", "all received ms", "events/s", "rounds' range", "first event ms"],
      results.replay.map((r) => [
        r.target,
        String(r.events),
        String(r.received),
        r.complete ? "yes" : "NO",
        ms(r.seconds * 1000),
        count(r.eventsPerS),
        range(r.spread),
        ms(r.firstEventMs),
      ]),
    ),
  );
}
if (results.rates.length > 0) {
  console.log(
    "\nPublishes through POST /api/publish, each acknowledged once durable (10 subscribers on the topic; the median round by publishes/s; bun floor: bench/floor.ts's publish API, storing each event in SQLite before it answers; vs floor: herald's publishes/s over the floor's):\n",
  );
  const floorRate = (r: RateResult) =>
    results.rates.find((f) => f.server === "bun floor" && f.eventLog === r.eventLog && f.concurrency === r.concurrency);
  console.log(
    table(
      [
        "server",
        "event log",
        "publishers at once",
        "publishes/s",
        "rounds' range",
        "vs floor",
        "ack p50 ms",
        "ack p99 ms",
        "subscribers behind",
      ],
      results.rates.map((r) => [
        r.server,
        r.eventLog,
        String(r.concurrency),
        count(r.publishesPerS),
        range(r.spread),
        floorRate(r) ? percent(r.publishesPerS / floorRate(r)!.publishesPerS) : "",
        r.ackP50Ms.toFixed(2),
        r.ackP99Ms.toFixed(2),
        String(r.behind),
      ]),
    ),
  );
}

if (results.latency.length > 0) {
  console.log(
    "\nLatency at an equal, fixed load: events sent at a fixed rate whatever the acknowledgements, publish to receive (each server's median round by p99; server CPU: its CPU time, all threads, over the sending's wall time, a share of the one core it is pinned to; vs floor: each server's figure over the floor's, whose events come rendered, at most 100% is herald's target; bun floor, durable: the floor's publish API, which stores each event in SQLite, with SQLite's own checkpoints, before it sends and answers it):\n",
  );
  const floorOf = (r: LatencyResult) =>
    results.latency.find(
      (f) => f.target === floor.name && f.streams === r.streams && f.topics === r.topics && f.rate === r.rate,
    );
  console.log(
    table(
      [
        "server",
        "streams",
        "topics",
        "events/s",
        "sent/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "p99 rounds' range",
        "behind",
        "server CPU",
        "p50 vs floor",
        "p99 vs floor",
      ],
      results.latency.map((r) => {
        const f = floorOf(r);
        return [
          r.target,
          count(r.streams),
          count(r.topics),
          count(r.rate),
          count(r.sentRate),
          ms(r.p50Ms),
          ms(r.p99Ms),
          ms(r.maxMs),
          r.spread ? `${ms(-r.spread[1])}–${ms(-r.spread[0])}` : "",
          String(r.behind),
          percent(r.serverCpu),
          f ? percent(r.p50Ms / f.p50Ms) : "",
          f ? percent(r.p99Ms / f.p99Ms) : "",
        ];
      }),
    ),
  );
}

mkdirSync(dirname(outFile), { recursive: true });
const minutes = (Date.now() - started) / 60_000;
writeFileSync(
  outFile,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      minutes: Number(minutes.toFixed(1)),
      machine: host,
      settings,
      ...results,
      isolationRounds: Object.fromEntries(isolationRatios),
      ratios,
    },
    null,
    2,
  ) + "\n",
);
console.log(`\n${minutes.toFixed(1)} minutes; results in ${outFile}`);
process.exit(0);
