import { describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { loadConfig } from "../src/server/config.ts";
import { HeraldError } from "../src/core/errors.ts";
import { idsOf, perTestHerald, postForm, signIn } from "./helpers.ts";

const HTMX4 = { "hx-request": "true" };
let herald: Herald;
const { start, stream } = perTestHerald();

describe("streams for htmx 4", () => {
  test("get the events their page shows as unnamed out-of-band messages; htmx 2 streams get the same events named", async () => {
    herald = start({ retryMs: 1234 });
    const alice = await signIn(herald, "alice");
    const four = await stream("", alice.cookie, HTMX4);
    const two = await stream("", alice.cookie);
    await four.until(() => four.events.length > 0, "the snapshot");
    // The snapshot: unnamed, already out of band, and carrying retry: (htmx 4 ignores a bare retry: frame).
    expect(four.events[0]!.event).toBe("message");
    expect(four.events[0]!.data).toStartWith('<ul id="notifications" hx-swap-oob="innerHTML">');
    expect(four.raw).toContain(`id: ${(await idsOf(herald))(0)}\nretry: 1234\ndata: <ul id="notifications"`);

    await postForm(herald, "/notify", { target: "user:alice", message: "hi <b>there</b>" }, { session: alice });
    await four.until(() => four.events.length >= 3, "the notification and the unread count");
    const [, note, unread] = four.events;
    expect(note!.event).toBe("message");
    expect(note!.data).toStartWith('<div hx-swap-oob="afterbegin:#notifications"><li id="n-1" class="notification');
    expect(note!.data).toEndWith("</li></div>");
    expect(note!.data).toContain("hi &lt;b&gt;there&lt;/b&gt;");
    expect(note!.id).toBe((await idsOf(herald))(1));
    expect(unread!.data).toBe('<span id="unread-count" class="unread-count" hx-swap-oob="true">1</span>');

    await two.event(1);
    expect(two.events[0]).toMatchObject({ event: "notification", id: (await idsOf(herald))(1) });
    expect(two.events[0]!.data).toStartWith('<li id="n-1" class="notification');
    expect(two.raw).not.toContain('hx-swap-oob="afterbegin');
  });

  test("events their page does not show keep their names (htmx 4 makes them DOM events)", async () => {
    herald = start({ publishTokens: ["htmx-token-0123456789"] });
    const four = await stream("?topic=prices", undefined, HTMX4);
    await fetch(`${herald.url}/api/publish`, {
      method: "POST",
      headers: { authorization: "Bearer htmx-token-0123456789", "content-type": "application/json" },
      body: JSON.stringify({ target: "topic:prices", event: "price", html: "<b>42</b>" }),
    });
    await four.until(() => four.events.some((e) => e.event === "price"), "the price event");
    expect(four.events.find((e) => e.event === "price")!.data).toBe("<b>42</b>");
  });

  test("each page frames its own regions: the live page's prices go into #market", async () => {
    herald = start({ marketMs: 20 });
    const four = await stream("?page=live", undefined, HTMX4);
    await four.until(() => four.events.length >= 2, "a price tick");
    const tick = four.events[1]!;
    expect(tick.event).toBe("message");
    expect(tick.data).toStartWith('<div hx-swap-oob="innerHTML:#market"><table class="quotes">');
  });

  test("a resumed stream replays in its page's framing", async () => {
    herald = start();
    const alice = await signIn(herald, "alice");
    for (const message of ["one", "two"])
      await postForm(herald, "/notify", { target: "user:alice", message }, { session: alice });
    const id = await idsOf(herald);
    const four = await stream("", alice.cookie, { ...HTMX4, "last-event-id": id(0) });
    await four.until(() => four.events.length >= 2, "the replay");
    expect(four.events.map((e) => [e.event, e.id])).toEqual([
      ["message", id(1)],
      ["message", id(2)],
    ]);
    expect(four.events[1]!.data).toStartWith('<div hx-swap-oob="afterbegin:#notifications"><li id="n-2"');
  });

  test("a refusal is an event stream that tells htmx 4 to stop when it is final", async () => {
    herald = start({ anonymous: false });
    const res = await fetch(`${herald.url}/sse`, { headers: HTMX4 });
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(await res.text()).toContain("event: close\ndata: Sign in to open a stream.\n\n");
  });
});

describe("pages for htmx 4", () => {
  test("?htmx=4 renders a page for htmx 4 and its hx-sse, and links keep the choice", async () => {
    herald = start();
    const alice = await signIn(herald, "alice");
    const page = await (await fetch(`${herald.url}/?htmx=4`, { headers: { cookie: alice.cookie } })).text();
    expect(page).toContain('<script src="/assets/htmx4.js"></script>\n<script src="/assets/htmx4-sse.js"></script>');
    expect(page).not.toContain("htmx-ext-sse");
    expect(page).toContain(`hx-headers:inherited="{&quot;X-CSRF-Token&quot;:&quot;${alice.csrf}&quot;}"`);
    expect(page).toContain(
      '<section class="card" id="inbox" hx-sse:connect="/sse" hx-sse:close="close" hx-swap="none">',
    );
    expect(page).not.toContain("sse-swap");
    expect(page).toContain('<a href="/inventory?htmx=4">Inventory</a>');
    for (const path of ["/inventory?htmx=4", "/live?htmx=4", "/orders?htmx=4"]) {
      const other = await (await fetch(`${herald.url}${path}`, { headers: { cookie: alice.cookie } })).text();
      expect(other).toContain("hx-sse:connect=");
      expect(other).not.toContain("sse-swap");
    }
    for (const asset of ["/assets/htmx4.js", "/assets/htmx4-sse.js"]) {
      const res = await fetch(`${herald.url}${asset}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain("htmx");
    }
    const bad = await fetch(`${herald.url}/live?htmx=3`);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("htmx=3 is not a version herald serves pages for: use 2 or 4.");
  });

  test("HERALD_HTMX=4 makes htmx 4 the default, and ?htmx=2 still gives htmx 2", async () => {
    expect(loadConfig({ HERALD_HTMX: "4" }).htmx).toBe(4);
    expect(() => loadConfig({ HERALD_HTMX: "3" })).toThrow(HeraldError);
    herald = start({ htmx: 4 });
    expect(await (await fetch(`${herald.url}/`)).text()).toContain("/assets/htmx4.js");
    const two = await (await fetch(`${herald.url}/?htmx=2`)).text();
    expect(two).toContain('<script src="/assets/htmx.js" defer></script>');
    expect(two).toContain('<a href="/live?htmx=2">Live</a>');
  });

  test("the embed fragment for htmx 4 connects from the list, with the page's cookies", async () => {
    herald = start({ publicUrl: new URL("https://notify.example") });
    const fragment = await (await fetch(`${herald.url}/embed/orders?htmx=4`)).text();
    expect(fragment).toContain(
      '<ul class="herald-feed" hx-sse:connect="https://notify.example/sse?page=embed&amp;topic=orders" hx-sse:close="close" hx-swap="afterbegin" hx-config="{&quot;credentials&quot;:&quot;include&quot;}">',
    );
    // Its notifications come unnamed and unwrapped, for the list's own afterbegin.
    const four = await stream("?page=embed&topic=orders", undefined, HTMX4);
    await herald.hub.publishToTopic("orders", { event: "notification", data: "<li>order 1</li>" });
    await four.until(() => four.events.some((e) => e.data === "<li>order 1</li>"), "the notification");
    expect(four.events.find((e) => e.data === "<li>order 1</li>")!.event).toBe("message");
  });

  test("the monitor's stream is for admins only", async () => {
    herald = start({ groups: { admins: ["root"] } });
    const alice = await signIn(herald, "alice");
    const root = await signIn(herald, "root");
    expect((await fetch(`${herald.url}/sse?page=monitor`, { headers: { cookie: alice.cookie } })).status).toBe(403);
    expect((await fetch(`${herald.url}/sse?page=monitor`)).status).toBe(401);
    const reader = await stream("?page=monitor", root.cookie);
    await reader.until(() => reader.pageEvents.length > 0, "the snapshot");
    expect(reader.pageEvents[0]!.data).toStartWith(
      '<div id="monitor-figures" hx-swap-oob="innerHTML"><dl class="figures">',
    );
  });
});
