/**
 * herald used as a library: the example app (`examples/library-app.ts`) mounts it in its own
 * `Bun.serve` beside its own routes; what a client of that app sees.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startExample, type ExampleApp } from "../examples/library-app.ts";
import { createHerald } from "../src/index.ts";
import { openStream, type SseReader } from "./helpers.ts";

let app: ExampleApp | undefined;
let dir: string | undefined;
const readers: SseReader[] = [];

afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  await app?.stop();
  app = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function start(): Promise<ExampleApp> {
  dir = mkdtempSync(join(tmpdir(), "herald-library-"));
  app = await startExample({ dataDir: dir });
  return app;
}

function release(version: string): Promise<Response> {
  return fetch(`${app!.url}/app/releases`, { method: "POST", body: new URLSearchParams({ version }) });
}

describe("an app that mounts herald as a library", () => {
  test("its own route publishes through herald's hub, and herald's stream delivers it", async () => {
    await start();
    const reader = await openStream(app!.url, "?topic=releases");
    readers.push(reader);
    const res = await release("1.2.3");
    expect(res.status).toBe(200);
    expect(((await res.json()) as { delivered: number }).delivered).toBe(1);
    const event = await reader.event(1);
    expect(event.event).toBe("release");
    expect(event.data).toBe('<li class="release">Version <strong>1.2.3</strong> is out.</li>');
  });

  test("its own page and herald's routes answer from the same server", async () => {
    await start();
    const page = await fetch(`${app!.url}/app`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('sse-connect="/sse?topic=releases"');
    expect((await fetch(`${app!.url}/assets/htmx.js`)).status).toBe(200);
    expect(((await (await fetch(`${app!.url}/healthz`)).json()) as { status: string }).status).toBe("ok");
    expect((await fetch(`${app!.url}/`)).status).toBe(200);
    // herald's own answers, also for paths that are nobody's.
    const missing = await fetch(`${app!.url}/nowhere`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-security-policy")).not.toBeNull();
  });

  test("with no demo shop: none of the shop's routes, and no shop.db", async () => {
    await start();
    for (const path of ["/inventory", "/orders", "/live"]) expect((await fetch(`${app!.url}${path}`)).status).toBe(404);
    expect(await Bun.file(join(dir!, "shop.db")).exists()).toBe(false);
    expect(await Bun.file(join(dir!, "herald.db")).exists()).toBe(true);
  });

  test("a bad release is the app's own 400, and nothing is published", async () => {
    await start();
    const res = await release("<script>");
    expect(res.status).toBe(400);
    expect(app!.herald.hub.stats().published).toBe(0);
  });

  test("stop() ends open streams: the client sees the end", async () => {
    await start();
    const reader = await openStream(app!.url, "?topic=releases");
    readers.push(reader);
    await app!.stop();
    await reader.ended(3000);
    expect(reader.done).toBe(true);
    app = undefined;
  });
});

describe("HERALD_DEMO=off", () => {
  test("serves no shop route, page or link, and creates no shop.db", async () => {
    const { startTestHerald } = await import("./helpers.ts");
    dir = mkdtempSync(join(tmpdir(), "herald-nodemo-"));
    const herald = startTestHerald({ demo: false, dataDir: dir, eventLog: "sqlite" });
    try {
      for (const path of ["/inventory", "/orders", "/live", "/api/inventory/KB-101"]) {
        expect((await fetch(`${herald.url}${path}`, { method: path.startsWith("/api") ? "POST" : "GET" })).status).toBe(
          404,
        );
      }
      const home = await (await fetch(`${herald.url}/`)).text();
      expect(home).not.toContain('href="/inventory"');
      expect((await fetch(`${herald.url}/sse?page=inventory`)).status).toBe(400);
      expect(await Bun.file(join(dir, "shop.db")).exists()).toBe(false);
      expect(herald.shop).toBeNull();
    } finally {
      await herald.stop();
    }
  });
});

describe("createHerald checks settings given in code as loadConfig checks variables", () => {
  for (const [what, options, message] of [
    ["a short publish token", { publishTokens: ["short"] }, "publishTokens: every token must be"],
    ["an unset token", { publishTokens: [undefined as unknown as string] }, "publishTokens: every token must be"],
    ["a short secret", { secret: "tiny" }, "secret must be at least 16 characters"],
    ["Redis without a URL", { eventLog: "redis" as const }, 'eventLog "redis" needs redisUrl'],
    ["a zero limit", { limits: { maxBatch: 0 } }, "limits.maxBatch must be a whole number from 1"],
  ] as Array<[string, Parameters<typeof createHerald>[0], string]>) {
    test(`${what} is refused at once, naming the option`, async () => {
      await expect(createHerald({ ...options, dataDir: mkdtempSync(join(tmpdir(), "herald-check-")) })).rejects.toThrow(
        message,
      );
    });
  }

  test("limits given in part keep the others' defaults", async () => {
    dir = mkdtempSync(join(tmpdir(), "herald-limits-"));
    const herald = await createHerald({ dataDir: dir, eventLog: "memory", logLevel: "off", limits: { maxBatch: 7 } });
    try {
      expect(herald.config.limits.maxBatch).toBe(7);
      expect(herald.config.limits.maxBodyBytes).toBe(256 * 1024);
    } finally {
      await herald.stop();
    }
  });
});
