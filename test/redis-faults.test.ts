/**
 * Redis faults, with real redis-server processes: Redis that comes back empty (restarted without
 * persistence, or flushed), Redis that hangs (SIGSTOP), Redis unreachable at start, and what a
 * resume from an anonymous client may cost.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { createLogger } from "../src/logger.ts";
import { eventually, idsOf, openStream, startTestHerald, type SseReader, type TestConfig } from "./helpers.ts";
import { apiPublish } from "./process.ts";
import { redisAvailable, startRedis, type RedisServer } from "./redis.ts";

const run = redisAvailable();
const TOKEN = "redis-fault-token-0123456789";

const heralds: Herald[] = [];
const readers: SseReader[] = [];

function start(redis: RedisServer, overrides: TestConfig = {}, lines?: string[]): Herald {
  const herald = startTestHerald(
    { eventLog: "redis", redisUrl: redis.url, publishTokens: [TOKEN], ...overrides },
    lines ? { log: createLogger("info", (line) => lines.push(line)) } : {},
  );
  heralds.push(herald);
  return herald;
}

async function stream(herald: Herald, query: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const reader = await openStream(herald, query, undefined, headers);
  readers.push(reader);
  return reader;
}

/** Publishes once Redis answers again (a client reconnects on its own within a moment). */
async function publishWhenBack(herald: Herald, body: unknown): Promise<{ id: string; delivered: number }> {
  for (let tries = 0; ; tries++) {
    try {
      return await apiPublish(herald.url, TOKEN, body);
    } catch (error) {
      if (tries > 100 || !String(error).includes("503")) throw error;
      await Bun.sleep(100);
    }
  }
}

afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  for (const herald of heralds.splice(0)) await herald.stop();
});

describe.if(run)("Redis that comes back empty", () => {
  for (const how of ["restarted without persistence", "flushed (FLUSHALL)"] as const) {
    test(`${how}: open and new streams get what is published after, in a new epoch; an id from before gets a snapshot and a history-cut`, async () => {
      const redis = await startRedis({ persistence: false });
      try {
        const herald = start(redis);
        const before = await stream(herald, "?topic=t");
        await eventually(() => herald.hub.clientCount === 1, "the stream");
        const old = [];
        for (let i = 1; i <= 5; i++) old.push(await apiPublish(herald.url, TOKEN, { target: "topic:t", html: `<p>old ${i}</p>` }));
        await before.event(5);
        const oldEpoch = old[0]!.id.slice(0, old[0]!.id.lastIndexOf("-"));

        if (how === "flushed (FLUSHALL)") await redis.flushAll();
        else {
          await redis.kill();
          await redis.start();
        }

        const first = await publishWhenBack(herald, { target: "topic:t", html: "<p>new 1</p>" });
        // The open stream got it, and the publisher was told so.
        expect((await before.event(6, 5_000)).data).toBe("<p>new 1</p>");
        expect(first.delivered).toBe(1);
        expect(first.id).not.toStartWith(`${oldEpoch}-`);
        expect(before.events[5]!.id).toBe(first.id);
        // Ids start again low in the new epoch (numbers taken in the old one before the script saw the flush are given up).
        const newEpoch = (await idsOf(herald))(0).slice(0, -2);
        expect(first.id).toMatch(new RegExp(`^${newEpoch}-[1-9]$`));

        // A new stream's snapshot names the new epoch, not the old high-water mark.
        const fresh = await stream(herald, "?topic=t");
        await fresh.until(() => fresh.pageEvents.length >= 1, "the snapshot");
        expect(fresh.pageEvents[0]!.id).toBe(first.id);
        const second = await apiPublish(herald.url, TOKEN, { target: "topic:t", html: "<p>new 2</p>" });
        expect(second.delivered).toBe(2);
        expect((await fresh.event(1, 5_000)).data).toBe("<p>new 2</p>");

        // An id from the old history, even one above the new ids, is never taken as covered.
        for (const stale of [old.at(-1)!.id, old[0]!.id]) {
          const back = await stream(herald, "?topic=t", { "last-event-id": stale });
          await back.until(() => back.pageEvents.length >= 2, "snapshot and notice");
          expect(back.pageEvents.map((e) => [e.event, e.id])).toEqual([
            ["snapshot", second.id],
            ["history-cut", second.id],
          ]);
          expect(back.events).toEqual([]);
        }
        // An id of the new history resumes.
        const resumed = await stream(herald, "?topic=t", { "last-event-id": first.id });
        expect((await resumed.event(1)).data).toBe("<p>new 2</p>");
      } finally {
        await redis.destroy();
      }
    }, 30_000);
  }

  test("a warning at start when Redis keeps nothing (neither AOF nor RDB), none when it does", async () => {
    const bare = await startRedis({ persistence: false });
    const kept = await startRedis();
    try {
      const warned: string[] = [];
      start(bare, {}, warned);
      const quiet: string[] = [];
      start(kept, {}, quiet);
      await eventually(() => warned.some((line) => line.includes("redis keeps nothing")), "the warning");
      const warning = JSON.parse(warned.find((line) => line.includes("redis keeps nothing"))!) as Record<string, unknown>;
      expect(warning).toMatchObject({ level: "warn", appendonly: "no", save: "" });
      await Bun.sleep(300);
      expect(quiet.some((line) => line.includes("redis keeps nothing"))).toBe(false);
    } finally {
      await bare.destroy();
      await kept.destroy();
    }
  });
});
