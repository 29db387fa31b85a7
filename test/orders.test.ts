import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Herald } from "../src/app.ts";
import { perTestHerald, postForm, seq, signIn, visit } from "./helpers.ts";

let herald: Herald;
const { start, stream } = perTestHerald();

function statusOf(data: string, id: number): string | undefined {
  return new RegExp(`<li id="order-${id}" class="order step-(\\w+)"`).exec(data)?.[1];
}

describe("orders", () => {
  test("placing an order sends processing, confirmed, shipped and delivered, in order, to the buyer only", async () => {
    herald = start({ orderStepMs: 30 });
    const alice = await signIn(herald, "alice");
    const bob = await signIn(herald, "bob");
    const alices = await stream("?page=orders", alice.cookie);
    const bobs = await stream("?page=orders", bob.cookie);
    const anyone = await stream("?topic=orders");
    const shop = await stream("?topic=inventory");

    const res = await postForm(herald, "/orders", { sku: "KB-101", quantity: "2" }, { session: alice });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("Order #1 placed: 2 × Mechanical keyboard.");

    await alices.event(4, 3000);
    expect(alices.events.map((e) => e.event)).toEqual(["order-placed", "order-status", "order-status", "order-status"]);
    const placed = alices.events[0]!.data;
    expect(placed).toContain('<ol id="orders" hx-swap-oob="innerHTML">');
    expect(statusOf(placed, 1)).toBe("processing");
    expect(alices.events.slice(1).map((e) => statusOf(e.data, 1))).toEqual(["confirmed", "shipped", "delivered"]);
    expect(alices.events[3]!.data).toContain(
      '<li id="order-1" class="order step-delivered" data-status="delivered" hx-swap-oob="true">',
    );
    // Each step's time is on the timeline; delivered has all four.
    expect(alices.events[3]!.data.match(/<li class="done">/g)).toHaveLength(4);
    const ids = alices.events.map((e) => seq(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));

    await Bun.sleep(100);
    expect(bobs.events).toEqual([]);
    expect(anyone.events).toEqual([]);
    // The stock was taken: the inventory saw it.
    expect(shop.events.map((e) => e.event)).toEqual(["product"]);
    expect(herald.shop!.inventory.get("KB-101")!.quantity).toBe(10);
    expect(herald.shop!.orders.get(1)).toMatchObject({ userId: "alice", step: 3, nextAt: null });
  });

  test("the orders page shows the buyer's own orders, without JavaScript too", async () => {
    herald = start({ orderStepMs: 60_000 });
    const alice = await signIn(herald, "alice");
    const bob = await signIn(herald, "bob");
    const res = await postForm(herald, "/orders", { sku: "MS-202", quantity: "3" }, { session: alice, htmx: false });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/orders");
    const page = await (await fetch(`${herald.url}/orders`, { headers: { cookie: alice.cookie } })).text();
    expect(page).toContain('<li id="order-1" class="order step-processing"');
    expect(page).toContain("3 × Wireless mouse");
    expect(page).toContain('sse-connect="/sse?page=orders"');
    const bobsPage = await (await fetch(`${herald.url}/orders`, { headers: { cookie: bob.cookie } })).text();
    expect(bobsPage).not.toContain("order-1");
    const anonymous = await (await fetch(`${herald.url}/orders`)).text();
    expect(anonymous).toContain("Sign in</a> to place orders");
  });

  test("an order in flight carries on after a restart", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "herald-orders-"));
    try {
      herald = start({ dataDir, orderStepMs: 150 });
      const alice = await signIn(herald, "alice");
      await postForm(herald, "/orders", { sku: "DK-606", quantity: "1" }, { session: alice });
      await herald.stop();
      herald = start({ dataDir, orderStepMs: 150 });
      const alices = await stream("?page=orders", alice.cookie);
      await alices.until(() => alices.events.some((e) => statusOf(e.data, 1) === "delivered"), "delivery", 5000);
      expect(herald.shop!.orders.get(1)!.step).toBe(3);
    } finally {
      await herald.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("refuses bad orders with a message and takes no stock", async () => {
    herald = start({ orderStepMs: 60_000 });
    const alice = await signIn(herald, "alice");
    const cases: Array<[Record<string, string>, number, string]> = [
      [{ sku: "MN-303", quantity: "5" }, 409, "Only 4 of 27-inch monitor in stock; order fewer."],
      [{ sku: "MN-303", quantity: "0" }, 400, "Order between 1 and 100 items."],
      [{ sku: "MN-303", quantity: "101" }, 400, "Order between 1 and 100 items."],
      [{ sku: "MN-303", quantity: "two" }, 400, "The quantity must be a whole number."],
      [{ sku: "ZZ-1", quantity: "1" }, 404, "There is no product with SKU &quot;ZZ-1&quot;."],
    ];
    for (const [fields, status, message] of cases) {
      const res = await postForm(herald, "/orders", fields, { session: alice });
      expect(res.status).toBe(status);
      expect(await res.text()).toContain(message);
    }
    const anonymous = await postForm(
      herald,
      "/orders",
      { sku: "MN-303", quantity: "1" },
      { session: await visit(herald) },
    );
    expect(anonymous.status).toBe(401);
    expect(herald.shop!.inventory.get("MN-303")!.quantity).toBe(4);
    expect(herald.shop!.orders.of("alice")).toEqual([]);
  });

  test("a stream for the orders page starts with the buyer's orders", async () => {
    herald = start({ orderStepMs: 60_000 });
    const alice = await signIn(herald, "alice");
    await postForm(herald, "/orders", { sku: "CB-404", quantity: "4" }, { session: alice });
    const reader = await stream("?page=orders", alice.cookie);
    await reader.until(() => reader.pageEvents.length > 0, "the snapshot");
    expect(reader.pageEvents[0]!.data).toContain(
      '<ol id="orders" hx-swap-oob="innerHTML"><li id="order-1" class="order step-processing"',
    );
  });
});
