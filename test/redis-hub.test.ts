/**
 * Several herald processes sharing one Redis act as one hub: an event published on one reaches
 * the streams of all, and a client resumes on any of them with an id it saw on another.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { eventually, openStream, startTestHerald, type SseReader } from "./helpers.ts";
import { apiPublish, spawnHerald, type HeraldProcess } from "./process.ts";
import { redisAvailable, startRedis, type RedisServer } from "./redis.ts";

const run = redisAvailable();
const TOKEN = "redis-hub-token-0123456789";

describe.if(run)("several processes on one Redis", () => {
  let redis: RedisServer;
  let prefixes = 0;
  const heralds: Herald[] = [];
  const processes: HeraldProcess[] = [];
  const readers: SseReader[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });

  afterEach(async () => {
    for (const reader of readers.splice(0)) reader.close();
    for (const herald of heralds.splice(0)) await herald.stop();
    for (const proc of processes.splice(0)) if (proc.proc.exitCode === null) await proc.kill("SIGKILL");
  });

  afterAll(async () => {
    await redis?.destroy();
  });

  /**
   * Three in-process heralds on the same Redis keys, each following the log. (A herald that
   * starts before Redis answers serves 503s until it does; a loaded machine can make that happen.)
   */
  async function trio(): Promise<[Herald, Herald, Herald]> {
    const prefix = `hub${++prefixes}:`;
    const make = () =>
      startTestHerald({ eventLog: "redis", redisUrl: redis.url, redisPrefix: prefix, publishTokens: [TOKEN] });
    const all: [Herald, Herald, Herald] = [make(), make(), make()];
    heralds.push(...all);
    await Promise.all(all.map((herald) => herald.hub.position()));
    return all;
  }

  async function stream(
    herald: Herald | string,
    query: string,
    headers: Record<string, string> = {},
  ): Promise<SseReader> {
    const reader = await openStream(herald, query, undefined, headers);
    readers.push(reader);
    return reader;
  }

  test("events published on A and B reach the streams of A, B and C, all in the same order", async () => {
    const [a, b, c] = await trio();
    const readers = [
      await stream(a, "?topic=orders"),
      await stream(b, "?topic=orders"),
      await stream(c, "?topic=orders"),
    ];
    await eventually(
      () => a.hub.clientCount === 1 && b.hub.clientCount === 1 && c.hub.clientCount === 1,
      "three streams",
    );
    const results = [];
    for (let i = 1; i <= 10; i++)
      results.push(await apiPublish((i % 2 ? a : b).url, TOKEN, { target: "topic:orders", html: `<li>${i}</li>` }));
    // Each process counts its own streams.
    expect(results.every((r) => r.delivered === 1)).toBe(true);
    for (const reader of readers) {
      await reader.event(10);
      expect(reader.events.map((e) => e.id)).toEqual(results.map((r) => r.id));
      expect(reader.events.map((e) => e.data)).toEqual(results.map((_, i) => `<li>${i + 1}</li>`));
    }
  });

  test("a client resumes on C with the id it saw on A: exactly what it missed", async () => {
    const [a, , c] = await trio();
    const first = await stream(a, "?topic=t");
    await eventually(() => a.hub.clientCount === 1, "the stream");
    for (let i = 1; i <= 3; i++) await apiPublish(a.url, TOKEN, { target: "topic:t", html: `<li>${i}</li>` });
    await first.event(3);
    first.close();
    for (let i = 4; i <= 8; i++) await apiPublish(a.url, TOKEN, { target: "topic:t", html: `<li>${i}</li>` });
    const back = await stream(c, "?topic=t", { "last-event-id": first.events.at(-1)!.id! });
    await back.event(5);
    expect(back.events.map((e) => e.data)).toEqual([4, 5, 6, 7, 8].map((i) => `<li>${i}</li>`));
  });

  test("B's snapshot shows notifications published on A", async () => {
    const [a, b] = await trio();
    await apiPublish(a.url, TOKEN, { target: "everyone", message: "from A" });
    const reader = await stream(b, "");
    await reader.until(() => reader.pageEvents.length >= 1, "the snapshot");
    expect(reader.pageEvents[0]!.data).toContain("from A");
  });

  test("Redis stopped and restarted mid-stream: streams stay open, publishes are refused with 503 meanwhile, nothing acknowledged is lost", async () => {
    const [a, b] = await trio();
    const onA = await stream(a, "?topic=live");
    const onB = await stream(b, "?topic=live");
    await eventually(() => a.hub.clientCount === 1 && b.hub.clientCount === 1, "both streams");
    const acknowledged: string[] = [];
    acknowledged.push((await apiPublish(a.url, TOKEN, { target: "topic:live", html: "<li>before</li>" })).id);
    await onB.event(1);

    await redis.stop();
    const refused = await fetch(`${a.url}/api/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ target: "topic:live", html: "<li>during</li>" }),
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("5");
    expect(((await refused.json()) as { error: string }).error).toContain("cannot reach its event store (Redis)");
    expect(onA.done).toBe(false);
    expect(onB.done).toBe(false);

    await redis.start();
    for (let tries = 0; acknowledged.length < 2 && tries < 100; tries++) {
      const res = await fetch(`${b.url}/api/publish`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ target: "topic:live", html: "<li>after</li>" }),
      });
      if (res.status === 200) acknowledged.push(((await res.json()) as { id: string }).id);
      else await Bun.sleep(100);
    }
    for (let i = 0; i < 3; i++)
      acknowledged.push((await apiPublish(a.url, TOKEN, { target: "topic:live", html: `<li>then ${i}</li>` })).id);
    await onA.event(acknowledged.length, 10_000);
    await onB.event(acknowledged.length, 10_000);
    expect(onA.events.map((e) => e.id)).toEqual(acknowledged);
    expect(onB.events.map((e) => e.id)).toEqual(acknowledged);
    expect(onA.done || onB.done).toBe(false);
  }, 30_000);

  test("every process answers the same counts, and a process that dies stops being counted", async () => {
    const prefix = `presence${++prefixes}:`;
    const make = () =>
      startTestHerald({ eventLog: "redis", redisUrl: redis.url, redisPrefix: prefix, presenceMs: 100 });
    const [a, b] = [make(), make()];
    heralds.push(a, b);
    const { signIn } = await import("./helpers.ts");
    await stream(a, "?topic=x", { cookie: (await signIn(a, "alice")).cookie });
    await stream(a, "?topic=x");
    await stream(b, "", { cookie: (await signIn(b, "bob")).cookie });
    const cluster = async (h: Herald) =>
      ((await (await fetch(`${h.url}/healthz`)).json()) as { cluster: unknown }).cluster;
    const expected = { processes: 2, clients: 3, users: 2 };
    for (let i = 0; i < 100 && JSON.stringify(await cluster(a)) !== JSON.stringify(expected); i++) await Bun.sleep(50);
    expect(await cluster(a)).toEqual(expected);
    expect(await cluster(b)).toEqual(expected);
    expect(await a.ctx.presence!.isConnected("bob")).toBe(true);
    expect((await a.ctx.presence!.totals()).topics).toEqual({ x: 2 });

    // B goes silent as a crashed process would: its key expires and it drops out of the totals.
    await b.ctx.presence!.close(true);
    for (let i = 0; i < 100 && (await a.ctx.presence!.isConnected("bob")); i++) await Bun.sleep(50);
    expect(await cluster(a)).toEqual({ processes: 1, clients: 2, users: 1 });
  });

  test("presence across processes: joins and leaves from either reach both, and both answer who is there", async () => {
    const prefix = `presence${++prefixes}:`;
    const make = () =>
      startTestHerald({
        eventLog: "redis",
        redisUrl: redis.url,
        redisPrefix: prefix,
        presenceMs: 100,
        presenceTopics: ["room-*"],
      });
    const [a, b] = [make(), make()];
    heralds.push(a, b);
    await Promise.all([a.hub.position(), b.hub.position()]);
    const { signIn } = await import("./helpers.ts");
    const watcherOnA = await stream(a, "?topic=room-1");
    const watcherOnB = await stream(b, "?topic=room-1");
    await stream(a, "?topic=room-1", { cookie: (await signIn(a, "alice")).cookie });
    const bob = await stream(b, "?topic=room-1", { cookie: (await signIn(b, "bob")).cookie });
    const joined = (reader: SseReader) => reader.events.filter((e) => e.event === "join").map((e) => e.data);
    for (const watcher of [watcherOnA, watcherOnB]) {
      await watcher.until(() => joined(watcher).length === 2, "alice's and bob's joins");
      expect(joined(watcher).sort()).toEqual([
        '<li id="member-alice" class="member">alice</li>',
        '<li id="member-bob" class="member">bob</li>',
      ]);
    }
    const who = async (h: Herald) =>
      (await (await fetch(`${h.url}/api/presence?topic=room-1`)).json()) as {
        topic: string;
        users: string[];
        streams: number;
        processes: number;
      };
    const expected = { topic: "room-1", streams: 4, users: ["alice", "bob"], processes: 2 };
    for (let i = 0; i < 100 && JSON.stringify(await who(a)) !== JSON.stringify(expected); i++) await Bun.sleep(50);
    expect(await who(a)).toEqual(expected);
    expect(await who(b)).toEqual(expected);

    // Bob leaves on B: A's watcher hears it, and A stops listing him.
    bob.close();
    await watcherOnA.until(() => watcherOnA.events.some((e) => e.event === "leave"), "bob's leave on A");
    expect(watcherOnA.events.find((e) => e.event === "leave")!.data).toBe(
      '<li id="member-bob" hx-swap-oob="delete"></li>',
    );
    for (let i = 0; i < 100 && (await who(a)).users.includes("bob"); i++) await Bun.sleep(50);
    expect(await who(a)).toEqual({ topic: "room-1", streams: 3, users: ["alice"], processes: 2 });
  });

  test("a process killed: its clients resume on another with nothing lost", async () => {
    const env = {
      REDIS_URL: redis.url,
      HERALD_REDIS_PREFIX: `proc${++prefixes}:`,
      HERALD_PUBLISH_TOKENS: TOKEN,
      HERALD_DATA_DIR: "/tmp",
    };
    const [p1, p2] = await Promise.all([spawnHerald(env), spawnHerald(env)]);
    processes.push(p1, p2);
    const onP1 = await stream(p1.url, "?topic=k");
    await Bun.sleep(200);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await apiPublish(p2.url, TOKEN, { target: "topic:k", html: `<li>${i}</li>` })).id);
    await onP1.event(5);
    await p1.kill("SIGKILL");
    await onP1.ended();
    for (let i = 5; i < 9; i++)
      ids.push((await apiPublish(p2.url, TOKEN, { target: "topic:k", html: `<li>${i}</li>` })).id);
    const resumed = await stream(p2.url, "?topic=k", { "last-event-id": onP1.events.at(-1)!.id! });
    await resumed.event(4);
    expect([...onP1.events, ...resumed.events].map((e) => e.id)).toEqual(ids);
  }, 30_000);
});

describe.if(run)("HERALD_WORKERS", () => {
  test("two workers serve one port as one hub, and stop together on SIGTERM", async () => {
    const redis = await startRedis();
    const herald = await spawnHerald({
      REDIS_URL: redis.url,
      HERALD_WORKERS: "2",
      HERALD_PUBLISH_TOKENS: TOKEN,
      HERALD_DATA_DIR: "/tmp",
      HERALD_STREAMS_PER_IP_PER_S: "1000",
    });
    const readers: SseReader[] = [];
    try {
      // The kernel spreads new connections over the two listeners.
      const pids = new Set<number>();
      for (let i = 0; i < 40 && pids.size < 2; i++) {
        const res = await fetch(`${herald.url}/healthz`, { headers: { connection: "close" } });
        pids.add(((await res.json()) as { pid: number }).pid);
      }
      expect(pids.size).toBe(2);
      expect(pids.has(herald.pid)).toBe(false);

      for (let i = 0; i < 12; i++) readers.push(await openStream(herald.url, "?topic=w"));
      await Bun.sleep(300);
      const { id } = await apiPublish(herald.url, TOKEN, { target: "topic:w", html: "<li>to all</li>" });
      for (const reader of readers) expect(await reader.event(1)).toMatchObject({ id, data: "<li>to all</li>" });

      expect(await herald.kill("SIGTERM")).toBe(0);
      for (const reader of readers) await reader.ended();
      for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    } finally {
      for (const reader of readers) reader.close();
      if (herald.proc.exitCode === null) await herald.kill("SIGKILL");
      await redis.destroy();
    }
  }, 30_000);
});
