import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Channel } from "../src/core/channel.ts";
import {
  MemoryEventLog,
  RedisEventLog,
  SqliteEventLog,
  type EventLog,
  type NewEvent,
} from "../src/core/eventlog/index.ts";
import { MemoryReadMarks, RedisReadMarks, SqliteReadMarks, type ReadMarks } from "../src/core/read-marks.ts";
import { redisAvailable, startRedis, type RedisServer } from "./redis.ts";

const dirs: string[] = [];
const logs: EventLog[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "herald-log-"));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  for (const log of logs.splice(0)) await log.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const withRedis = redisAvailable();
let redis: RedisServer | undefined;
let prefixes = 0;

beforeAll(async () => {
  if (withRedis) redis = await startRedis();
});

afterAll(async () => {
  await redis?.destroy();
});

const retention = { maxEvents: 1000, maxAgeMs: 3_600_000 };
const backends: Array<[string, (r?: typeof retention) => EventLog]> = [
  ["memory", (r = retention) => new MemoryEventLog(r)],
  ["sqlite", (r = retention) => new SqliteEventLog(join(tempDir(), "herald.db"), { retention: r })],
  // Each test gets keys of its own on the one server.
  ...(withRedis
    ? [
        [
          "redis",
          (r = retention) => new RedisEventLog({ url: redis!.url, retention: r, prefix: `t${++prefixes}:` }),
        ] as [string, (r?: typeof retention) => EventLog],
      ]
    : []),
];

function event(channels: Channel[], data: string, at = Date.now(), name = "notification"): NewEvent {
  return { channels, event: name, data, at };
}

for (const [name, open] of backends) {
  describe(`${name} event log`, () => {
    function make(r?: typeof retention): EventLog {
      const log = open(r);
      logs.push(log);
      return log;
    }

    test("an event whose data fails to render fails alone; those appended with it are stored", async () => {
      const log = make();
      const outcomes = await Promise.allSettled([
        log.append(event(["topic:a"], ""), (id) => `first ${id}`),
        log.append(event(["topic:a"], ""), () => {
          throw new Error("render failed");
        }),
        log.append(event(["topic:a"], ""), (id) => `third ${id}`),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
      expect(String((outcomes[1] as PromiseRejectedResult).reason)).toContain("render failed");
      const stored = await log.readAfter(0, ["topic:a"], 10);
      expect(stored.map((e) => e.data)).toEqual(
        stored.map((e) => (e.data.startsWith("first") ? `first ${e.id}` : `third ${e.id}`)),
      );
      expect(stored.map((e) => e.data.split(" ")[0])).toEqual(["first", "third"]);
    });

    test("gives increasing ids from 1 and commits a batch together", async () => {
      const log = make();
      const [a, b] = await Promise.all([log.append(event(["topic:a"], "one")), log.append(event(["topic:b"], "two"))]);
      expect([a.id, b.id]).toEqual([1, 2]);
      expect(await log.lastId()).toBe(2);
      expect((await log.get(2))?.data).toBe("two");
    });

    test("renders data from the id when asked", async () => {
      const log = make();
      const stored = await log.append(event(["everyone"], ""), (id) => `<li id="n-${id}">`);
      expect(stored.data).toBe('<li id="n-1">');
      expect((await log.get(1))?.data).toBe('<li id="n-1">');
    });

    test("reads after an id, on the given channels only, in order, up to a limit", async () => {
      const log = make();
      for (let i = 1; i <= 10; i++)
        log.append(
          event([i % 2 ? "topic:odd" : "topic:even", ...(i === 4 ? (["everyone"] as Channel[]) : [])], `e${i}`),
        );
      await log.flush();
      expect((await log.readAfter(0, ["topic:odd"], 100)).map((e) => e.data)).toEqual(["e1", "e3", "e5", "e7", "e9"]);
      expect((await log.readAfter(3, ["topic:odd", "everyone"], 100)).map((e) => e.id)).toEqual([4, 5, 7, 9]);
      expect((await log.readAfter(0, ["topic:even", "everyone"], 100)).map((e) => e.id)).toEqual([2, 4, 6, 8, 10]);
      expect((await log.readAfter(0, ["topic:odd"], 2)).map((e) => e.id)).toEqual([1, 3]);
      expect(await log.readAfter(10, ["topic:odd"], 100)).toEqual([]);
      expect(await log.readAfter(0, ["topic:none"], 100)).toEqual([]);
      expect((await log.readAfter(1, ["topic:even"], 1))[0]).toMatchObject({
        id: 2,
        channels: ["topic:even"],
        event: "notification",
        data: "e2",
      });
    });

    test("finds the newest events of a name on any of the channels", async () => {
      const log = make();
      log.append(event(["user:bob"], "n1"));
      log.append(event(["user:bob"], "tick", Date.now(), "price"));
      log.append(event(["topic:x"], "n3"));
      log.append(event(["everyone"], "n4"));
      log.append(event(["user:bob", "everyone"], "n5"));
      await log.flush();
      expect((await log.latest(["user:bob", "everyone"], "notification", 10)).map((e) => e.data)).toEqual([
        "n5",
        "n4",
        "n1",
      ]);
      expect((await log.latest(["user:bob", "everyone"], "notification", 2)).map((e) => e.data)).toEqual(["n5", "n4"]);
      expect((await log.latest(["user:bob"], "price", 10)).map((e) => e.data)).toEqual(["tick"]);
    });

    test("finds a quiet channel's newest events among many of others, and stops at what retention dropped", async () => {
      const log = make({ maxEvents: 30, maxAgeMs: 3_600_000 });
      // 60 events: every tenth on topic:quiet, the rest on topic:busy; names alternate on busy.
      for (let i = 1; i <= 60; i++) {
        if (i % 10 === 0) log.append(event(["topic:quiet", "user:bob"], `quiet ${i}`));
        else log.append(event(["topic:busy"], `busy ${i}`, Date.now(), i % 2 ? "notification" : "product"));
      }
      await log.flush();
      await log.prune();
      // Retention kept the newest 30 (ids 31-60): quiet 40, 50, 60.
      expect((await log.latest(["topic:quiet"], "notification", 10)).map((e) => e.data)).toEqual([
        "quiet 60",
        "quiet 50",
        "quiet 40",
      ]);
      expect((await log.latest(["topic:quiet"], "notification", 10, 55)).map((e) => e.data)).toEqual([
        "quiet 50",
        "quiet 40",
      ]);
      expect((await log.latest(["topic:quiet", "topic:busy"], "notification", 4)).map((e) => e.id)).toEqual([
        60, 59, 57, 55,
      ]);
      expect((await log.latest(["topic:busy"], "product", 2)).map((e) => e.id)).toEqual([58, 56]);
      expect(await log.latest(["topic:none"], "notification", 10)).toEqual([]);
      // Each once though on two of bob's channels; newest first; above, up to and at most apply.
      expect(await log.ids(["user:bob", "topic:quiet"], "notification")).toEqual([60, 50, 40]);
      expect(await log.ids(["user:bob", "topic:quiet"], "notification", { above: 45 })).toEqual([60, 50]);
      expect(await log.ids(["user:bob", "topic:quiet"], "notification", { above: 40, upTo: 55, limit: 1 })).toEqual([
        50,
      ]);
    });

    test("covers ids it gave and still holds, not older or unknown ones", async () => {
      const log = make({ maxEvents: 5, maxAgeMs: 3_600_000 });
      for (let i = 0; i < 8; i++) log.append(event(["everyone"], `e${i}`));
      await log.flush();
      await log.prune();
      expect((await log.readAfter(0, ["everyone"], 100)).map((e) => e.id)).toEqual([4, 5, 6, 7, 8]);
      expect(await log.covers(await log.epoch(), 2)).toBe(false);
      expect(await log.covers(await log.epoch(), 3)).toBe(true);
      expect(await log.covers(await log.epoch(), 8)).toBe(true);
      expect(await log.covers(await log.epoch(), 9)).toBe(false);
      expect(await log.covers(await log.epoch(), Number.NaN)).toBe(false);
    });

    test("drops events older than the age limit", async () => {
      const log = make({ maxEvents: 100, maxAgeMs: 1000 });
      const now = Date.now();
      log.append(event(["everyone"], "old", now - 5000));
      log.append(event(["everyone"], "older too", now - 2000));
      log.append(event(["everyone"], "fresh", now));
      await log.flush();
      await log.prune(now);
      expect((await log.readAfter(0, ["everyone"], 10)).map((e) => e.data)).toEqual(["fresh"]);
      expect(await log.covers(await log.epoch(), 1)).toBe(false);
      expect(await log.covers(await log.epoch(), 2)).toBe(true);
    });
  });
}

const markStores: Array<[string, () => ReadMarks]> = [
  ["memory", () => new MemoryReadMarks()],
  ["sqlite", () => new SqliteReadMarks(join(tempDir(), "herald.db"))],
  ...(withRedis
    ? [["redis", () => new RedisReadMarks({ url: redis!.url, prefix: `m${++prefixes}:` })] as [string, () => ReadMarks]]
    : []),
];

for (const [name, open] of markStores) {
  test(`${name} read marks: per user, one at a time or all up to an id`, async () => {
    const marks = open();
    try {
      await marks.markRead("bob", 2);
      expect([...(await marks.readIds("bob", [1, 2, 3]))]).toEqual([2]);
      expect([...(await marks.readIds("carol", [1, 2, 3]))]).toEqual([]);
      expect(await marks.readUpTo("bob")).toBe(0);
      await marks.markRead("bob", 5);
      await marks.markAllRead("bob", 3);
      expect(await marks.readUpTo("bob")).toBe(3);
      expect([...(await marks.readIds("bob", [1, 2, 3, 4, 5]))].sort()).toEqual([1, 2, 3, 5]);
      // A lower watermark never lowers the one kept.
      await marks.markAllRead("bob", 1);
      expect(await marks.readUpTo("bob")).toBe(3);
    } finally {
      await marks.close();
    }
  });
}

describe("sqlite event log on disk", () => {
  test("keeps events, ids, read marks (their own store, in the same file) and what retention dropped across a reopen", async () => {
    const dir = tempDir();
    const path = join(dir, "herald.db");
    const first = new SqliteEventLog(path, { retention: { maxEvents: 3, maxAgeMs: 3_600_000 } });
    for (let i = 1; i <= 5; i++) first.append(event(["user:bob"], `n${i}`));
    await first.flush();
    await first.prune();
    const marks = new SqliteReadMarks(path);
    await marks.markRead("bob", 4);
    await marks.close();
    await first.close();

    const second = new SqliteEventLog(path, { retention: { maxEvents: 3, maxAgeMs: 3_600_000 } });
    logs.push(second);
    expect(await second.lastId()).toBe(5);
    expect(await second.covers(await second.epoch(), 1)).toBe(false);
    expect(await second.covers(await second.epoch(), 2)).toBe(true);
    expect((await second.readAfter(2, ["user:bob"], 10)).map((e) => e.data)).toEqual(["n3", "n4", "n5"]);
    expect((await second.append(event(["user:bob"], "n6"))).id).toBe(6);
    await second.flush();
    expect(await second.ids(["user:bob"], "notification")).toEqual([6, 5, 4, 3]);
    const again = new SqliteReadMarks(path);
    expect([...(await again.readIds("bob", [3, 4, 5, 6]))]).toEqual([4]);
    await again.close();
  });

  test("a commit of many events (several multi-row inserts and the rest one by one) stores each, whole, across a reopen", async () => {
    const path = join(tempDir(), "herald.db");
    const first = new SqliteEventLog(path, { retention: { maxEvents: 10_000, maxAgeMs: 3_600_000 } });
    const count = 64 * 3 + 7;
    const appended = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        first.append(event([i % 2 ? "topic:odd" : "topic:even"], `n${i + 1} \u00e9`)),
      ),
    );
    expect(appended.map((e) => e.id)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    await first.close();
    const second = new SqliteEventLog(path, { retention: { maxEvents: 10_000, maxAgeMs: 3_600_000 } });
    logs.push(second);
    expect(await second.lastId()).toBe(count);
    const odd = await second.readAfter(0, ["topic:odd"], 1000);
    expect(odd.map((e) => e.data)).toEqual(
      Array.from({ length: count }, (_, i) => i + 1)
        .filter((n) => n % 2 === 0)
        .map((n) => `n${n} \u00e9`),
    );
    expect(odd.every((e) => e.channels.length === 1 && e.channels[0] === "topic:odd")).toBe(true);
  });

  // Earlier versions kept the channel index on disk: with text keys, then with numbered names.
  const oldIndexes: Array<
    [string, string, (channel: string, id: number, name: string) => [string, Array<string | number>][]]
  > = [
    [
      "text keys",
      `CREATE TABLE event_channels (channel TEXT NOT NULL, event_id INTEGER NOT NULL, event TEXT NOT NULL, PRIMARY KEY (channel, event_id)) WITHOUT ROWID;
       CREATE INDEX event_channels_by_name ON event_channels (channel, event, event_id);`,
      (channel, id, name) => [
        ["INSERT INTO event_channels (channel, event_id, event) VALUES (?, ?, ?)", [channel, id, name]],
      ],
    ],
    [
      "numbered names",
      `CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
       CREATE TABLE event_channels (channel INTEGER NOT NULL, event_id INTEGER NOT NULL, event INTEGER NOT NULL, PRIMARY KEY (channel, event_id)) WITHOUT ROWID;
       CREATE INDEX event_channels_by_name ON event_channels (channel, event, event_id);`,
      (channel, id, name) => [
        ["INSERT OR IGNORE INTO names (name) VALUES (?)", [channel]],
        ["INSERT OR IGNORE INTO names (name) VALUES (?)", [name]],
        [
          "INSERT INTO event_channels SELECT c.id, ?, e.id FROM names c, names e WHERE c.name = ? AND e.name = ?",
          [id, channel, name],
        ],
      ],
    ],
  ];
  for (const [layout, schema, indexRow] of oldIndexes) {
    test(`a log written with its channel index on disk (${layout}, earlier builds) opens with the index rebuilt in memory, and drops the old tables`, async () => {
      const path = join(tempDir(), "herald.db");
      const old = new Database(path, { create: true, strict: true });
      old.exec(`
        CREATE TABLE events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, event TEXT NOT NULL, data TEXT NOT NULL, channels TEXT NOT NULL);
        CREATE INDEX events_at ON events (at);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        ${schema}
      `);
      const rows: Array<[number, string, string, string[]]> = [
        [1, "notification", "dropped by retention", ["user:bob"]],
        [2, "notification", "to bob", ["user:bob"]],
        [3, "product", "a row", ["topic:inventory"]],
        [4, "notification", "to both", ["user:bob", "topic:inventory"]],
      ];
      for (const [id, name, data, channels] of rows) {
        old.run("INSERT INTO events (id, at, event, data, channels) VALUES (?, ?, ?, ?, ?)", [
          id,
          Date.now(),
          name,
          data,
          JSON.stringify(channels),
        ]);
        for (const channel of channels) for (const [sql, values] of indexRow(channel, id, name)) old.run(sql, values);
      }
      old.run("DELETE FROM events WHERE id = 1");
      old.run("INSERT INTO meta (key, value) VALUES ('dropped_up_to', 1)");
      old.close();

      const log = new SqliteEventLog(path, { retention: { maxEvents: 100, maxAgeMs: 3_600_000 } });
      logs.push(log);
      expect(await log.lastId()).toBe(4);
      expect(await log.covers(await log.epoch(), 0)).toBe(false);
      expect((await log.readAfter(1, ["user:bob"], 10)).map((e) => e.data)).toEqual(["to bob", "to both"]);
      expect((await log.readAfter(1, ["topic:inventory"], 10)).map((e) => e.data)).toEqual(["a row", "to both"]);
      expect((await log.latest(["user:bob", "topic:inventory"], "notification", 10)).map((e) => e.id)).toEqual([4, 2]);
      expect((await log.latest(["topic:inventory"], "product", 10)).map((e) => e.data)).toEqual(["a row"]);
      expect(await log.ids(["user:bob"], "notification")).toEqual([4, 2]);
      await log.append(event(["user:bob"], "new"));
      await log.flush();
      expect((await log.readAfter(4, ["user:bob"], 10)).map((e) => e.data)).toEqual(["new"]);
      expect(await log.ids(["user:bob"], "notification")).toEqual([5, 4, 2]);
      const check = new Database(path, { readonly: true });
      expect(
        check
          .query("SELECT name FROM sqlite_master WHERE name IN ('event_channels', 'names', 'event_channels_by_name')")
          .all(),
      ).toEqual([]);
      check.close();
    });
  }

  test("an emptied log still remembers its ids, so old ids are not mistaken for new ones", async () => {
    const dir = tempDir();
    const path = join(dir, "herald.db");
    const first = new SqliteEventLog(path, { retention: { maxEvents: 1, maxAgeMs: 1 } });
    for (let i = 0; i < 3; i++) first.append(event(["everyone"], "x", Date.now() - 10_000));
    await first.flush();
    await first.prune();
    await first.close();
    const second = new SqliteEventLog(path, { retention: { maxEvents: 1, maxAgeMs: 1 } });
    logs.push(second);
    expect(await second.lastId()).toBe(3);
    expect(await second.covers(await second.epoch(), 3)).toBe(true);
    expect(await second.covers(await second.epoch(), 1)).toBe(false);
    expect((await second.append(event(["everyone"], "y"))).id).toBe(4);
  });
});
