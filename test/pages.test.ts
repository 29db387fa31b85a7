import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { eventually, openStream, signIn, startTestHerald } from "./helpers.ts";

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
    expect(page).toContain('<script src="/assets/htmx.js" defer></script>');
    expect(page).toContain('<script src="/assets/htmx-ext-sse.js" defer></script>');
    expect(page).toContain('hx-ext="sse" sse-connect="/sse"');
    expect(page).not.toContain('action="/notify"');
  });

  test("signed in: the inbox listening for `notification`, the send form and the chosen topics", async () => {
    const { cookie } = await signIn(herald, "alice");
    const page = await (await fetch(`${herald.url}/?topic=orders,%20market`, { headers: { cookie } })).text();
    expect(page).toContain('sse-connect="/sse?topic=orders,market"');
    expect(page).toContain('<ul id="notifications" sse-swap="notification" hx-swap="afterbegin">');
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
  for (const [path, type, marker] of [
    ["/assets/htmx.js", "text/javascript", "htmx"],
    ["/assets/htmx-ext-sse.js", "text/javascript", "sse-swap"],
    ["/assets/herald.css", "text/css", "#notifications"],
    ["/favicon.svg", "image/svg+xml", "<svg"],
  ] as const) {
    test(`${path} is served with an ETag, and revalidates with 304`, async () => {
      const res = await fetch(`${herald.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toStartWith(type);
      expect(res.headers.get("cache-control")).toContain("max-age=");
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
