/**
 * The data directory's disk runs full (a small tmpfs, filled to the last byte), its event log is
 * damaged, or its WAL outlives it: herald keeps serving, answers what it cannot store with 507,
 * and never gives an id twice.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Herald } from "../src/app.ts";
import { isDiskFull } from "../src/core/errors.ts";
import { openStream, postForm, seq, signIn, startTestHerald, type SseReader } from "./helpers.ts";
import { apiPublish, spawnHerald, type HeraldProcess } from "./process.ts";
import { mountTmpfs, type Tmpfs } from "./tmpfs.ts";

const TOKEN = "disk-full-token-0123456789";
const entry = join(import.meta.dir, "..", "src", "main.ts");
const cleanup: Array<() => unknown> = [];

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

function tmpfs(sizeBytes: number): Tmpfs | null {
  const fs = mountTmpfs(sizeBytes);
  if (fs) cleanup.push(() => fs.unmount());
  return fs;
}

async function spawn(env: Record<string, string>): Promise<HeraldProcess> {
  const herald = await spawnHerald({
    HERALD_PUBLISH_TOKENS: TOKEN,
    HERALD_PUBLISH_RATE_TOKEN: "100000",
    HERALD_PUBLISH_RATE_USER: "100000",
    ...env,
  });
  cleanup.push(async () => {
    if (herald.proc.exitCode === null) await herald.kill("SIGKILL");
  });
  return herald;
}

async function stream(url: string, query: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const reader = await openStream(url, query, undefined, headers);
  cleanup.push(() => reader.close());
  return reader;
}

function publish(url: string, body: unknown): Promise<Response> {
  return fetch(`${url}/api/publish`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** Runs `bun src/main.ts` until it exits: its code and what it wrote to stderr. */
async function runToExit(env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  const proc = Bun.spawn([process.execPath, entry], {
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", HERALD_LOG: "warn", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const killer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  clearTimeout(killer);
  return { code, stderr };
}

const skipped = mountTmpfs(64 * 1024);
skipped?.unmount();
const canMount = skipped !== null;

describe("a full disk", () => {
  test.skipIf(!canMount)(
    "publishes answer 507 saying the disk is full while streams, order steps and pruning carry on; a restart on the full disk serves",
    async () => {
      const disk = tmpfs(4 * 1024 * 1024)!;
      // Retention of 10 events: the 30 published below are over it, so each start prunes.
      const env = { HERALD_DATA_DIR: disk.dir, HERALD_LOG_MAX_EVENTS: "10", HERALD_ORDER_STEP_MS: "200" };
      const herald = await spawn(env);
      let lastBefore = "";
      for (let i = 1; i <= 30; i++)
        lastBefore = (await apiPublish(herald.url, TOKEN, { target: "topic:news", message: `before ${i}` })).id;
      const id = (n: number) => `${lastBefore.slice(0, lastBefore.lastIndexOf("-"))}-${n}`;
      const alice = await signIn({ url: herald.url } as Herald, "alice");
      const ordered = await postForm(
        { url: herald.url } as Herald,
        "/orders",
        { sku: "KB-101", quantity: "1" },
        { session: alice },
      );
      expect(ordered.status).toBe(200);
      const news = await stream(herald.url, "?topic=news");

      disk.fill();
      const refused = await publish(herald.url, { target: "topic:news", message: "on a full disk" });
      expect(refused.status).toBe(507);
      expect(refused.headers.get("retry-after")).toBe("30");
      expect(((await refused.json()) as { error: string }).error).toContain("disk is full");
      // The order's three later steps fall due (and cannot be written) meanwhile.
      await Bun.sleep(1200);
      expect(herald.proc.exitCode).toBeNull();
      expect((await fetch(`${herald.url}/healthz`)).status).toBe(200);
      expect(news.done).toBe(false);
      const stillOpen = await stream(herald.url, "?topic=news", { "last-event-id": id(25) });
      await stillOpen.event(5);
      expect(stillOpen.events.map((e) => e.data.includes("before 30"))).toContain(true);

      // Killed and started again on the still-full disk: its start-up prune cannot delete either.
      await herald.kill("SIGKILL");
      const again = await spawn(env);
      await Bun.sleep(500);
      expect(again.proc.exitCode).toBeNull();
      const replay = await stream(again.url, "?topic=news", { "last-event-id": id(28) });
      await replay.event(2);
      expect(replay.events.map((e) => e.id)).toEqual([id(29), id(30)]);
      expect((await publish(again.url, { target: "topic:news", message: "still full" })).status).toBe(507);

      disk.free();
      const spaced = await apiPublish(again.url, TOKEN, { target: "topic:news", message: "space again" });
      // After the 30 and the order's two (its product row and order-placed), none given twice.
      expect(seq(spaced.id)).toBeGreaterThan(32);
      await replay.until(
        () => replay.events.some((e) => e.data.includes("space again")),
        "the event published once space was freed",
      );
    },
    30_000,
  );

  test.skipIf(!canMount)(
    "an event too large for the space left fails alone; the others of its tick are stored, with consecutive ids",
    async () => {
      const disk = tmpfs(4 * 1024 * 1024)!;
      const herald = startTestHerald({ dataDir: disk.dir, eventLog: "sqlite" });
      cleanup.push(() => herald.stop());
      const first = await herald.hub.publish("topic:t", { event: "notification", data: "<li>first</li>" });
      expect(seq(first.id)).toBe(1);
      // Room for a few small commits, not for 400 KB of one event.
      disk.fill();
      disk.free();
      disk.fill(200 * 1024);
      const big = `<p>${"x".repeat(400 * 1024)}</p>`;
      const outcomes = await Promise.allSettled([
        herald.hub.publish("topic:t", { event: "notification", data: "<li>a</li>" }),
        herald.hub.publish("topic:t", { event: "notification", data: big }),
        herald.hub.publish("topic:t", { event: "notification", data: "<li>b</li>" }),
        herald.hub.publish("topic:t", { event: "notification", data: (id) => `<li id="n-${id}">c</li>` }),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled", "fulfilled"]);
      expect(isDiskFull((outcomes[1] as PromiseRejectedResult).reason)).toBe(true);
      const ids = outcomes
        .filter((o) => o.status === "fulfilled")
        .map((o) => (o as PromiseFulfilledResult<{ id: string }>).value.id);
      expect(ids.map(seq)).toEqual([2, 3, 4]);
      const stored = await herald.hub.log.readAfter(1, ["topic:t"], 10);
      expect(stored.map((e) => [e.id, e.data])).toEqual([
        [2, "<li>a</li>"],
        [3, "<li>b</li>"],
        [4, '<li id="n-4">c</li>'],
      ]);
    },
  );
});

describe("a damaged or replaced event log", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), "herald-damaged-"));
    dirs.push(dir);
    return dir;
  };

  test("a corrupt herald.db stops start-up with one line that names the file, and a non-zero exit code", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "herald.db"), "this is not a database\n".repeat(400));
    const { code, stderr } = await runToExit({ HERALD_DATA_DIR: dir });
    expect(code).not.toBe(0);
    const lines = stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(join(dir, "herald.db"));
    expect(lines[0]).toContain("not a sound SQLite database");
  });

  test("a corrupt shop.db stops start-up the same way", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "shop.db"), "garbage ".repeat(1000));
    const { code, stderr } = await runToExit({ HERALD_DATA_DIR: dir });
    expect(code).not.toBe(0);
    expect(stderr.trim().split("\n")).toEqual([expect.stringContaining(join(dir, "shop.db"))]);
  });

  test("an emptied herald.db beside the WAL of the killed process gives new ids after the old ones, never the same ids again", async () => {
    const dir = tempDir();
    const herald = await spawn({ HERALD_DATA_DIR: dir });
    let oldId = "";
    for (let i = 1; i <= 50; i++)
      oldId = (await apiPublish(herald.url, TOKEN, { target: "topic:news", message: `old ${i}` })).id;
    const oldEpoch = oldId.slice(0, oldId.lastIndexOf("-"));
    // Killed, so the WAL is not checkpointed into herald.db and stays beside it; then the
    // database file is emptied (restored from nothing, or truncated by mistake).
    await herald.kill("SIGKILL");
    truncateSync(join(dir, "herald.db"), 0);

    const again = await spawn({ HERALD_DATA_DIR: dir });
    const { id } = await apiPublish(again.url, TOKEN, { target: "topic:news", message: "new 1" });
    expect(seq(id)).toBeGreaterThan(50);
    // A client that saw old id 30 is told history was cut rather than being sent ids it has seen.
    const resumed = await stream(again.url, "?topic=news", { "last-event-id": `${oldEpoch}-30` });
    await resumed.until(() => resumed.pageEvents.some((e) => e.event === "history-cut"), "a history-cut notice");
    // And a later restart keeps giving ids after the old ones.
    await again.kill("SIGKILL");
    const third = await spawn({ HERALD_DATA_DIR: dir });
    expect(seq((await apiPublish(third.url, TOKEN, { target: "topic:news", message: "new 2" })).id)).toBe(seq(id) + 1);
  }, 30_000);
});
