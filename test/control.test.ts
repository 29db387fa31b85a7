/**
 * `POST /api/clients/disconnect`: an admin or a publish token ends a user's or a topic's streams,
 * on every process; what the clients see is the end of their streams.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import type { RedisControl } from "../src/core/control.ts";
import { openStream, postForm, signIn, startTestHerald, type SseReader, type TestConfig } from "./helpers.ts";
import { redisAvailable, startRedis } from "./redis.ts";

const TOKEN = "control-token-0123456789";
const heralds: Herald[] = [];
const readers: SseReader[] = [];

afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  for (const herald of heralds.splice(0)) await herald.stop();
});

function start(overrides: TestConfig = {}): Herald {
  const herald = startTestHerald({ publishTokens: [TOKEN], groups: { admins: ["root"] }, ...overrides });
  heralds.push(herald);
  return herald;
}

async function stream(herald: Herald, query: string, cookie?: string): Promise<SseReader> {
  const reader = await openStream(herald, query, cookie);
  readers.push(reader);
  return reader;
}

function disconnect(
  herald: Herald,
  body: Record<string, string>,
  headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` },
) {
  return fetch(`${herald.url}/api/clients/disconnect`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

describe("POST /api/clients/disconnect", () => {
  test("a token ends a user's streams, and only theirs", async () => {
    const herald = start();
    const alice = await signIn(herald, "alice");
    const bob = await signIn(herald, "bob");
    const phone = await stream(herald, "", alice.cookie);
    const laptop = await stream(herald, "?topic=orders", alice.cookie);
    const bobs = await stream(herald, "", bob.cookie);
    const res = await disconnect(herald, { user: "Alice" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ disconnected: 2, everywhere: false });
    await phone.ended(3000);
    await laptop.ended(3000);
    expect(phone.done && laptop.done).toBe(true);
    await herald.hub.publishToEveryone({ event: "notification", data: "still here" });
    await bobs.until(() => bobs.events.some((e) => e.data === "still here"), "bob's event");
    expect(bobs.done).toBe(false);
  });

  test("an admin's session ends a topic's streams", async () => {
    const herald = start();
    const root = await signIn(herald, "root");
    const orders = await stream(herald, "?topic=orders");
    const other = await stream(herald, "?topic=market");
    const res = await postForm(herald, "/api/clients/disconnect", { topic: "orders" }, { session: root });
    expect(res.status).toBe(200);
    await orders.ended(3000);
    expect(orders.done).toBe(true);
    expect(other.done).toBe(false);
  });

  test("anyone else is refused, and bad input is a 400; no stream ends", async () => {
    const herald = start();
    const alice = await signIn(herald, "alice");
    const victim = await stream(herald, "", alice.cookie);
    const mallory = await signIn(herald, "mallory");
    expect((await disconnect(herald, { user: "alice" }, {})).status).toBe(401);
    expect((await disconnect(herald, { user: "alice" }, { cookie: mallory.cookie })).status).toBe(403);
    expect(
      (await disconnect(herald, { user: "alice" }, { authorization: "Bearer wrong-token-0123456789" })).status,
    ).toBe(401);
    for (const body of [{}, { user: "alice", topic: "orders" }, { user: "../x" }, { topic: "Bad Topic" }] as Record<
      string,
      string
    >[]) {
      expect((await disconnect(herald, body)).status).toBe(400);
    }
    await herald.hub.publishToUser("alice", { event: "notification", data: "still yours" });
    await victim.until(() => victim.events.length === 1, "alice's event");
    expect(victim.done).toBe(false);
  });

  test.if(redisAvailable())("with Redis, the streams on every process end", async () => {
    const redis = await startRedis();
    try {
      // Processes of one herald share their secret, so a session cookie counts on each.
      const shared = { eventLog: "redis" as const, redisUrl: redis.url, secret: "control-secret-0123456789" };
      const first = start(shared);
      const second = start(shared);
      const alice = await signIn(first, "alice");
      const there = await stream(second, "", alice.cookie);
      const here = await stream(first, "", alice.cookie);
      // The second process listens for orders once its subscription is made.
      await (second.ctx.control as RedisControl).listening;
      const res = await disconnect(first, { user: "alice" });
      expect(await res.json()).toEqual({ disconnected: 1, everywhere: true });
      await here.ended(3000);
      await there.ended(3000);
      expect(here.done && there.done).toBe(true);
    } finally {
      for (const herald of heralds.splice(0)) await herald.stop();
      await redis.destroy();
    }
  });
});
