/**
 * What one resume may cost: a replay reads only its channels' events, on Redis too (where it
 * scanned the whole stream, on the publishers' connection, after the client had gone), and an
 * anonymous resume from far back gets a snapshot instead of the whole log.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { eventually, openStream, signIn, startTestHerald, type SseReader, type TestConfig } from "./helpers.ts";
import { redisAvailable, startRedis, type RedisServer } from "./redis.ts";

const withRedis = redisAvailable();
const TOKEN = "replay-limit-token-0123456789";
let redis: RedisServer | undefined;
let prefixes = 0;
const heralds: Herald[] = [];
const readers: SseReader[] = [];

beforeAll(async () => {
  if (withRedis) redis = await startRedis();
});

afterAll(async () => {
  await redis?.destroy();
});

afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  for (const herald of heralds.splice(0)) await herald.stop();
});

function start(eventLog: "sqlite" | "memory" | "redis", overrides: TestConfig = {}): Herald {
  const redisConfig: TestConfig =
    eventLog === "redis" ? { redisUrl: redis!.url, redisPrefix: `limits${++prefixes}:` } : {};
  const herald = startTestHerald({
    eventLog,
    publishTokens: [TOKEN],
    limits: { publishesPerTokenPerS: 1_000_000 },
    ...redisConfig,
    ...overrides,
  });
  heralds.push(herald);
  return herald;
}

async function stream(
  herald: Herald,
  query: string,
  headers: Record<string, string>,
  cookie?: string,
): Promise<SseReader> {
  const reader = await openStream(herald, query, cookie, headers);
  readers.push(reader);
  return reader;
}

/** Publishes `count` events to `target` in batches; resolves with the first event's id. */
async function publishMany(
  herald: Herald,
  target: string,
  count: number,
  html: (i: number) => string,
): Promise<string> {
  let first = "";
  // Batches within the body limit (256 KiB).
  const size = Math.max(1, Math.min(100, Math.floor(150_000 / html(0).length)));
  for (let from = 0; from < count; from += size) {
    const batch = Array.from({ length: Math.min(size, count - from) }, (_, k) => ({ target, html: html(from + k) }));
    const res = await fetch(`${herald.url}/api/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(batch),
    });
    expect(res.status).toBe(200);
    first ||= ((await res.json()) as Array<{ id: string }>)[0]!.id;
  }
  return first;
}

/** The id just before `id`'s history began: `<epoch>-0`. */
const startOf = (id: string) => id.replace(/\d+$/, "0");

describe("replay limits", () => {
  const logs = ["sqlite", "memory", ...(withRedis ? (["redis"] as const) : [])] as const;
  for (const eventLog of logs) {
    test(`${eventLog}: an anonymous resume with more missed than HERALD_REPLAY_MAX_ANONYMOUS gets a snapshot and a history-cut; a signed-in one gets them all`, async () => {
      const herald = start(eventLog, { replayMaxAnonymous: 100 });
      const first = await publishMany(herald, "everyone", 150, (i) => `<p>${i}</p>`);
      const anonymous = await stream(herald, "?topic=nothing-here", { "last-event-id": startOf(first) });
      await anonymous.until(() => anonymous.pageEvents.length >= 2, "snapshot and notice");
      expect(anonymous.pageEvents.map((e) => e.event)).toEqual(["snapshot", "history-cut"]);
      expect(anonymous.events).toEqual([]);

      const bob = await signIn(herald, "bob");
      const signedIn = await stream(herald, "?topic=nothing-here", { "last-event-id": startOf(first) }, bob.cookie);
      await signedIn.event(150);
      expect(signedIn.events.map((e) => e.data)).toEqual(Array.from({ length: 150 }, (_, i) => `<p>${i}</p>`));
      expect(signedIn.pageEvents).toEqual([]);

      // Within the limit, an anonymous stream resumes as before.
      const near = await stream(herald, "?topic=nothing-here", { "last-event-id": signedIn.events[99]!.id! });
      await near.event(50);
      expect(near.events[0]!.data).toBe("<p>100</p>");
      expect(near.pageEvents).toEqual([]);
    }, 20_000);
  }

  test.if(withRedis)(
    "redis: a resume reads only its channels' events, and nothing once its client has gone",
    async () => {
      // A buffer that holds a replay batch of these events (500 of 5 KB).
      const herald = start("redis", { maxBuffer: 64 * 1024 * 1024 });
      // 10 MB on one topic.
      const first = await publishMany(herald, "topic:busy", 2_000, (i) => `<p>${i} ${"x".repeat(5_000)}</p>`);
      const info = new Bun.RedisClient(redis!.url);
      const sent = async () =>
        Number(/total_net_output_bytes:(\d+)/.exec(String(await info.send("INFO", ["stats"])))![1]);
      try {
        const before = await sent();
        // As the attack: anonymous, another topic, from the start, gone right after the status line.
        const reader = await stream(herald, "?topic=nothing-here", { "last-event-id": startOf(first) });
        reader.close();
        await eventually(() => herald.hub.clientCount === 0, "the stream gone");
        await Bun.sleep(1_000);
        // Only that channel's (and everyone's) events could be read: none. Redis sent a few
        // hundred bytes (follower reads, presence), not the 10 MB stream.
        expect((await sent()) - before).toBeLessThan(200_000);
        // And a resume on the busy topic still gets every event it missed, in order.
        const bob = await signIn(herald, "bob");
        const busy = await stream(herald, "?topic=busy", { "last-event-id": startOf(first) }, bob.cookie);
        await busy.event(2_000, 15_000);
        expect(busy.events.map((e) => e.data.slice(0, e.data.indexOf(" ")))).toEqual(
          Array.from({ length: 2_000 }, (_, i) => `<p>${i}`),
        );
      } finally {
        info.close();
      }
    },
    30_000,
  );
});
