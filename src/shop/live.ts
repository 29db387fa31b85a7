/**
 * The live streams behind `/live`: simulated market prices on topic `market`, and this process's
 * own figures on topic `metrics`. Both are signals (not logged: a price or a figure is worth
 * showing only while it is current) and both are made only while a stream follows their topic.
 * A page's first paint and snapshot show the latest of each.
 */
import { topicChannel } from "../core/channel.ts";
import type { Hub } from "../core/hub.ts";
import { MARKET_TOPIC, METRICS_TOPIC } from "./topics.ts";
import type { Metrics, Quote } from "./model.ts";
import { marketTable, metricsFigures } from "./views/live.ts";

const SYMBOLS: Array<[string, string, number]> = [
  ["ACME", "Acme Corp.", 182.4],
  ["GLBX", "Globex", 64.1],
  ["INIT", "Initech", 23.75],
  ["UMBR", "Umbrella", 311.2],
  ["STRK", "Stark Industries", 948.0],
];

/**
 * Prices on a random walk, moved one step per tick, and pulled back toward where they opened: a
 * demo left running for days keeps prices of the same size as it started with, not ones that
 * drifted to a cent or to millions.
 */
export class Market {
  quotes: Quote[] = SYMBOLS.map(([symbol, name, price]) => ({ symbol, name, price, change: 0 }));
  /** Each symbol's opening price, which its walk is pulled back toward. */
  readonly #opening = SYMBOLS.map(([, , price]) => price);
  /** Ticks made so far: they are made only while someone follows `market`. */
  ticks = 0;
  updatedAt = Date.now();
  #random: () => number;

  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  tick(): void {
    for (const [i, quote] of this.quotes.entries()) {
      // A random step of at most ±1.5%, less a pull of 1% of the distance from the opening price
      // (in logarithms); never below one cent.
      const change = (this.#random() * 2 - 1) * 1.5 - Math.log(quote.price / this.#opening[i]!);
      quote.price = Math.max(0.01, Math.round(quote.price * (1 + change / 100) * 100) / 100);
      quote.change = Math.round(change * 100) / 100;
    }
    this.ticks++;
    this.updatedAt = Date.now();
  }
}

/** Reads the process's figures; each reading's rates cover the time since the one before. */
export class MetricsSampler {
  #hub: Hub;
  #startedAt: number;
  #last: { at: number; cpu: NodeJS.CpuUsage; published: number; delivered: number };
  latest: Metrics;

  constructor(hub: Hub, startedAt: number) {
    this.#hub = hub;
    this.#startedAt = startedAt;
    const stats = hub.stats();
    this.#last = {
      at: performance.now(),
      cpu: process.cpuUsage(),
      published: stats.published,
      delivered: stats.delivered,
    };
    this.latest = this.#reading(0, 0, 0);
  }

  #reading(cpuPercent: number, eventsPerS: number, deliveriesPerS: number): Metrics {
    const memory = process.memoryUsage();
    return {
      at: Date.now(),
      rssBytes: memory.rss,
      heapBytes: memory.heapUsed,
      cpuPercent,
      streams: this.#hub.clientCount,
      eventsPerS,
      deliveriesPerS,
      uptimeS: Math.round((Date.now() - this.#startedAt) / 1000),
    };
  }

  sample(): Metrics {
    const now = performance.now();
    const cpu = process.cpuUsage();
    const { published, delivered } = this.#hub.stats();
    const seconds = Math.max((now - this.#last.at) / 1000, 0.001);
    const cpuMicros = cpu.user - this.#last.cpu.user + (cpu.system - this.#last.cpu.system);
    const round = (n: number) => Math.round(n * 10) / 10;
    this.latest = this.#reading(
      round((cpuMicros / 1e6 / seconds) * 100),
      round((published - this.#last.published) / seconds),
      round((delivered - this.#last.delivered) / seconds),
    );
    this.#last = { at: now, cpu, published, delivered };
    return this.latest;
  }
}

/** The live state a page needs for its first paint and snapshot. */
export interface LiveFeeds {
  market: Market;
  metrics: MetricsSampler;
  stop(): void;
}

/** Starts the market (every `marketMs`) and metrics (every `metricsMs`) feeds. */
export function startLiveFeeds(
  hub: Hub,
  startedAt: number,
  { marketMs, metricsMs }: { marketMs: number; metricsMs: number },
): LiveFeeds {
  const market = new Market();
  const metrics = new MetricsSampler(hub, startedAt);
  const marketChannel = topicChannel(MARKET_TOPIC);
  const metricsChannel = topicChannel(METRICS_TOPIC);
  const timers = [
    setInterval(() => {
      if (hub.subscriberCount(marketChannel) === 0) return;
      market.tick();
      hub.signal(marketChannel, { event: "market", data: marketTable(market.quotes, market.updatedAt).value });
    }, marketMs),
    setInterval(() => {
      // Read every time, so that the rates cover one interval; sent only when someone follows.
      const reading = metrics.sample();
      if (hub.subscriberCount(metricsChannel) === 0) return;
      hub.signal(metricsChannel, { event: "metrics", data: metricsFigures(reading).value });
    }, metricsMs),
  ];
  for (const timer of timers) timer.unref();
  return {
    market,
    metrics,
    stop: () => timers.forEach(clearInterval),
  };
}
