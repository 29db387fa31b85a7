import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  MemoryFollowedTopics,
  RedisFollowedTopics,
  SqliteFollowedTopics,
  type FollowedTopics,
} from "../src/server/followed-topics.ts";
import { redisAvailable, startRedis, type RedisServer } from "./redis.ts";

const dir = mkdtempSync(join(tmpdir(), "herald-followed-"));
let redis: RedisServer | null = null;
const withRedis = redisAvailable();

beforeAll(async () => {
  if (withRedis) redis = await startRedis();
});

afterAll(async () => {
  await redis?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const stores: Array<[string, () => FollowedTopics, boolean]> = [
  ["memory", () => new MemoryFollowedTopics(), true],
  ["sqlite", () => new SqliteFollowedTopics(join(dir, "herald.db")), true],
  ["redis", () => new RedisFollowedTopics(redis!.url, `t${Math.random()}:`), withRedis],
];

for (const [name, open, available] of stores) {
  describe.if(available)(`followed topics in ${name}`, () => {
    test("keeps each user's last choice, an empty one too, and knows who never chose", async () => {
      const store = open();
      expect(await store.get("alice")).toBeNull();
      await store.set("alice", ["orders", "market"]);
      await store.set("bob", ["inventory"]);
      expect(await store.get("alice")).toEqual(["orders", "market"]);
      await store.set("alice", []);
      expect(await store.get("alice")).toEqual([]);
      expect(await store.get("bob")).toEqual(["inventory"]);
      await store.close();
    });
  });
}
