/**
 * Fault tests against real herald processes: resume after missed events, SIGKILL and restart,
 * a client that stops reading, a stalled socket, churn, and a graceful shutdown.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LoadClient } from "../bench/load.ts";
import { openStream, seq, type SseReader } from "./helpers.ts";
import { apiPublish, clientsOf, spawnHerald, stalledClient, type HeraldProcess } from "./process.ts";

const TOKEN = "fault-test-token-0123456789";
const running: HeraldProcess[] = [];
const readers: SseReader[] = [];
const dirs: string[] = [];

async function start(env: Record<string, string> = {}, dataDir = tempDir()): Promise<HeraldProcess> {
  const herald = await spawnHerald({
    HERALD_DATA_DIR: dataDir,
    HERALD_PUBLISH_TOKENS: TOKEN,
    HERALD_PUBLISH_RATE_TOKEN: "100000",
    HERALD_STREAMS_PER_IP_PER_S: "100000",
    ...env,
  });
  running.push(herald);
  return herald;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "herald-fault-"));
  dirs.push(dir);
  return dir;
}

async function stream(url: string, query: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const reader = await openStream(url, query, undefined, headers);
  readers.push(reader);
  return reader;
}

afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  for (const herald of running.splice(0)) if (herald.proc.exitCode === null) await herald.kill("SIGKILL");
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("faults, against real processes", () => {
  test("a client that misses N events and resumes by id gets exactly those, in order", async () => {
    const herald = await start();
    const first = await stream(herald.url, "?topic=news");
    for (let i = 1; i <= 3; i++) await apiPublish(herald.url, TOKEN, { target: "topic:news", html: `<li>${i}</li>` });
    await first.event(3);
    const seen = first.events.at(-1)!.id!;
    first.close();
    for (let i = 4; i <= 40; i++)
      await apiPublish(herald.url, TOKEN, { target: i % 5 ? "topic:news" : "topic:other", html: `<li>${i}</li>` });
    const back = await stream(herald.url, "?topic=news", { "last-event-id": seen });
    const expected = Array.from({ length: 37 }, (_, k) => k + 4).filter((i) => i % 5 !== 0);
    await back.event(expected.length);
    expect(back.events.map((e) => e.data)).toEqual(expected.map((i) => `<li>${i}</li>`));
  });

  test("SIGKILL between publishes, restart on the same data directory: every acknowledged event comes back", async () => {
    const dataDir = tempDir();
    const herald = await start({}, dataDir);
    const acknowledged: string[] = [];
    for (let i = 1; i <= 60; i++)
      acknowledged.push((await apiPublish(herald.url, TOKEN, { target: "topic:orders", message: `order ${i}` })).id);
    // Some publishes still in flight when the process dies: they may or may not have made it.
    const inFlight = Array.from({ length: 20 }, (_, i) =>
      apiPublish(herald.url, TOKEN, { target: "topic:orders", message: `late ${i}` }).catch(() => null),
    );
    await herald.kill("SIGKILL");
    const late = (await Promise.all(inFlight)).filter((r) => r !== null).map((r) => r!.id);

    const again = await start({}, dataDir);
    // The same file is the same history: its epoch, from before the kill, still holds.
    const epoch = acknowledged[0]!.slice(0, acknowledged[0]!.lastIndexOf("-"));
    const back = await stream(again.url, "?topic=orders", { "last-event-id": `${epoch}-0` });
    await back.event(acknowledged.length + late.length);
    const ids = back.events.map((e) => e.id!);
    for (const id of [...acknowledged, ...late]) expect(ids).toContain(id);
    expect(ids.map(seq)).toEqual([...ids.map(seq)].sort((a, b) => a - b));
    expect(back.events[0]!.data).toContain("order 1");
    // And the restarted server goes on from the next id.
    const next = await apiPublish(again.url, TOKEN, { target: "topic:orders", message: "after restart" });
    expect(next.id).toStartWith(`${epoch}-`);
    expect(seq(next.id)).toBeGreaterThan(seq(ids.at(-1)));
  }, 30_000);

  test("a client that stops reading is dropped; the others get every event and memory stays bounded", async () => {
    const herald = await start({ HERALD_MAX_BUFFER: String(256 * 1024) });
    const others = [await stream(herald.url, "?topic=flood"), await stream(herald.url, "?topic=flood")];
    const stalled = stalledClient(herald.url, "/sse?topic=flood");
    for (let i = 0; i < 100 && (await clientsOf(herald.url)) < 3; i++) await Bun.sleep(20);
    expect(await clientsOf(herald.url)).toBe(3);
    const before = herald.rssKb();
    const chunk = "x".repeat(15_000);
    const events = 600;
    for (let i = 0; i < events; i++)
      await apiPublish(herald.url, TOKEN, { target: "topic:flood", html: `<p>${i} ${chunk}</p>` });
    for (const reader of others) await reader.event(events, 20_000);
    for (const reader of others)
      expect(reader.events.map((e) => seq(e.id))).toEqual(Array.from({ length: events }, (_, i) => i + 1));
    for (let i = 0; i < 200 && (await clientsOf(herald.url)) !== 2; i++) await Bun.sleep(50);
    expect(await clientsOf(herald.url)).toBe(2);
    // 9 MB were published to the stalled stream; it may hold its buffer bound, not the lot.
    expect(herald.rssKb() - before).toBeLessThan(40 * 1024);
    expect(await stalled.closed).toMatch(/^(ended after retry|closed|reset)$/);
  }, 60_000);

  test("a stream whose socket stops draining is dropped as stale within the client timeout", async () => {
    const herald = await start({ HERALD_MAX_BUFFER: String(64 * 1024 * 1024), HERALD_CLIENT_TIMEOUT_MS: "1000" });
    const stalled = stalledClient(herald.url, "/sse?topic=stuck");
    for (let i = 0; i < 100 && (await clientsOf(herald.url)) < 1; i++) await Bun.sleep(20);
    const chunk = "y".repeat(15_000);
    for (let i = 0; i < 400; i++)
      await apiPublish(herald.url, TOKEN, { target: "topic:stuck", html: `<p>${chunk}</p>` });
    for (let i = 0; i < 200 && (await clientsOf(herald.url)) !== 0; i++) await Bun.sleep(50);
    expect(await clientsOf(herald.url)).toBe(0);
    expect(await stalled.closed).toMatch(/^(ended after retry|closed|reset)$/);
  }, 60_000);

  test("2,000 clients connecting and leaving for nine rounds: the count returns to zero and memory does not grow", async () => {
    const herald = await start({ HERALD_MAX_CLIENTS: "5000" });
    const { port } = new URL(herald.url);
    const after: number[] = [];
    for (let round = 0; round < 9; round++) {
      const client = new LoadClient({ port: Number(port), path: `/sse?topic=churn${round % 2}` });
      await client.connect(2000);
      expect(client.failed).toBe(0);
      expect(await clientsOf(herald.url)).toBe(2000);
      await apiPublish(herald.url, TOKEN, { target: `topic:churn${round % 2}`, message: `round ${round}` });
      client.close();
      for (let i = 0; i < 200 && (await clientsOf(herald.url)) !== 0; i++) await Bun.sleep(25);
      expect(await clientsOf(herald.url)).toBe(0);
      after.push(await herald.settledRssKb());
    }
    // Later rounds reuse what round 1 grew. Their trend (least squares over eight readings, which
    // wander by ±2 MB after a GC) must stay under 1 MiB a round; a leak of 1 KB a stream is 2 MB.
    const later = after.slice(1);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const xs = later.map((_, i) => i);
    const slope =
      xs.reduce((sum, x, i) => sum + (x - mean(xs)) * (later[i]! - mean(later)), 0) /
      xs.reduce((sum, x) => sum + (x - mean(xs)) ** 2, 0);
    expect(slope).toBeLessThan(1024);
  }, 60_000);

  test("SIGTERM: every stream is told to come back at a spread-out moment, then the process exits cleanly", async () => {
    const herald = await start({ HERALD_DRAIN_MS: "4000" });
    const streams = await Promise.all(Array.from({ length: 12 }, () => stream(herald.url, "?topic=t")));
    const { id } = await apiPublish(herald.url, TOKEN, { target: "topic:t", message: "before shutdown" });
    for (const reader of streams) await reader.event(1);
    const seenRetries = streams.map((r) => r.retry);
    expect(await herald.kill("SIGTERM")).toBe(0);
    for (const reader of streams) await reader.ended();
    const retries = streams.map((r) => r.retry!);
    for (const retry of retries) {
      expect(retry).toBeGreaterThanOrEqual(250);
      expect(retry).toBeLessThanOrEqual(4250);
    }
    expect(retries).not.toEqual(seenRetries);
    expect(new Set(retries).size).toBeGreaterThan(6);
    expect(streams[0]!.events[0]!.id).toBe(id);
  }, 30_000);
});
