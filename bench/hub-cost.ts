/**
 * `bun run bench:hub`: what the hub itself costs, in this process, with no network: streams
 * whose sockets take every write at once and send nothing, so what is left is herald's own work
 * (rendering, the event log, encoding, finding the streams, queueing and handing over frames).
 *
 * - one topic: N streams on one topic, events published one after another (as `fanout`): the
 *   cost of a delivery;
 * - many topics: the same streams over many topics, a few each, events round-robin over them in
 *   requests' worth at once (as `topics`): the cost of an event that reaches a few streams.
 *
 * The ratio of the two deliveries/s is the most the `topics` scenario could reach against
 * `fanout` if the network were free: it shows how much of an event's cost does not depend on how
 * many streams it reaches.
 *
 * It then times, alone, three steps that every event published through the API must take however
 * the rest is built: its share of parsing a request of HUB_BATCH events (`JSON.parse`), rendering
 * its notification fragment, and encoding its SSE frame. Their sum is the least an event costs
 * apart from its deliveries, the request around it, the log and the routing.
 *
 * Environment: HUB_LOGS [memory,sqlite], HUB_STREAMS [10000], HUB_TOPICS [1000], HUB_EVENTS
 * per many-topics round [50000], HUB_BATCH [100], HUB_ROUNDS [3].
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { topicChannel, type Channel } from "../src/core/channel.ts";
import { MemoryEventLog, SqliteEventLog, type EventLog } from "../src/core/eventlog/index.ts";
import { Hub } from "../src/core/hub.ts";
import { encodeMessage } from "../src/core/sse.ts";
import { notificationItem } from "../views/notification.ts";
import { count, median, percent, table } from "./report.ts";

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const logs = (process.env.HUB_LOGS ?? "memory,sqlite").split(",").map((name) => name.trim());
const streams = env("HUB_STREAMS", 10_000);
const topicCount = env("HUB_TOPICS", 1_000);
const manyEvents = env("HUB_EVENTS", 50_000);
const batch = env("HUB_BATCH", 100);
const rounds = env("HUB_ROUNDS", 3);
const retention = { maxEvents: 100_000, maxAgeMs: 3_600_000 };

/** Bytes handed to every `nullSink` so far. */
let handed = 0;

/** A socket that takes everything at once: counts the bytes it is handed, sends nothing. */
function nullSink() {
  return {
    write(chunk: Uint8Array) {
      handed += chunk.byteLength;
      return chunk.byteLength;
    },
    flush() {
      return 0;
    },
    end() {
      return 0;
    },
  };
}

interface Run {
  deliveriesPerS: number;
  /** CPU time (user + system) per event and per delivery, in µs. */
  cpuPerEventUs: number;
  cpuPerDeliveryUs: number;
}

async function measure(log: EventLog, topics: readonly Channel[], events: number, inFlight: number): Promise<Run> {
  const hub = new Hub({ log, heartbeatMs: 0, clientTimeoutMs: 0 });
  handed = 0;
  const sinks = Array.from({ length: streams }, () => nullSink());
  const subscribers = sinks.map((sink, i) =>
    hub.attach(sink, { channels: [topics[i % topics.length]!], userId: null }),
  );
  const expected = events * (streams / topics.length);

  const publish = (i: number) => {
    const channel = topics[i % topics.length]!;
    const message = `event ${i} of ${events}: stock of sku-${i % 97} changed`;
    const sentAt = Date.now();
    return hub.publish(channel, {
      event: "notification",
      data: (id) => notificationItem({ id, message, title: "", level: "info", channel, from: null, sentAt }).value,
    });
  };
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let i = 0; i < events; i += inFlight) {
    const group: Array<Promise<unknown>> = [];
    for (let j = i; j < Math.min(events, i + inFlight); j++) group.push(publish(j));
    await Promise.all(group);
    // The next group comes in a turn of its own, as the next request would.
    await new Promise((resolve) => setImmediate(resolve));
  }
  // Every publish has resolved, so every event is queued on its streams; the writer is done once
  // it has handed all their bytes over (joined, so writes are not frames).
  const queuedBytes = subscribers.reduce((sum, subscriber) => sum + subscriber.bytesSent, 0);
  while (handed < queuedBytes) await new Promise((resolve) => setImmediate(resolve));
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const queued = subscribers.reduce((sum, subscriber) => sum + subscriber.eventsSent, 0);
  if (queued !== expected || handed !== queuedBytes)
    throw new Error(`the streams got ${queued} of ${expected} events and ${handed} of ${queuedBytes} bytes`);
  hub.close();
  const cpuUs = used.user + used.system;
  return { deliveriesPerS: expected / seconds, cpuPerEventUs: cpuUs / events, cpuPerDeliveryUs: cpuUs / expected };
}

const rows: string[][] = [];
for (const name of logs) {
  const oneTopic: Run[] = [];
  const manyTopics: Run[] = [];
  for (let round = 0; round <= rounds; round++) {
    // Round 0 warms up (compiles the paths) and is not counted.
    for (const many of [false, true]) {
      const dir = mkdtempSync(join(tmpdir(), "herald-hub-cost-"));
      const log: EventLog =
        name === "sqlite" ? new SqliteEventLog(join(dir, "herald.db"), { retention }) : new MemoryEventLog(retention);
      const topics = many ? Array.from({ length: topicCount }, (_, i) => topicChannel(`t${i}`)) : [topicChannel("all")];
      const run = await measure(
        log,
        topics,
        many ? manyEvents : Math.max(10, Math.round((manyEvents * (streams / topicCount)) / streams)),
        many ? batch : 1,
      );
      await log.close();
      rmSync(dir, { recursive: true, force: true });
      if (round > 0) (many ? manyTopics : oneTopic).push(run);
    }
  }
  const one = median(oneTopic, (r) => r.deliveriesPerS);
  const many = median(manyTopics, (r) => r.deliveriesPerS);
  rows.push(
    [
      name,
      `1 topic × ${count(streams)}`,
      count(one.deliveriesPerS),
      one.cpuPerEventUs.toFixed(1),
      one.cpuPerDeliveryUs.toFixed(3),
      "",
    ],
    [
      name,
      `${count(topicCount)} topics × ${count(streams / topicCount)}`,
      count(many.deliveriesPerS),
      many.cpuPerEventUs.toFixed(1),
      many.cpuPerDeliveryUs.toFixed(3),
      percent(many.deliveriesPerS / one.deliveriesPerS),
    ],
  );
}
console.log(`\nThe hub alone (no network), ${Bun.version}: median of ${rounds} rounds\n`);
console.log(table(["log", "streams", "deliveries/s", "CPU µs/event", "CPU µs/delivery", "many topics vs one"], rows));

/**
 * CPU µs per call of `step`, the least of `rounds` timings of `calls` calls (the least is the one noise added least
 * to).
 */
function leastUs(step: (i: number) => unknown, calls = 200_000): number {
  let least = Infinity;
  // Kept, so that the engine cannot drop the calls as unused.
  let last: unknown;
  for (let round = 0; round <= rounds; round++) {
    const cpu = process.cpuUsage();
    for (let i = 0; i < calls; i++) last = step(i);
    const used = process.cpuUsage(cpu);
    if (round > 0) least = Math.min(least, (used.user + used.system) / calls);
  }
  if (last === undefined) throw new Error("a step returned nothing");
  return least;
}

const sentAt = Date.now();
const request = JSON.stringify(
  Array.from({ length: batch }, (_, i) => ({
    target: `topic:t${i}`,
    message: `event ${i} of ${manyEvents}: stock of sku-${i % 97} changed`,
  })),
);
const fragment = (id: number) =>
  notificationItem({
    id,
    message: `event ${id} of ${manyEvents}: stock of sku-${id % 97} changed`,
    title: "",
    level: "info",
    channel: "topic:t1",
    from: null,
    sentAt,
  }).value;
const rendered = fragment(manyEvents);
const steps: Array<[string, number]> = [
  [`its share of JSON.parse of a request of ${batch} events`, leastUs(() => JSON.parse(request), 2_000) / batch],
  ["rendering its notification fragment", leastUs(fragment)],
  [
    "encoding its frame (a rendered fragment)",
    leastUs((id) => encodeMessage({ event: "notification", id: String(id), data: rendered })),
  ],
  [
    "rendering and encoding together",
    leastUs((id) => encodeMessage({ event: "notification", id: String(id), data: fragment(id) })),
  ],
];
console.log(`\nSteps every API event takes, alone (least of ${rounds} timings):\n`);
console.log(
  table(
    ["step", "CPU µs an event"],
    steps.map(([step, us]) => [step, us.toFixed(3)]),
  ),
);
