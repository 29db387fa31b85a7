import { afterEach, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteEventLog } from "../src/core/eventlog/index.ts";
import { eventually } from "./helpers.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function logAt(options: { checkpointHoldMs?: number; checkpointRunCommits?: number } = {}): {
  path: string;
  log: SqliteEventLog;
} {
  const dir = mkdtempSync(join(tmpdir(), "herald-checkpoint-"));
  dirs.push(dir);
  const path = join(dir, "herald.db");
  return {
    path,
    log: new SqliteEventLog(path, { retention: { maxEvents: 100_000, maxAgeMs: 3_600_000 }, ...options }),
  };
}

/** Appends `<p>from</p>` up to `<p>to - 1</p>` on `topic`, each awaited: one commit each. */
async function appendEach(log: SqliteEventLog, topic: string, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++)
    await log.append({ channels: [`topic:${topic}`], event: "notification", data: `<p>${i}</p>`, at: Date.now() });
}

/**
 * Events in the database file itself, what a checkpoint has copied out of the WAL: the file is
 * copied alone (without its WAL) and opened elsewhere.
 */
function eventsInDatabaseFile(path: string): number {
  const dir = mkdtempSync(join(tmpdir(), "herald-checkpoint-copy-"));
  dirs.push(dir);
  copyFileSync(path, join(dir, "copy.db"));
  const db = new Database(join(dir, "copy.db"), { readonly: true });
  try {
    return db.query<{ n: number }, []>("SELECT count(*) AS n FROM events").get()!.n;
  } catch {
    // Nothing copied yet (not even the schema), or a copy taken in the middle of a checkpoint.
    return 0;
  } finally {
    db.close();
  }
}

test("after enough commits a thread of its own copies the WAL into the database file", async () => {
  const { path, log } = logAt();
  // One commit each: 300 commits pass the point at which the checkpointer is asked, far below the
  // WAL size at which SQLite would checkpoint on its own.
  await appendEach(log, "a", 0, 300);
  expect(statSync(`${path}-wal`).size).toBeGreaterThan(0);
  // While the log is open and still writing to its WAL, the database file itself holds the events.
  await eventually(() => eventsInDatabaseFile(path) >= 256, "the events in the database file");
  // The thread says so once its checkpoint is over, which may be after the file already holds them.
  await eventually(() => log.checkpointsOffLoop > 0, "the checkpointer's answer");
  await log.close();
  // Everything committed is there after the log closed (its own connection closed last).
  const reopened = new SqliteEventLog(path, { retention: { maxEvents: 100_000, maxAgeMs: 3_600_000 } });
  const events = await reopened.readAfter(0, ["topic:a"], 1000);
  expect(events.map((e) => e.data)).toEqual(Array.from({ length: 300 }, (_, i) => `<p>${i}</p>`));
  await reopened.close();
});

test("the checkpoints keep the WAL copied while commits go on", async () => {
  const { path, log } = logAt();
  await appendEach(log, "a", 0, 300);
  await eventually(() => log.checkpointsOffLoop >= 1, "a checkpoint off the event loop");
  await appendEach(log, "a", 300, 600);
  await eventually(() => log.checkpointsOffLoop >= 2, "a second checkpoint off the event loop");
  await log.close();
  const reopened = new SqliteEventLog(path, { retention: { maxEvents: 100_000, maxAgeMs: 3_600_000 } });
  expect((await reopened.readAfter(0, ["topic:a"], 1000)).length).toBe(600);
  await reopened.close();
});

/**
 * The WAL header's checkpoint sequence number, which SQLite raises each time the WAL starts again
 * from its beginning (https://www.sqlite.org/fileformat.html, section 4.1).
 */
function walRestarts(path: string): number {
  return readFileSync(`${path}-wal`).readUInt32BE(12);
}

test("the WAL starts again from its beginning while commits go on", async () => {
  // Commits wait for the checkpoint that lets the WAL start over; on a slow disk its fsyncs may
  // take longer than the default 50 ms, after which the commits would go on without it. A run to
  // the WAL's end every 512 commits, rather than 2,048, starts well within the test's commits
  // however late the checkpointer thread first answers.
  const { path, log } = logAt({ checkpointHoldMs: 5000, checkpointRunCommits: 512 });
  const commits = 4000;
  await appendEach(log, "w", 0, 1);
  const restartsBefore = walRestarts(path);
  // One commit each, without a pause between them: the checkpointer never finds the log idle.
  await appendEach(log, "w", 1, commits);
  // Far from the 10,000 pages at which SQLite would start the WAL again itself.
  expect(statSync(`${path}-wal`).size).toBeLessThan(10_000 * (4096 + 24));
  expect(walRestarts(path)).toBeGreaterThan(restartsBefore);
  expect(log.checkpointsToEnd).toBeGreaterThan(0);
  await log.close();
  const reopened = new SqliteEventLog(path, { retention: { maxEvents: 100_000, maxAgeMs: 3_600_000 } });
  const events = await reopened.readAfter(0, ["topic:w"], commits + 1);
  expect(events.map((e) => e.data)).toEqual(Array.from({ length: commits }, (_, i) => `<p>${i}</p>`));
  await reopened.close();
});

test("a checkpoint counts as reaching the WAL's end only when nothing was written meanwhile", async () => {
  // Runs to the WAL's end every 128 commits. For the first 4,000 commits another writer on the
  // log's connection (as read marks, idempotency keys and sign-outs are) writes every 5 ms, also
  // while commits are held back for a run's last round; the last 2,000 have no other writer, so
  // that runs reach the end there.
  const { path, log } = logAt({ checkpointHoldMs: 5000, checkpointRunCommits: 128 });
  await appendEach(log, "o", 0, 1);
  const restartsBefore = walRestarts(path);
  let n = 0;
  const other = setInterval(() => {
    log.database.run(
      "INSERT INTO meta (key, value) VALUES ('other-writer', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      [n++],
    );
  }, 5);
  try {
    await appendEach(log, "o", 1, 4000);
  } finally {
    clearInterval(other);
  }
  await appendEach(log, "o", 4000, 6000);
  expect(n).toBeGreaterThan(0);
  // A checkpoint that reached the end lets the next write start the WAL over: every run counted as
  // reaching the end (but perhaps the last) is a start over in the WAL's header. One counted while
  // the other writer's frames were still to copy would not be.
  const restarts = walRestarts(path) - restartsBefore;
  expect(log.checkpointsToEnd).toBeGreaterThan(0);
  expect(restarts).toBeGreaterThanOrEqual(log.checkpointsToEnd - 1);
  await log.close();
});

test("closing while a checkpoint is under way loses nothing and leaves no thread behind", async () => {
  const { path, log } = logAt();
  await appendEach(log, "b", 0, 260);
  await log.close();
  const reopened = new SqliteEventLog(path, { retention: { maxEvents: 100_000, maxAgeMs: 3_600_000 } });
  expect(await reopened.lastId()).toBe(260);
  expect((await reopened.readAfter(0, ["topic:b"], 1000)).length).toBe(260);
  await reopened.close();
});

test("an in-memory log needs no checkpointer", async () => {
  const log = new SqliteEventLog(":memory:", { retention: { maxEvents: 100_000, maxAgeMs: 3_600_000 } });
  await appendEach(log, "c", 0, 300);
  expect(log.checkpointsOffLoop).toBe(0);
  await log.close();
});
