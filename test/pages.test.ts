import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { eventually, openStream, postForm, signIn, startTestHerald, type SseReader } from "./helpers.ts";

let herald: Herald;

beforeEach(() => {
  herald = startTestHerald();
});

afterEach(async () => {
  await herald.stop();
});

describe("home page", () => {
  test("anonymous: the sign-in form, and a live list on everyone", async () => {
    const res = await fetch(`${herald.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const page = await res.text();
    expect(page).toContain('<form method="post" action="/login">');
    // herald.js between htmx and the extension, which takes its createEventSource when defined.
    expect(page).toContain(
      '<script src="/assets/htmx.js" defer></script>\n<script src="/assets/herald.js" defer></script>\n<script src="/assets/htmx-ext-sse.js" defer></script>',
    );
    expect(page).toContain('hx-ext="sse" sse-connect="/sse"');
    expect(page).toContain(
      '<p id="connection" class="connection" role="status" aria-live="polite" data-retry-ms="3000" hidden></p>',
    );
    expect(page).not.toContain('action="/notify"');
  });

  test("signed in: the inbox listening for `notification`, the send form and the chosen topics", async () => {
    const { cookie } = await signIn(herald, "alice");
    const page = await (await fetch(`${herald.url}/?topic=orders,%20market`, { headers: { cookie } })).text();
    expect(page).toContain('sse-connect="/sse?topic=orders,market"');
    expect(page).toContain('<ul id="notifications" class="marks-read" sse-swap="notification" hx-swap="afterbegin">');
    expect(page).toContain('hx-post="/notify" hx-target="#send-status"');
    expect(page).toContain('action="/notify"');
    expect(page).toContain('<input name="topic" value="orders, market"');
    expect(page).toContain("<code>topic:orders</code>");
  });

  test("the page's stream URL opens a stream on the same topics", async () => {
    const { cookie } = await signIn(herald, "alice");
    const page = await (await fetch(`${herald.url}/?topic=orders&topic=market`, { headers: { cookie } })).text();
    const url = /sse-connect="([^"]+)"/.exec(page)![1]!;
    const reader = await openStream(herald, url.slice("/sse".length), cookie);
    await eventually(() => herald.hub.clientCount === 1, "one stream");
    expect(herald.hub.subscriberCount("topic:orders")).toBe(1);
    expect(herald.hub.subscriberCount("topic:market")).toBe(1);
    expect(herald.hub.subscriberCount("user:alice")).toBe(1);
    reader.close();
  });

  test("a bad topic in the page URL is a 400 page, escaped", async () => {
    const res = await fetch(`${herald.url}/?topic=%3Cscript%3E`);
    expect(res.status).toBe(400);
    const page = await res.text();
    expect(page).toContain("&quot;&lt;script&gt;&quot; is not a valid topic name");
    expect(page).not.toContain("<script>");
  });
});

describe("assets", () => {
  // herald's own files are revalidated at each use, so that a page script and a SharedWorker
  // script of different deploys never meet; the packages' files may be kept for an hour.
  const own = "no-cache";
  const kept = "public, max-age=3600, must-revalidate";
  for (const [path, type, marker, cache] of [
    ["/assets/htmx.js", "text/javascript", "htmx", kept],
    ["/assets/htmx-ext-sse.js", "text/javascript", "sse-swap", kept],
    ["/assets/htmx4.js", "text/javascript", "htmx", kept],
    ["/assets/htmx4-sse.js", "text/javascript", "hx-sse", kept],
    ["/assets/herald.css", "text/css", "#notifications", own],
    ["/assets/herald.js", "text/javascript", "createEventSource", own],
    ["/assets/herald-worker.js", "text/javascript", "onconnect", own],
    ["/favicon.svg", "image/svg+xml", "<svg", own],
  ] as const) {
    test(`${path} is served with an ETag and \`${cache}\`, and revalidates with 304`, async () => {
      const res = await fetch(`${herald.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toStartWith(type);
      expect(res.headers.get("cache-control")).toBe(cache);
      expect(await res.text()).toContain(marker);
      const etag = res.headers.get("etag")!;
      expect(etag).toMatch(/^"[0-9a-z]+"$/);
      const again = await fetch(`${herald.url}${path}`, { headers: { "if-none-match": etag } });
      expect(again.status).toBe(304);
      expect(await again.text()).toBe("");
    });
  }

  test("htmx is the 2.0.x build from node_modules", async () => {
    const served = await (await fetch(`${herald.url}/assets/htmx.js`)).text();
    const file = await Bun.file(Bun.resolveSync("htmx.org/dist/htmx.min.js", import.meta.dir)).text();
    expect(served).toBe(file);
    expect(served).toContain('version:"2.0.');
  });
});

describe("GET /healthz", () => {
  test("reports status, clients, uptime and channels", async () => {
    const reader = await openStream(herald, "?topic=a");
    await eventually(() => herald.hub.clientCount === 1, "one stream");
    const res = await fetch(`${herald.url}/healthz`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toEqual({ status: "ok", clients: 1, uptime_s: expect.any(Number), channels: 2, pid: process.pid });
    reader.close();
  });
});

describe("unknown routes", () => {
  test("a 404 page that names the path, escaped", async () => {
    const res = await fetch(`${herald.url}/nope%3Cb%3E`);
    expect(res.status).toBe(404);
    const body = await res.text();
    expect(body).toContain("There is no page at /nope%3Cb%3E.");
  });

  test("a known path with the wrong method is a 405 naming the allowed one", async () => {
    const res = await fetch(`${herald.url}/notify`);
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect(await res.text()).toContain("/notify takes POST, not GET.");
  });
});

describe("every live page", () => {
  /** The ids of the elements a fragment replaces out of band. */
  function oobTargets(fragment: string): string[] {
    return [...fragment.matchAll(/<[a-z]+\b[^>]*\bhx-swap-oob="[^"]*"[^>]*>/g)].map(
      (tag) => /\bid="([^"]+)"/.exec(tag[0])?.[1] ?? "(no id)",
    );
  }

  test("its snapshot and the events it swaps replace only elements that page has", async () => {
    await herald.stop();
    herald = startTestHerald({ orderStepMs: 20, marketMs: 20, metricsMs: 20 });
    const alice = await signIn(herald, "alice");
    const pages: Array<{ path: string; html: string; swaps: Set<string>; reader: SseReader }> = [];
    for (const path of ["/", "/inventory", "/live", "/orders"]) {
      const html = await (await fetch(`${herald.url}${path}`, { headers: { cookie: alice.cookie } })).text();
      const connect = /sse-connect="\/sse([^"]*)"/.exec(html)![1]!.replaceAll("&amp;", "&");
      const swaps = new Set([...html.matchAll(/sse-swap="([^"]+)"/g)].flatMap((m) => m[1]!.split(",")));
      pages.push({ path, html, swaps, reader: await openStream(herald, connect, alice.cookie) });
    }
    try {
      // Something for each page: a notification, a stock change that raises an alert, an order.
      await postForm(herald, "/notify", { target: "topic:notifications", message: "hello" }, { session: alice });
      await postForm(herald, "/notify", { target: "user:alice", message: "to me" }, { session: alice });
      await postForm(herald, "/inventory/KB-101", { action: "sell", amount: "10" }, { session: alice });
      await postForm(herald, "/orders", { sku: "MS-202", quantity: "1" }, { session: alice });
      const orders = pages[3]!.reader;
      await orders.until(
        () => orders.events.filter((e) => e.event === "order-status").length === 3,
        "the order's steps",
        3000,
      );
      await eventually(
        () =>
          pages[2]!.reader.events.some((e) => e.event === "market") &&
          pages[2]!.reader.events.some((e) => e.event === "metrics"),
        "market and metrics",
      );

      for (const { path, html, swaps, reader } of pages) {
        const received = [...reader.pageEvents, ...reader.events];
        expect(received[0]!.event).toBe("snapshot");
        // Events the page does not swap (a user's order steps on the home page, say) are dropped by htmx-ext-sse.
        for (const event of received.filter((e) => swaps.has(e.event))) {
          for (const id of oobTargets(event.data)) {
            // htmx logs an error for an out-of-band target it cannot find.
            // (An order's card arrives with the order-placed list before its steps replace it.)
            expect({
              path,
              event: event.event,
              id,
              onPage: html.includes(`id="${id}"`) || id.startsWith("order-"),
            }).toEqual({ path, event: event.event, id, onPage: true });
          }
        }
      }
      const swapped = (i: number) =>
        new Set(pages[i]!.reader.events.filter((e) => pages[i]!.swaps.has(e.event)).map((e) => e.event));
      expect([...swapped(0)].sort()).toEqual(["notification"]);
      expect([...swapped(1)].sort()).toEqual(["low-stock", "product"]);
      expect([...swapped(2)].sort()).toEqual(["market", "metrics", "notification"]);
      expect([...swapped(3)].sort()).toEqual(["order-placed", "order-status"]);
    } finally {
      for (const { reader } of pages) reader.close();
    }
  });
});
