import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { RedisEventLog, type NewEvent, type StoredEvent } from "../src/core/eventlog/index.ts";
import { RedisReadMarks } from "../src/core/read-marks.ts";
import { redisAvailable, startRedis, type RedisServer } from "./redis.ts";

const run = redisAvailable();
const retention = { maxEvents: 10_000, maxAgeMs: 3_600_000 };
const event = (data: string): NewEvent => ({ channels: ["topic:shared"], event: "notification", data, at: Date.now() });

describe.if(run)("Redis event log", () => {
  let redis: RedisServer;
  let prefixes = 0;
  const open = () => new RedisEventLog({ url: redis.url, retention, prefix: `r${++prefixes}:` });

  beforeAll(async () => {
    redis = await startRedis();
  });

  afterAll(async () => {
    await redis?.destroy();
  });

  test("two processes appending at once get distinct ids that increase along the stream", async () => {
    const prefix = `shared${++prefixes}:`;
    const a = new RedisEventLog({ url: redis.url, retention, prefix });
    const b = new RedisEventLog({ url: redis.url, retention, prefix });
    const appended = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        (i % 2 ? a : b).append(event(`e${i}`), (id) => `<li id="n-${id}">e${i}</li>`),
      ),
    );
    const ids = appended.map((e) => e.id);
    expect(new Set(ids).size).toBe(200);
    const stream = await a.readAfter(0, ["topic:shared"], 1000);
    expect(stream).toHaveLength(200);
    const streamIds = stream.map((e) => e.id);
    expect(streamIds).toEqual([...streamIds].sort((x, y) => x - y));
    // Each event's data was rendered with the id it was stored under.
    for (const e of stream) expect(e.data).toStartWith(`<li id="n-${e.id}">`);
    expect(await b.lastId()).toBe(streamIds.at(-1)!);
    await a.close();
    await b.close();
  });

  test("appends of one tick go in batches of consecutive ids; processes racing batch against batch store each event once, in increasing order", async () => {
    const prefix = `shared${++prefixes}:`;
    const logs = [0, 1, 2].map(
      () => new RedisEventLog({ url: redis.url, retention: { ...retention, maxEvents: 100_000 }, prefix }),
    );
    // Each process appends 1,200 events (more than one script's 500) in each of three ticks, all at once.
    const appending: Array<Promise<StoredEvent>> = [];
    for (let tick = 0; tick < 3; tick++) {
      for (const [p, log] of logs.entries()) {
        for (let i = 0; i < 1_200; i++)
          appending.push(
            log.append(event(`p${p} t${tick} e${i}`), (id) => `<li id="n-${id}">p${p} t${tick} e${i}</li>`),
          );
      }
      await Bun.sleep(0);
    }
    const appended = await Promise.all(appending);
    expect(new Set(appended.map((e) => e.id)).size).toBe(appended.length);
    const stream = await logs[0]!.readAfter(0, ["topic:shared"], 100_000);
    // Nothing was written twice: a batch that lost a race wrote nothing before taking new ids.
    expect(stream).toHaveLength(appended.length);
    expect(stream.map((e) => e.id)).toEqual(appended.map((e) => e.id).sort((x, y) => x - y));
    for (const e of stream) expect(e.data).toStartWith(`<li id="n-${e.id}">`);
    // A batch (one process's tick, 500 at a time) is written whole: consecutive ids, in the order appended.
    for (let from = 0; from < appended.length; from += 1_200) {
      for (const [start, end] of [
        [0, 500],
        [500, 1_000],
        [1_000, 1_200],
      ] as const) {
        const ids = appended.slice(from + start, from + end).map((e) => e.id);
        expect(ids).toEqual(ids.map((_, k) => ids[0]! + k));
      }
    }
    for (const log of logs) await log.close();
  }, 20_000);

  test("finds the latest events through its index, built once from a stream written without one", async () => {
    const prefix = `backfill${++prefixes}:`;
    const client = new Bun.RedisClient(redis.url);
    // A stream as an older herald wrote it: entries, no index.
    for (let id = 1; id <= 3; id++) {
      await client.send("XADD", [
        `${prefix}events`,
        `${id}-0`,
        "at",
        String(Date.now()),
        "event",
        "notification",
        "channels",
        JSON.stringify(id === 2 ? ["user:bob"] : ["everyone"]),
        "data",
        `old ${id}`,
      ]);
    }
    await client.send("SET", [`${prefix}event-id`, "3"]);
    const log = new RedisEventLog({ url: redis.url, retention, prefix });
    expect((await log.latest(["everyone", "user:bob"], "notification", 10)).map((e) => e.data)).toEqual([
      "old 3",
      "old 2",
      "old 1",
    ]);
    await log.append({ channels: ["user:bob"], event: "notification", data: "new 4", at: Date.now() });
    expect((await log.latest(["user:bob"], "notification", 10)).map((e) => e.data)).toEqual(["new 4", "old 2"]);
    expect(await log.ids(["everyone", "user:bob"], "notification")).toEqual([4, 3, 2, 1]);
    expect(await client.send("EXISTS", [`${prefix}indexed`])).toBe(1);
    // Unrelated events in between are not read: the index holds only this channel's ids.
    expect(await client.send("ZRANGE", [`${prefix}index:notification:user:bob`, "0", "-1"])).toEqual(["2", "4"]);
    client.close();
    await log.close();
  });

  test("scripts run by their SHA-1 are loaded again when Redis has forgotten them (SCRIPT FLUSH, a restart)", async () => {
    const log = open();
    await log.append(event("before"));
    const client = new RedisClient(redis.url);
    await client.send("SCRIPT", ["FLUSH"]);
    const after = await log.append(event("after"));
    expect((await log.latest(["topic:shared"], "notification", 10)).map((e) => e.data)).toEqual(["after", "before"]);
    await client.send("SCRIPT", ["FLUSH"]);
    expect((await log.latest(["topic:shared"], "notification", 1)).map((e) => e.id)).toEqual([after.id]);
    client.close();
    await log.close();
  });

  test("the entry id in Redis is the event's id", async () => {
    const log = open();
    const stored = await log.append(event("x"));
    expect(await log.get(stored.id)).toMatchObject({ id: stored.id, data: "x" });
    expect(await log.covers(await log.epoch(), stored.id - 1)).toBe(true);
    await log.close();
  });

  test("events and read marks survive a Redis restart", async () => {
    const prefix = `restart${++prefixes}:`;
    const log = new RedisEventLog({ url: redis.url, retention, prefix });
    for (let i = 1; i <= 3; i++) await log.append(event(`kept ${i}`));
    const marks = new RedisReadMarks({ url: redis.url, prefix });
    await marks.markRead("bob", 2);
    await marks.close();
    await log.close();
    await redis.stop();
    await redis.start();
    const again = new RedisEventLog({ url: redis.url, retention, prefix });
    expect((await again.readAfter(0, ["topic:shared"], 10)).map((e) => e.data)).toEqual(["kept 1", "kept 2", "kept 3"]);
    const marksAgain = new RedisReadMarks({ url: redis.url, prefix });
    expect([...(await marksAgain.readIds("bob", [1, 2, 3]))]).toEqual([2]);
    await marksAgain.close();
    expect((await again.append(event("next"))).id).toBe(4);
    await again.close();
  });

  test("while Redis is down an append fails at once instead of waiting, and works again once it is back", async () => {
    const log = open();
    await log.append(event("before"));
    await redis.stop();
    const failed = await log.append(event("during")).then(
      () => "stored",
      (error: unknown) => String(error),
    );
    expect(failed).not.toBe("stored");
    await redis.start();
    let after: string | undefined;
    for (let i = 0; i < 100 && after === undefined; i++) {
      after = await log.append(event("after")).then(
        (e) => e.data,
        async () => {
          await Bun.sleep(100);
          return undefined;
        },
      );
    }
    expect(after).toBe("after");
    expect((await log.readAfter(0, ["topic:shared"], 10)).map((e) => e.data)).toEqual(["before", "after"]);
    await log.close();
  }, 20_000);
});
