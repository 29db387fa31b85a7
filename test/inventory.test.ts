import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Herald } from "../src/app.ts";
import { perTestHerald, postForm, seq, signIn, visit } from "./helpers.ts";

const TOKEN = "inventory-token-0123456789";
let herald: Herald;
const { start, stream } = perTestHerald();

function quantityIn(row: string): number {
  return Number(/<td class="quantity">(\d+)<\/td>/.exec(row)?.[1]);
}

function api(sku: string, body: unknown, { token = TOKEN, type = "application/json" } = {}): Promise<Response> {
  return fetch(`${herald.url}/api/inventory/${sku}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": type },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

describe("inventory", () => {
  test("a sale below the threshold sends the row and a low-stock alert on topic inventory; a restock clears it", async () => {
    herald = start();
    const alice = await signIn(herald, "alice");
    const watcher = await stream("?topic=inventory");

    // KB-101 starts at 12 with threshold 5.
    const sold = await postForm(herald, "/inventory/KB-101", { action: "sell", amount: "8" }, { session: alice });
    expect(sold.status).toBe(200);
    const answer = await sold.text();
    expect(answer).toContain("Sold 8: Mechanical keyboard is at 4, <strong>below its threshold of 5</strong>");
    expect(answer).toContain('<tr id="product-KB-101" class="low" hx-swap-oob="true">');

    const row = await watcher.event(1);
    expect(row.event).toBe("product");
    expect(row.data).toContain('<tr id="product-KB-101" class="low" hx-swap-oob="true">');
    expect(quantityIn(row.data)).toBe(4);
    const alert = await watcher.event(2);
    expect(alert.event).toBe("low-stock");
    expect(alert.data).toContain('<li id="alert-KB-101" class="alert" data-sku="KB-101">');
    expect(alert.data).toContain("is at 4, below its threshold of 5");
    expect(seq(alert.id)).toBeGreaterThan(seq(row.id));

    const restocked = await postForm(
      herald,
      "/inventory/KB-101",
      { action: "restock", amount: "10" },
      { session: alice },
    );
    expect(restocked.status).toBe(200);
    const back = await watcher.event(3);
    expect(back.event).toBe("product");
    expect(quantityIn(back.data)).toBe(14);
    expect(back.data).toContain('class="ok"');
    const cleared = await watcher.event(4);
    expect(cleared.event).toBe("stock-ok");
    expect(cleared.data).toContain('<ul id="alerts" class="alerts" hx-swap-oob="true">');
    expect(cleared.data).not.toContain("alert-KB-101");
    // HP-505 was low from the start and still is.
    expect(cleared.data).toContain("alert-HP-505");
    expect(herald.shop!.inventory.get("KB-101")!.quantity).toBe(14);
  });

  test("a change that stays on the same side of the threshold sends only the row", async () => {
    herald = start();
    const alice = await signIn(herald, "alice");
    const watcher = await stream("?topic=inventory");
    await postForm(herald, "/inventory/MS-202", { action: "sell", amount: "1" }, { session: alice });
    await postForm(herald, "/inventory/MS-202", { action: "set", amount: "25" }, { session: alice });
    await watcher.event(2);
    await Bun.sleep(50);
    expect(watcher.events.map((e) => e.event)).toEqual(["product", "product"]);
    expect(watcher.events.map((e) => quantityIn(e.data))).toEqual([29, 25]);
  });

  test("a threshold raised above the quantity raises the alert, and lowered again clears it", async () => {
    herald = start();
    const alice = await signIn(herald, "alice");
    const watcher = await stream("?topic=inventory");
    await postForm(herald, "/inventory/DK-606", { action: "threshold", amount: "20" }, { session: alice });
    await postForm(herald, "/inventory/DK-606", { action: "threshold", amount: "15" }, { session: alice });
    await watcher.event(4);
    expect(watcher.events.map((e) => e.event)).toEqual(["product", "low-stock", "product", "stock-ok"]);
    expect(watcher.events[1]!.data).toContain("alert-DK-606");
    expect(watcher.events[3]!.data).not.toContain("alert-DK-606");
  });

  test("users watching a product get a notification when it runs low and when it is back; others do not", async () => {
    herald = start();
    const bob = await signIn(herald, "bob");
    const carol = await signIn(herald, "carol");
    const watch = await postForm(herald, "/inventory/MN-303/watch", { watch: "on" }, { session: bob });
    expect(watch.status).toBe(200);
    expect(await watch.text()).toContain("Watching ✓");
    expect([...herald.shop!.inventory.watchedBy("bob")]).toEqual(["MN-303"]);
    const bobs = await stream("", bob.cookie);
    const carols = await stream("", carol.cookie);

    // MN-303: 4 in stock, threshold 3.
    await postForm(herald, "/inventory/MN-303", { action: "sell", amount: "2" }, { session: carol });
    const low = await bobs.event(1);
    expect(low.event).toBe("notification");
    expect(low.data).toContain("Low stock: 27-inch monitor");
    expect(low.data).toContain("MN-303 is down to 2 (threshold 3).");
    expect(low.data).toContain("level-warning");
    await bobs.until(() => bobs.pageEvents.some((e) => e.event === "unread"), "bob's unread count");
    expect(bobs.pageEvents.find((e) => e.event === "unread")!.data).toContain(">1</span>");

    await postForm(herald, "/inventory/MN-303", { action: "restock", amount: "5" }, { session: carol });
    const ok = await bobs.event(2);
    expect(ok.data).toContain("Back in stock: 27-inch monitor");
    await Bun.sleep(50);
    expect(carols.events).toEqual([]);

    // Unwatched: no more notifications.
    await postForm(herald, "/inventory/MN-303/watch", { watch: "off" }, { session: bob });
    await postForm(herald, "/inventory/MN-303", { action: "set", amount: "0" }, { session: carol });
    await Bun.sleep(50);
    expect(bobs.events).toHaveLength(2);
  });

  test("works without JavaScript: the form posts, redirects, and the page shows the new state", async () => {
    herald = start();
    const alice = await signIn(herald, "alice");
    const res = await postForm(
      herald,
      "/inventory/CB-404",
      { action: "sell", amount: "100" },
      { session: alice, htmx: false },
    );
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/inventory");
    const page = await (await fetch(`${herald.url}/inventory`, { headers: { cookie: alice.cookie } })).text();
    const row = /<tr id="product-CB-404"[\s\S]*?<\/tr>/.exec(page)![0];
    expect(quantityIn(row)).toBe(20);
    expect(row).toContain('class="low"');
    // Rendered for this visitor, the forms carry the CSRF field, so they post without htmx.
    expect(row).toContain(`name="_csrf" value="${alice.csrf}"`);
    expect(page).toContain('<li id="alert-CB-404"');
    expect(page).toContain('sse-connect="/sse?page=inventory"');

    const watch = await postForm(herald, "/inventory/CB-404/watch", { watch: "on" }, { session: alice, htmx: false });
    expect(watch.status).toBe(303);
    const watching = await (await fetch(`${herald.url}/inventory`, { headers: { cookie: alice.cookie } })).text();
    expect(watching).toMatch(/<span>USB-C cable<\/span> <button class="on">Watching ✓<\/button>/);
  });

  test("refuses bad stock changes with a message, and changes nothing", async () => {
    herald = start();
    const alice = await signIn(herald, "alice");
    const anonymous = await visit(herald);
    const cases: Array<[Record<string, string>, string, number, string]> = [
      [{ action: "sell", amount: "13" }, "KB-101", 409, "Only 12 of Mechanical keyboard left"],
      [{ action: "sell", amount: "-1" }, "KB-101", 400, "The amount must be a whole number"],
      [{ action: "sell", amount: "1.5" }, "KB-101", 400, "The amount must be a whole number"],
      [{ action: "sell", amount: "" }, "KB-101", 400, "The amount must be a whole number"],
      [{ action: "explode", amount: "1" }, "KB-101", 400, "Choose what to do"],
      [{ action: "sell", amount: "1" }, "NOPE-1", 404, "There is no product with SKU &quot;NOPE-1&quot;."],
      [
        { action: "sell", amount: "1" },
        "%3Cscript%3E",
        404,
        "There is no product with SKU &quot;&lt;SCRIPT&gt;&quot;.",
      ],
    ];
    for (const [fields, sku, status, message] of cases) {
      const res = await postForm(herald, `/inventory/${sku}`, fields, { session: alice });
      expect(res.status).toBe(status);
      expect(await res.text()).toContain(message);
    }
    const signedOut = await postForm(
      herald,
      "/inventory/KB-101",
      { action: "sell", amount: "1" },
      { session: anonymous },
    );
    expect(signedOut.status).toBe(401);
    expect(await signedOut.text()).toContain("Sign in to change stock.");
    const forged = await postForm(
      herald,
      "/inventory/KB-101",
      { action: "sell", amount: "1", _csrf: "forged" },
      { session: alice },
    );
    expect(forged.status).toBe(403);
    expect(herald.shop!.inventory.get("KB-101")!.quantity).toBe(12);
  });

  test("a private inventory topic limits stock changes to those who may publish to it", async () => {
    herald = start({ privateTopics: ["inventory"], groups: { admins: ["root"] } });
    const alice = await signIn(herald, "alice");
    const root = await signIn(herald, "root");
    const refused = await postForm(herald, "/inventory/KB-101", { action: "sell", amount: "1" }, { session: alice });
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("You may not send to topic:inventory.");
    const allowed = await postForm(herald, "/inventory/KB-101", { action: "sell", amount: "1" }, { session: root });
    expect(allowed.status).toBe(200);
    expect(herald.shop!.inventory.get("KB-101")!.quantity).toBe(11);
  });

  test("a stream for the inventory page starts with a snapshot of every row and the alerts", async () => {
    herald = start();
    const reader = await stream("?page=inventory");
    await reader.until(() => reader.pageEvents.length > 0, "the snapshot");
    const snapshot = reader.pageEvents[0]!;
    expect(snapshot.event).toBe("snapshot");
    expect(snapshot.data).toContain('<tbody id="products" hx-swap-oob="innerHTML">');
    expect(snapshot.data.match(/<tr id="product-/g)).toHaveLength(6);
    expect(snapshot.data).toContain('<ul id="alerts" class="alerts" hx-swap-oob="true"><li id="alert-HP-505"');
    expect(herald.hub.subscriberCount("topic:inventory")).toBe(1);
  });

  test("stock survives a restart", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "herald-inventory-"));
    try {
      herald = start({ dataDir });
      const alice = await signIn(herald, "alice");
      await postForm(herald, "/inventory/KB-101", { action: "set", amount: "7" }, { session: alice });
      await herald.stop();
      herald = start({ dataDir });
      expect(herald.shop!.inventory.get("KB-101")!.quantity).toBe(7);
      expect(herald.shop!.inventory.all()).toHaveLength(6);
    } finally {
      await herald.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("POST /api/inventory/:sku", () => {
  test("a queue consumer reports stock with a token; the change is published like any other", async () => {
    herald = start({ publishTokens: [TOKEN] });
    const watcher = await stream("?topic=inventory");
    const res = await api("kb-101", { quantity: 2 });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      product: { sku: string; quantity: number };
      low: boolean;
      alert: string | null;
      ids: string[];
    };
    expect(body).toMatchObject({ product: { sku: "KB-101", quantity: 2, threshold: 5 }, low: true, alert: "raised" });
    expect(body.ids).toHaveLength(2);
    await watcher.event(2);
    expect(watcher.events.map((e) => [e.event, e.id])).toEqual([
      ["product", body.ids[0]],
      ["low-stock", body.ids[1]],
    ]);

    const delta = (await (await api("KB-101", { delta: 10, threshold: 3 })).json()) as {
      product: { quantity: number; threshold: number };
      alert: string;
    };
    expect(delta).toMatchObject({ product: { quantity: 12, threshold: 3 }, alert: "cleared" });
    await watcher.event(4);
    expect(watcher.events[3]!.event).toBe("stock-ok");
  });

  test("answers bad requests with JSON errors that say what is wrong, and changes nothing", async () => {
    herald = start({ publishTokens: [TOKEN] });
    const cases: Array<[Promise<Response>, number, string]> = [
      [api("KB-101", { quantity: 1 }, { token: "wrong-token-0123456789" }), 401, "That publish token is not valid."],
      [api("NOPE", { quantity: 1 }), 404, 'There is no product with SKU "NOPE".'],
      [api("KB-101", { delta: -13 }), 409, "Only 12 of Mechanical keyboard left"],
      [api("KB-101", { quantity: -1 }), 400, "quantity must be a whole number from 0"],
      [api("KB-101", { quantity: "many" }), 400, "quantity must be a whole number"],
      [api("KB-101", { threshold: 1.5 }), 400, "threshold must be a whole number"],
      [api("KB-101", { colour: "red" }), 400, 'Unknown field "colour"'],
      [api("KB-101", {}), 400, "Give quantity, delta or threshold."],
      [api("KB-101", [1, 2]), 400, "Send a JSON object"],
      [api("KB-101", "{not json"), 400, "not valid JSON"],
      [api("KB-101", "quantity=1", { type: "application/x-www-form-urlencoded" }), 415, "application/json"],
    ];
    for (const [pending, status, message] of cases) {
      const res = await pending;
      expect(res.status).toBe(status);
      expect(res.headers.get("content-type")).toContain("application/json");
      expect(((await res.json()) as { error: string }).error).toContain(message);
    }
    expect(herald.shop!.inventory.get("KB-101")!.quantity).toBe(12);
    const noToken = await fetch(`${herald.url}/api/inventory/KB-101`, {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    expect(noToken.status).toBe(401);
  });
});
