/**
 * The shop's changes and their events are one transaction (the outbox): with Redis stopped, an
 * order is answered 200, the stock and the order are both there, and the events follow once Redis
 * is back; a herald killed in the middle of orders loses no stock.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Herald } from "../src/app.ts";
import { openStream, postForm, signIn, startTestHerald, type Session, type SseReader } from "./helpers.ts";
import { spawnHerald, type HeraldProcess } from "./process.ts";
import { redisAvailable, startRedis, type RedisServer } from "./redis.ts";

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function stream(
  herald: Herald | string,
  query: string,
  cookie?: string,
  headers: Record<string, string> = {},
): Promise<SseReader> {
  const reader = await openStream(herald, query, cookie, headers);
  cleanup.push(() => reader.close());
  return reader;
}

function quantityIn(row: string): number {
  return Number(/<td class="quantity">(\d+)<\/td>/.exec(row)?.[1]);
}

const run = redisAvailable();

describe.skipIf(!run)("with Redis stopped", () => {
  let redis: RedisServer;
  let prefixes = 0;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.destroy();
  });

  function start(orderStepMs: number): Herald {
    const herald = startTestHerald({
      eventLog: "redis",
      redisUrl: redis.url,
      redisPrefix: `outbox${++prefixes}:`,
      orderStepMs,
    });
    cleanup.push(() => herald.stop());
    return herald;
  }

  test("orders are answered 200 and keep their stock; their events are sent once Redis is back", async () => {
    const herald = start(60_000);
    const alice = await signIn(herald, "alice");
    const shop = await stream(herald, "?topic=inventory");
    const alices = await stream(herald, "?page=orders", alice.cookie);
    await redis.stop();
    try {
      // DK-606 starts at 15.
      for (let i = 0; i < 3; i++) {
        const res = await postForm(herald, "/orders", { sku: "DK-606", quantity: "5" }, { session: alice });
        expect(res.status).toBe(200);
        expect(await res.text()).toContain(`Order #${i + 1} placed: 5 × Laptop dock.`);
      }
      expect(herald.shop!.inventory.get("DK-606")!.quantity).toBe(0);
      expect(herald.shop!.orders.of("alice").map((o) => o.quantity)).toEqual([5, 5, 5]);
      // A change that cannot be made is still refused, and changes nothing.
      expect((await postForm(herald, "/orders", { sku: "DK-606", quantity: "1" }, { session: alice })).status).toBe(
        409,
      );
    } finally {
      await redis.start();
    }
    await shop.until(
      () => shop.events.filter((e) => e.event === "product").length === 3,
      "the three product rows",
      10_000,
    );
    expect(shop.events.filter((e) => e.event === "product").map((e) => quantityIn(e.data))).toEqual([10, 5, 0]);
    await alices.until(
      () => alices.events.filter((e) => e.event === "order-placed").length === 3,
      "three order-placed events",
      10_000,
    );
    expect(alices.events.filter((e) => e.event === "order-placed").at(-1)!.data).toContain('id="order-3"');
  }, 30_000);

  test("order steps that fall due while Redis is away are sent when it is back, in order", async () => {
    const herald = start(150);
    const alice = await signIn(herald, "alice");
    const alices = await stream(herald, "?page=orders", alice.cookie);
    expect((await postForm(herald, "/orders", { sku: "KB-101", quantity: "1" }, { session: alice })).status).toBe(200);
    await alices.until(() => alices.events.some((e) => e.event === "order-placed"), "order-placed");
    await redis.stop();
    try {
      // Every later step falls due meanwhile.
      await Bun.sleep(900);
      expect(herald.shop!.orders.get(1)!.step).toBe(3);
    } finally {
      await redis.start();
    }
    const status = () =>
      alices.events.filter((e) => e.event === "order-status").map((e) => /data-status="(\w+)"/.exec(e.data)?.[1]);
    await alices.until(() => status().length === 3, "three order-status events", 10_000);
    expect(status()).toEqual(["confirmed", "shipped", "delivered"]);
  }, 30_000);
});

describe("a herald killed in the middle of orders", () => {
  const running: HeraldProcess[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const herald of running.splice(0)) if (herald.proc.exitCode === null) await herald.kill("SIGKILL");
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  test("SIGKILL mid-order: every unit taken from stock is in an order, and after a restart the inventory stream ends at the stock", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "herald-outbox-"));
    dirs.push(dataDir);
    const env = {
      HERALD_DATA_DIR: dataDir,
      HERALD_PUBLISH_RATE_USER: "100000",
      HERALD_ORDER_STEP_MS: "60000",
      HERALD_REPLAY_MAX_ANONYMOUS: "100000",
    };
    const herald = await spawnHerald(env);
    running.push(herald);
    const site = { url: herald.url } as Herald;
    const buyers: Session[] = [];
    for (const name of ["ann", "ben", "cat", "dan", "eve", "fay", "gus", "hal"]) buyers.push(await signIn(site, name));
    // CB-404 starts at 120, MS-202 at 30. Four orders in flight per buyer, so that many are
    // between their first write and their last when the process dies.
    const initial: Record<string, number> = { "CB-404": 120, "MS-202": 30 };
    let stop = false;
    const loops = [...buyers, ...buyers, ...buyers, ...buyers].map(async (session, i) => {
      while (!stop) {
        const sku = i % 3 ? "CB-404" : "MS-202";
        const res = await postForm(site, "/orders", { sku, quantity: "1" }, { session }).catch(() => null);
        if (!res || res.status === 409) return;
      }
    });
    await Bun.sleep(300);
    await herald.kill("SIGKILL");
    stop = true;
    await Promise.all(loops);

    const db = new Database(join(dataDir, "shop.db"));
    const stock = Object.fromEntries(
      db
        .query<{ sku: string; quantity: number }, []>("SELECT sku, quantity FROM products")
        .all()
        .map((p) => [p.sku, p.quantity]),
    );
    const ordered = Object.fromEntries(
      db
        .query<{ sku: string; n: number }, []>("SELECT sku, sum(quantity) AS n FROM orders GROUP BY sku")
        .all()
        .map((o) => [o.sku, o.n]),
    );
    db.close();
    expect(ordered["CB-404"] ?? 0).toBeGreaterThan(0);
    for (const sku of Object.keys(initial))
      expect({ sku, lost: initial[sku]! - stock[sku]! - (ordered[sku] ?? 0) }).toEqual({ sku, lost: 0 });

    // Started again: what the killed process had not sent is sent, so the inventory's stream
    // (replayed from the start) ends at the stock each product has.
    const again = await spawnHerald(env);
    running.push(again);
    // The log's epoch, from a first stream's snapshot id, to resume from its very start.
    const probe = await stream(again.url, "?topic=inventory");
    await probe.until(() => probe.pageEvents.length > 0, "the snapshot");
    const epoch = probe.pageEvents[0]!.id!.split("-")[0];
    const shop = await stream(again.url, "?topic=inventory", undefined, { "last-event-id": `${epoch}-0` });
    const lastQuantity = (sku: string) => {
      const rows = shop.events.filter((e) => e.event === "product" && e.data.includes(`id="product-${sku}"`));
      return rows.length ? quantityIn(rows.at(-1)!.data) : initial[sku];
    };
    await shop.until(
      () => Object.keys(initial).every((sku) => lastQuantity(sku) === stock[sku]),
      "the last product rows to match the stock",
      10_000,
    );
  }, 30_000);
});
