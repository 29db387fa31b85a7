/**
 * Redis faults, with real redis-server processes: Redis that comes back empty (restarted without
 * persistence, or flushed), Redis that hangs (SIGSTOP), Redis unreachable at start, and what a
 * resume from an anonymous client may cost.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { createLogger } from "../src/server/logger.ts";
import {
  eventually,
  idsOf,
  openStream,
  postForm,
  seq,
  signIn,
  startTestHerald,
  type SseReader,
  type TestConfig,
} from "./helpers.ts";
import { apiPublish, spawnHerald, type HeraldProcess } from "./process.ts";
import { freePort, redisAvailable, startRedis, type RedisServer } from "./redis.ts";

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
        for (let i = 1; i <= 5; i++)
          old.push(await apiPublish(herald.url, TOKEN, { target: "topic:t", html: `<p>old ${i}</p>` }));
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
        // Ids start again low in the new epoch (numbers taken in the old one before the script saw the flush are given
        // up).
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
      const warning = JSON.parse(warned.find((line) => line.includes("redis keeps nothing"))!) as Record<
        string,
        unknown
      >;
      expect(warning).toMatchObject({ level: "warn", appendonly: "no", save: "" });
      await Bun.sleep(300);
      expect(quiet.some((line) => line.includes("redis keeps nothing"))).toBe(false);
    } finally {
      await bare.destroy();
      await kept.destroy();
    }
  });
});

/** `POST /api/publish` that gives up after 10 s, so a hang shows as a failure rather than a stuck test. */
function publishOnce(url: string, body: unknown): Promise<Response> {
  return fetch(`${url}/api/publish`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
}

describe.if(run)("Redis that hangs or is away", () => {
  test("Redis stopped with SIGSTOP: a publish answers 503 with Retry-After within the timeout and is not stored when Redis wakes", async () => {
    const redis = await startRedis();
    try {
      const herald = start(redis, { redisTimeoutMs: 500 });
      const reader = await stream(herald, "?topic=t");
      await eventually(() => herald.hub.clientCount === 1, "the stream");
      await apiPublish(herald.url, TOKEN, { target: "topic:t", html: "<p>before</p>" });
      await reader.event(1);

      redis.pause();
      const during = await publishOnce(herald.url, { target: "topic:t", html: "<p>during</p>" });
      expect(during.status).toBe(503);
      expect(during.headers.get("retry-after")).toBe("5");
      expect(((await during.json()) as { error: string }).error).toContain("Redis");
      // Everyone else is still served.
      expect((await fetch(`${herald.url}/healthz`, { signal: AbortSignal.timeout(10_000) })).status).toBeLessThan(600);

      redis.resume();
      const after = await publishWhenBack(herald, { target: "topic:t", html: "<p>after</p>" });
      await reader.event(2, 5_000);
      // The refused publish, which Redis ran once it woke, past its deadline, stored nothing:
      // a client that sends it again makes no duplicate.
      const log = await herald.hub.log.readAfter(0, ["topic:t"], 10);
      expect(log.map((e) => e.data)).toEqual(["<p>before</p>", "<p>after</p>"]);
      expect(reader.events.map((e) => e.data)).toEqual(["<p>before</p>", "<p>after</p>"]);
      expect(reader.events[1]!.id).toBe(after.id);
    } finally {
      await redis.destroy();
    }
  }, 30_000);

  test("Redis stopped with SIGSTOP: marking read answers 503 within the timeout, and pages still load", async () => {
    const redis = await startRedis();
    try {
      const herald = start(redis, { redisTimeoutMs: 500 });
      const carol = await signIn(herald, "carol");
      const { id } = await apiPublish(herald.url, TOKEN, { target: "user:carol", message: "read me" });
      redis.pause();
      // Without a timeout each of these would hang for as long as Redis sleeps (past the test's limit).
      for (const fields of [{ id: String(seq(id)) }, { all: "1" }] as Record<string, string>[]) {
        const res = await postForm(herald, "/notifications/read", fields, { session: carol });
        expect(res.status).toBe(503);
        expect(res.headers.get("retry-after")).toBe("5");
      }
      const page = await fetch(`${herald.url}/inventory`, { headers: { cookie: carol.cookie } });
      expect(page.status).toBe(200);
      redis.resume();
      const res = await postForm(herald, "/notifications/read", { id: String(seq(id)) }, { session: carol });
      expect(res.status).toBe(200);
    } finally {
      await redis.destroy();
    }
  }, 30_000);

  test("Redis unreachable at start: herald stays up answering 503s, and serves once Redis answers", async () => {
    const port = freePort();
    let herald: HeraldProcess | null = null;
    let redis: RedisServer | null = null;
    try {
      herald = await spawnHerald({
        REDIS_URL: `redis://127.0.0.1:${port}`,
        HERALD_PUBLISH_TOKENS: TOKEN,
        HERALD_DATA_DIR: `/tmp/herald-unreachable-${port}`,
      });
      await Bun.sleep(1_000);
      expect(herald.proc.exitCode).toBeNull();
      const refused = await publishOnce(herald.url, { target: "topic:t", html: "<p>x</p>" });
      expect(refused.status).toBe(503);
      expect(refused.headers.get("retry-after")).not.toBeNull();
      const sse = await fetch(`${herald.url}/sse?topic=t`, { signal: AbortSignal.timeout(10_000) });
      expect(sse.status).toBe(503);
      expect(sse.headers.get("retry-after")).not.toBeNull();
      expect(await sse.text()).toContain("retry:");

      redis = await startRedis({ port });
      let open: Response | null = null;
      for (let i = 0; i < 100 && open?.status !== 200; i++) {
        await open?.body?.cancel();
        open = await fetch(`${herald.url}/sse?topic=t`, { signal: AbortSignal.timeout(10_000) });
        if (open.status !== 200) await Bun.sleep(100);
      }
      expect(open!.status).toBe(200);
      await open!.body?.cancel();
      const reader = await openStream(herald.url, "?topic=t");
      readers.push(reader);
      const sent = await apiPublish(herald.url, TOKEN, { target: "topic:t", html: "<p>now</p>" });
      expect((await reader.event(1, 5_000)).id).toBe(sent.id);
      expect(herald.proc.exitCode).toBeNull();
    } finally {
      if (herald && herald.proc.exitCode === null) await herald.kill("SIGKILL");
      await redis?.destroy();
    }
  }, 30_000);

  test("a stream entry herald cannot read is logged and skipped; the events after it are followed", async () => {
    const redis = await startRedis();
    const client = new Bun.RedisClient(redis.url);
    try {
      const lines: string[] = [];
      const herald = start(redis, { redisPrefix: "bad:" }, lines);
      const reader = await stream(herald, "?topic=t");
      await eventually(() => herald.hub.clientCount === 1, "the stream");
      const first = await apiPublish(herald.url, TOKEN, { target: "topic:t", html: "<p>one</p>" });
      await reader.event(1);
      // An entry another program wrote, with the next id, and a good one after it, added together
      // so that the follower reads them in one batch (the counter moved past both).
      const next = Number(first.id.slice(first.id.lastIndexOf("-") + 1)) + 1;
      await client.send("EVAL", [
        "redis.call('INCRBY', KEYS[2], 2) redis.call('XADD', KEYS[1], ARGV[1] .. '-0', 'at', '0', 'event', 'notification', 'channels', 'not json', 'data', '?') redis.call('XADD', KEYS[1], (ARGV[1] + 1) .. '-0', 'at', ARGV[2], 'event', 'notification', 'channels', '[\"topic:t\"]', 'data', '<p>two</p>') return 1",
        "2",
        "bad:events",
        "bad:event-id",
        String(next),
        String(Date.now()),
      ]);
      expect((await reader.event(2, 5_000)).data).toBe("<p>two</p>");
      const third = await apiPublish(herald.url, TOKEN, { target: "topic:t", html: "<p>three</p>" });
      expect((await reader.event(3, 5_000)).data).toBe("<p>three</p>");
      expect(reader.events.map((e) => e.id)).toEqual([
        first.id,
        `${first.id.slice(0, first.id.lastIndexOf("-"))}-${next + 1}`,
        third.id,
      ]);
      expect(third.delivered).toBe(1);
      await eventually(
        () => lines.some((line) => line.includes("redis stream entry skipped") && line.includes(`${next}-0`)),
        "the warning",
      );
    } finally {
      client.close();
      await redis.destroy();
    }
  }, 20_000);
});
