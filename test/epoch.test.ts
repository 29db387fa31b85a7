/**
 * Epochs with the logs one process owns: a new sqlite file or a new memory log is a new history,
 * so an id from another one is never replayed from; the same file keeps its epoch across restarts.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Herald } from "../src/app.ts";
import { openStream, startTestHerald, type SseReader, type TestConfig } from "./helpers.ts";

const heralds: Herald[] = [];
const readers: SseReader[] = [];
const dirs: string[] = [];

function start(overrides: TestConfig): Herald {
  const herald = startTestHerald(overrides);
  heralds.push(herald);
  return herald;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "herald-epoch-"));
  dirs.push(dir);
  return dir;
}

async function publish(herald: Herald, from: number, to: number): Promise<string[]> {
  const ids = [];
  for (let i = from; i <= to; i++)
    ids.push((await herald.hub.publishToTopic("t", { event: "notification", data: `e${i}` })).id);
  return ids;
}

async function resume(herald: Herald, id: string): Promise<SseReader> {
  const reader = await openStream(herald, "?topic=t", undefined, { "last-event-id": id });
  readers.push(reader);
  return reader;
}

afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  for (const herald of heralds.splice(0)) await herald.stop();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("epochs", () => {
  for (const eventLog of ["sqlite", "memory"] as const) {
    test(`a new ${eventLog} log is a new history: an id from the old one gets a snapshot and a history-cut, though the new one has passed it`, async () => {
      const first = start({ eventLog, dataDir: tempDir() });
      const old = await publish(first, 1, 3);
      await first.stop();
      // A new, empty data directory: a new file.
      const second = start({ eventLog, dataDir: tempDir() });
      const now = await publish(second, 1, 5);
      const back = await resume(second, old[2]!);
      await back.until(() => back.pageEvents.length >= 2, "snapshot and notice");
      expect(back.pageEvents.map((e) => [e.event, e.id])).toEqual([
        ["snapshot", now[4]],
        ["history-cut", now[4]],
      ]);
      expect(back.events).toEqual([]);
    });
  }

  test("the same sqlite file keeps its epoch across a restart: its ids still resume", async () => {
    const dataDir = tempDir();
    const first = start({ eventLog: "sqlite", dataDir });
    const old = await publish(first, 1, 3);
    await first.stop();
    const second = start({ eventLog: "sqlite", dataDir });
    const now = await publish(second, 4, 5);
    expect(now[0]!.slice(0, now[0]!.indexOf("-"))).toBe(old[0]!.slice(0, old[0]!.indexOf("-")));
    const back = await resume(second, old[0]!);
    await back.event(4);
    expect(back.events.map((e) => [e.data, e.id])).toEqual([
      ["e2", old[1]],
      ["e3", old[2]],
      ["e4", now[0]],
      ["e5", now[1]],
    ]);
    expect(back.pageEvents).toEqual([]);
  });
});
