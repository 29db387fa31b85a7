import { describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { Market } from "../src/shop/live.ts";
import { eventually, perTestHerald, postForm, signIn } from "./helpers.ts";

let herald: Herald;
const { start, stream } = perTestHerald();

describe("live streams", () => {
  test("market prices are made only while someone follows topic market", async () => {
    herald = start({ marketMs: 20 });
    await Bun.sleep(120);
    expect(herald.shop!.live.market.ticks).toBe(0);

    const reader = await stream("?topic=market");
    await reader.event(2);
    const tick = reader.events[0]!;
    expect(tick.event).toBe("market");
    expect(tick.data.match(/<tr data-symbol="/g)).toHaveLength(5);
    expect(tick.data).toMatch(/<td class="price">\d+\.\d\d<\/td>/);
    expect(herald.shop!.live.market.ticks).toBeGreaterThanOrEqual(2);

    reader.close();
    await eventually(() => herald.hub.subscriberCount("topic:market") === 0, "the stream to leave");
    const ticks = herald.shop!.live.market.ticks;
    await Bun.sleep(120);
    expect(herald.shop!.live.market.ticks).toBe(ticks);
  });

  test("prices walk at most 1.5% a step and never reach zero", () => {
    let n = 0;
    const values = [0, 1, 0.5];
    const market = new Market(() => values[n++ % values.length]!);
    const before = market.quotes.map((q) => q.price);
    market.tick();
    expect(market.quotes[0]!.change).toBe(-1.5);
    expect(market.quotes[0]!.price).toBeCloseTo(before[0]! * 0.985, 1);
    expect(market.quotes[1]!.change).toBe(1.5);
    expect(market.quotes[2]!.change).toBe(0);
    for (let i = 0; i < 2000; i++) market.tick();
    expect(market.quotes.every((q) => q.price >= 0.01)).toBe(true);
  });

  test("prices pushed one way every step stay within a few times their opening price", () => {
    // A plain random walk pushed up 1.5% a step would be 1.015^10,000 times its start.
    for (const push of [1, 0]) {
      const market = new Market(() => push);
      const opening = market.quotes.map((q) => q.price);
      for (let i = 0; i < 10_000; i++) market.tick();
      market.quotes.forEach((quote, i) => {
        const ratio = quote.price / opening[i]!;
        if (push === 1) expect(ratio).toBeGreaterThan(3);
        if (push === 1) expect(ratio).toBeLessThan(Math.exp(1.5) * 1.01);
        if (push === 0) expect(ratio).toBeLessThan(1 / 3);
        if (push === 0) expect(ratio).toBeGreaterThan(Math.exp(-1.5) * 0.99);
      });
    }
  });

  test("metrics carry this process's real figures", async () => {
    herald = start({ metricsMs: 30 });
    const other = await stream("?topic=orders");
    const reader = await stream("?topic=metrics");
    await herald.hub.publishToTopic("orders", { event: "notification", data: "x" });
    await other.event(1);
    await reader.event(2);
    const figures = reader.events[1]!.data;
    expect(reader.events[1]!.event).toBe("metrics");
    expect(Number(/<dd id="metrics-streams">(\d+)<\/dd>/.exec(figures)?.[1])).toBe(2);
    const rssMb = Number(/<dd id="metrics-rss">([\d.]+) MB<\/dd>/.exec(figures)?.[1]);
    const actualMb = process.memoryUsage().rss / 1024 / 1024;
    expect(Math.abs(rssMb - actualMb) / actualMb).toBeLessThan(0.25);
    expect(figures).toMatch(/<dt>CPU<\/dt><dd>[\d.]+%<\/dd>/);
  });

  test("the live page follows market, metrics and notifications, and starts with all three", async () => {
    herald = start();
    const alice = await signIn(herald, "alice");
    const page = await (await fetch(`${herald.url}/live`, { headers: { cookie: alice.cookie } })).text();
    expect(page).toContain('sse-connect="/sse?page=live"');
    expect(page).toContain('<div id="market" sse-swap="market" hx-swap="innerHTML">');
    expect(page).toContain('<tr data-symbol="ACME">');
    expect(page).toContain('<div id="metrics" sse-swap="metrics" hx-swap="innerHTML">');

    const reader = await stream("?page=live", alice.cookie);
    await reader.until(() => reader.pageEvents.length > 0, "the snapshot");
    const snapshot = reader.pageEvents[0]!.data;
    for (const region of [
      '<div id="market" hx-swap-oob="innerHTML">',
      '<div id="metrics" hx-swap-oob="innerHTML">',
      '<ul id="notifications" hx-swap-oob="innerHTML">',
    ]) {
      expect(snapshot).toContain(region);
    }
    for (const topic of ["market", "metrics", "notifications"])
      expect(herald.hub.subscriberCount(`topic:${topic}`)).toBe(1);

    await postForm(
      herald,
      "/notify",
      { target: "topic:notifications", message: "Deploy finished" },
      { session: alice },
    );
    const note = await reader.event(1);
    expect(note.event).toBe("notification");
    expect(note.data).toContain("Deploy finished");
  });
});
