import { afterEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { RateLimiter } from "../src/server/limits.ts";
import {
  eventually,
  openStream,
  postForm,
  signIn,
  startTestHerald,
  type SseReader,
  type TestConfig,
} from "./helpers.ts";

let herald: Herald | undefined;
const open: SseReader[] = [];

async function start(config: TestConfig): Promise<Herald> {
  herald = startTestHerald(config);
  return herald;
}

async function stream(h: Herald, query = "", cookie?: string): Promise<SseReader> {
  const reader = await openStream(h, query, cookie);
  open.push(reader);
  return reader;
}

function rawStream(h: Herald, query = "", cookie?: string): Promise<Response> {
  return fetch(`${h.url}/sse${query}`, { headers: { accept: "text/event-stream", ...(cookie ? { cookie } : {}) } });
}

afterEach(async () => {
  for (const reader of open.splice(0)) reader.close();
  await herald?.stop();
  herald = undefined;
});

describe("rate limiter", () => {
  test("allows a burst, then refills at the rate", () => {
    const limiter = new RateLimiter(2, 4);
    for (let i = 0; i < 4; i++) expect(limiter.take("ip", 1, 0)).toBe(0);
    expect(limiter.take("ip", 1, 0)).toBe(1);
    expect(limiter.take("other", 1, 0)).toBe(0);
    expect(limiter.take("ip", 1, 499)).toBe(1);
    expect(limiter.take("ip", 1, 500)).toBe(0);
    expect(limiter.take("ip", 1, 500)).toBe(1);
  });

  test("a cost takes several tokens at once, and a refusal takes none", () => {
    const limiter = new RateLimiter(1, 5);
    expect(limiter.take("t", 3, 0)).toBe(0);
    expect(limiter.take("t", 3, 0)).toBe(1);
    expect(limiter.take("t", 2, 0)).toBe(0);
    expect(limiter.take("t", 1, 0)).toBe(1);
  });

  test("forgets keys whose buckets are full again", () => {
    const limiter = new RateLimiter(1000, 1);
    for (let i = 0; i < 1500; i++) limiter.take(`k${i}`, 1, i * 10);
    expect(limiter.size).toBeLessThan(600);
  });
});

describe("stream limits", () => {
  test("HERALD_MAX_CLIENTS: 503 with Retry-After past the total, and a slot frees on close", async () => {
    const h = await start({ limits: { maxClients: 2 } });
    const first = await stream(h);
    await stream(h);
    const refused = await rawStream(h);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("30");
    expect(refused.headers.get("content-type")).toStartWith("text/event-stream");
    expect(await refused.text()).toBe(
      "retry: 30000\n: The server holds as many streams as it may; try again shortly.\n\n",
    );
    h.hub.publishToEveryone({ event: "notification", data: "still live" });
    expect((await first.event(1)).data).toBe("still live");
    first.close();
    await eventually(() => h.hub.clientCount === 1, "a free slot");
    await stream(h);
  });

  test("streams per user: 429 past the limit, for that user only, and their open streams keep receiving", async () => {
    const h = await start({ limits: { maxStreamsPerUser: 2 } });
    const alice = await signIn(h, "alice");
    const first = await stream(h, "", alice.cookie);
    await stream(h, "", alice.cookie);
    const refused = await rawStream(h, "", alice.cookie);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("30");
    expect(await refused.text()).toContain("You already have 2 streams open, the most one user may");
    await stream(h, "", (await signIn(h, "bob")).cookie);
    await stream(h);
    h.hub.publishToUser("alice", { event: "notification", data: "still yours" });
    expect((await first.event(1)).data).toBe("still yours");
  });

  test("new streams per address per second: 429 with Retry-After past the burst, open streams unharmed", async () => {
    const h = await start({ limits: { streamsPerIpPerS: 2 } });
    const results = [];
    const open = await stream(h);
    results.push(200);
    for (let i = 0; i < 5; i++) {
      const res = await rawStream(h);
      results.push(res.status);
      if (res.status === 200) await res.body!.cancel();
      else {
        expect(res.headers.get("retry-after")).toBe("1");
        expect(await res.text()).toContain("Too many new streams from your address; try again in 1 s.");
      }
    }
    expect(results).toEqual([200, 200, 200, 200, 429, 429]);
    h.hub.publishToEveryone({ event: "notification", data: "still live" });
    expect((await open.event(1)).data).toBe("still live");
  });

  test("behind a trusted proxy, the limit is per address the proxy added", async () => {
    const h = await start({ trustProxy: 1, limits: { streamsPerIpPerS: 1 } });
    // As nginx's $proxy_add_x_forwarded_for does: whatever the client sent, then the peer it saw.
    const from = (ip: string, sent = "") =>
      fetch(`${h.url}/sse`, { headers: { "x-forwarded-for": sent ? `${sent}, ${ip}` : ip } });
    for (const ip of ["198.51.100.1", "198.51.100.1", "198.51.100.2", "198.51.100.2"]) (await from(ip)).body!.cancel();
    expect((await from("198.51.100.1")).status).toBe(429);
    const other = await from("198.51.100.3");
    expect(other.status).toBe(200);
    await other.body!.cancel();
  });

  test("a client cannot escape the limit by writing its own X-Forwarded-For entries", async () => {
    const h = await start({ trustProxy: 1, limits: { streamsPerIpPerS: 1 } });
    const statuses = [];
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${h.url}/sse`, {
        headers: { "x-forwarded-for": `203.0.113.${i}, 10.9.8.${i}, 198.51.100.7` },
      });
      statuses.push(res.status);
      await res.body!.cancel();
    }
    expect(statuses).toEqual([200, 200, 429, 429, 429, 429]);
  });

  test("with two trusted proxies, the address is the one the outer proxy added", async () => {
    const h = await start({ trustProxy: 2, limits: { streamsPerIpPerS: 1 } });
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${h.url}/sse`, {
        headers: { "x-forwarded-for": `203.0.113.${i}, 198.51.100.9, 10.0.0.2` },
      });
      statuses.push(res.status);
      await res.body!.cancel();
    }
    expect(statuses).toEqual([200, 200, 429, 429]);
  });
});

describe("publish limits", () => {
  test("publishes per user: 429 with Retry-After past the burst, other users unaffected", async () => {
    const h = await start({ limits: { publishesPerUserPerS: 1 } });
    const alice = await signIn(h, "alice");
    const bob = await signIn(h, "bob");
    const reader = await stream(h, "", (await signIn(h, "carol")).cookie);
    const statuses = [];
    for (let i = 0; i < 3; i++)
      statuses.push(
        (await postForm(h, "/notify", { target: "user:carol", message: `m${i}` }, { session: alice })).status,
      );
    expect(statuses).toEqual([200, 200, 429]);
    const refused = await postForm(h, "/notify", { target: "user:carol", message: "again" }, { session: alice });
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(await refused.text()).toContain("Too many notifications sent in a short time; try again in 1 s.");
    expect((await postForm(h, "/notify", { target: "user:carol", message: "from bob" }, { session: bob })).status).toBe(
      200,
    );
    await reader.event(3);
    expect(reader.events.map((e) => /m\d|from bob/.exec(e.data)?.[0])).toEqual(["m0", "m1", "from bob"]);
  });

  test("publishes per token count each event of a batch", async () => {
    const token = "limited-token-0123456789";
    const h = await start({ publishTokens: [token], limits: { publishesPerTokenPerS: 2 } });
    const send = (count: number) =>
      fetch(`${h.url}/api/publish`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(Array.from({ length: count }, (_, i) => ({ target: "topic:t", message: `e${i}` }))),
      });
    expect((await send(3)).status).toBe(200);
    const refused = await send(2);
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(((await refused.json()) as { error: string }).error).toContain("Too many notifications");
    expect(h.hub.stats().published).toBe(3);
  });
});

describe("size limits", () => {
  test("a form body past HERALD_MAX_BODY_BYTES is a 413", async () => {
    const h = await start({ limits: { maxBodyBytes: 2048 } });
    const alice = await signIn(h, "alice");
    const bob = await stream(h, "", (await signIn(h, "bob")).cookie);
    const res = await postForm(
      h,
      "/notify",
      { target: "user:bob", message: "x", padding: "p".repeat(4000) },
      { session: alice },
    );
    expect(res.status).toBe(413);
    expect(await res.text()).toContain("the most this server takes is 2048 bytes");
    expect((await postForm(h, "/notify", { target: "user:bob", message: "small" }, { session: alice })).status).toBe(
      200,
    );
    expect((await bob.event(1)).data).toContain("small");
  });

  test("html past HERALD_MAX_HTML_BYTES and batches past HERALD_MAX_BATCH are 413s", async () => {
    const token = "size-token-0123456789abc";
    const h = await start({ publishTokens: [token], limits: { maxHtmlBytes: 100, maxBatch: 2 } });
    const send = (body: unknown) =>
      fetch(`${h.url}/api/publish`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    expect((await send({ target: "everyone", html: "é".repeat(51) })).status).toBe(413);
    expect((await send({ target: "everyone", html: "x".repeat(100) })).status).toBe(200);
    expect((await send([1, 2, 3].map(() => ({ target: "everyone", message: "x" })))).status).toBe(413);
    expect((await send({ targets: ["topic:a", "topic:b", "topic:c"], message: "x" })).status).toBe(413);
  });
});
