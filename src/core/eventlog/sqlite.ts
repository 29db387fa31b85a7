/**
 * The durable event log on `bun:sqlite`, in WAL mode. Appends wait in memory for the current
 * tick to end and are then committed together in one transaction: one write per batch, not per
 * event, so the log does not cap publish throughput.
 *
 * Which events are on which channel is kept in memory (`ChannelIndex`), rebuilt from the
 * `events` table when the log is opened: only this process writes the log, and an index on disk
 * cost about three quarters of an append (an insert per channel into a table and its second
 * index, 8 of 11 µs an event). Logs written by earlier versions, which kept that index in the
 * tables `event_channels` and `names`, have those tables dropped when opened.
 *
 * The log's epoch is a row of `meta`, made when the file is: a new file is a new history. A backup
 * restored over the file brings its own epoch back; delete that row (`DELETE FROM meta WHERE key =
 * 'epoch'`) before starting herald on it, so that ids handed out after the backup was taken are
 * not taken for positions in it.
 *
 * `synchronous=NORMAL`: a commit survives the process being killed (the WAL is in the kernel's
 * hands), not necessarily a power cut; `HERALD_SQLITE_SYNC=full` makes every commit wait for the
 * disk.
 */
import { Database, type Statement } from "bun:sqlite";
import { existsSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import type { Channel } from "../channel.ts";
import { HeraldError, isCorrupt } from "../errors.ts";
import type { Log } from "../log.ts";
import { ChannelIndex } from "./channel-index.ts";
import { newEpoch } from "./epoch.ts";
import type { EventLog, NewEvent, Render, Retention, StoredEvent } from "./event-log.ts";

interface Row {
  id: number;
  at: number;
  event: string;
  data: string;
  channels: string;
}

function fromRow(row: Row, epoch: string): StoredEvent {
  return {
    id: row.id,
    epoch,
    at: row.at,
    event: row.event,
    data: row.data,
    channels: JSON.parse(row.channels) as Channel[],
  };
}

/** The stored text of the most common lists of channels, one channel each: a feed repeats them. */
const channelTexts = new Map<string, string>();
const CHANNEL_TEXTS_KEPT = 4096;

/** A list of channels as the `channels` column stores it (JSON). */
function channelsText(channels: readonly string[]): string {
  if (channels.length !== 1) return JSON.stringify(channels);
  const channel = channels[0]!;
  let text = channelTexts.get(channel);
  if (text === undefined) {
    if (channelTexts.size >= CHANNEL_TEXTS_KEPT) channelTexts.clear();
    text = JSON.stringify(channels);
    channelTexts.set(channel, text);
  }
  return text;
}

/** Rows per multi-row insert when a commit has that many events or more. */
const ROWS_PER_INSERT = 64;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  event TEXT NOT NULL,
  data TEXT NOT NULL,
  channels TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS read_marks (user TEXT PRIMARY KEY, up_to INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reads (
  user TEXT NOT NULL,
  event_id INTEGER NOT NULL,
  PRIMARY KEY (user, event_id)
) WITHOUT ROWID;
`;

/** The on-disk channel index of earlier versions, now kept in memory. */
const OLD_INDEX = `
DROP TABLE IF EXISTS event_channels;
DROP TABLE IF EXISTS names;
`;

const PRUNE_EVERY_MS = 60_000;
/**
 * Commits, or bytes of events committed, after which the checkpointer thread is asked to copy the
 * WAL into the database file (see `#checkpoint`): each commit writes whole pages, several for a
 * single small event, so the count of commits says more about the WAL's growth than the bytes.
 */
const CHECKPOINT_COMMITS = 256;
const CHECKPOINT_BYTES = 1024 * 1024;
/**
 * Commits after which the WAL is to start over: the checkpoint then asked for runs until it
 * reaches the WAL's end, or gives up for as many commits again (see `#checkpoint`). Those in
 * between are single rounds.
 */
const CHECKPOINT_RESTART_COMMITS = 2048;
/**
 * In a run, a checkpoint that could not reach the WAL's end (commits went on meanwhile) is followed
 * at once by another, with only what was committed during the one before; the last of these
 * rounds holds the commits back.
 */
const CHECKPOINT_ROUNDS = 2;
/**
 * When no more than this many commits came during a round, or it was the last of the rounds, the
 * next round ends the run: the log's commits wait (in memory, the event loop free) until it is
 * over, so that it reaches the end and the next commit starts the WAL again from its beginning.
 */
const CHECKPOINT_LAST_ROUND_COMMITS = 64;
/** The longest the commits wait for that last round; past it they go on, and the WAL with them. */
const CHECKPOINT_HOLD_MS = 50;
/** Commits after a failed checkpoint before the next try, rather than the full count. */
const CHECKPOINT_RETRY_COMMITS = 16;
/**
 * Events deleted per transaction when pruning, each batch in its own turn of the event loop: one
 * delete of a day's events would hold the loop (and every stream) for as long as it takes.
 */
const PRUNE_BATCH = 1000;

/** What the checkpointer thread answers (see checkpointer.ts). */
interface CheckpointAnswer {
  done?: boolean;
  /** SQLite's busy flag: another connection held the checkpoint lock, nothing was copied. */
  busy?: number;
  log?: number;
  checkpointed?: number;
  error?: string;
  closed?: boolean;
}

export interface SqliteOptions {
  retention: Retention;
  /** `normal` (the default) or `full`. */
  sync?: "normal" | "full";
  /** Where a failed prune or commit and a stray WAL are reported. Defaults to none. */
  log?: Log;
  /**
   * The longest commits wait for the checkpoint that lets the WAL start over (see `#checkpoint`),
   * in ms. Defaults to 50.
   */
  checkpointHoldMs?: number;
  /** Commits between runs of checkpoints to the WAL's end (see `#checkpoint`). Defaults to 2,048. */
  checkpointRunCommits?: number;
}

/** Reads a SQLite varint at `at`: its value and the offset after it. */
function varint(page: Uint8Array, at: number): [number, number] {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    const byte = page[at + i]!;
    value = value * 128 + (byte & 0x7f);
    if (byte < 0x80) return [value, at + i + 1];
  }
  return [value * 256 + page[at + 8]!, at + 9];
}

/**
 * The highest rowid on any table leaf page in a WAL file (every frame, committed or not), or 0:
 * at least the newest event id the WAL's database had given since its last checkpoint. File
 * format: https://www.sqlite.org/fileformat.html, sections 1.6 (b-tree pages) and 4.1 (WAL).
 */
export function highestRowidInWal(walPath: string): number {
  const wal = readFileSync(walPath);
  if (wal.length < 32) return 0;
  const view = new DataView(wal.buffer, wal.byteOffset, wal.byteLength);
  const magic = view.getUint32(0);
  if (magic !== 0x377f0682 && magic !== 0x377f0683) return 0;
  const pageSize = view.getUint32(8);
  if (pageSize < 512 || pageSize > 65536) return 0;
  let highest = 0;
  for (let frame = 32; frame + 24 + pageSize <= wal.length; frame += 24 + pageSize) {
    const page = wal.subarray(frame + 24, frame + 24 + pageSize);
    // Page 1 starts with the 100-byte database header.
    const header = view.getUint32(frame) === 1 ? 100 : 0;
    if (page[header] !== 0x0d) continue;
    const cells = (page[header + 3]! << 8) | page[header + 4]!;
    for (let cell = 0; cell < cells; cell++) {
      const pointer = header + 8 + 2 * cell;
      const offset = (page[pointer]! << 8) | page[pointer + 1]!;
      if (offset + 18 > pageSize) continue;
      // A table leaf cell: the payload's length, then the rowid.
      const [, afterLength] = varint(page, offset);
      const [rowid] = varint(page, afterLength);
      if (Number.isSafeInteger(rowid) && rowid > highest) highest = rowid;
    }
  }
  return highest;
}

/**
 * A WAL left beside a database that is missing or empty belongs to an earlier database (the file
 * was deleted, emptied or replaced): SQLite would delete it on open and the new log would give
 * ids from 1 again, ids that clients of the old one may hold. Returns the highest id the WAL
 * held (the new log starts after it) and moves the WAL aside, or 0 when there is none.
 */
function setStrayWalAside(path: string, log: Log | undefined): number {
  const wal = `${path}-wal`;
  if (path === ":memory:" || !existsSync(wal) || statSync(wal).size <= 32) return 0;
  if (existsSync(path) && statSync(path).size > 0) return 0;
  const highest = highestRowidInWal(wal);
  const aside = `${wal}.stray-${Date.now()}`;
  renameSync(wal, aside);
  rmSync(`${path}-shm`, { force: true });
  log?.warn("stray WAL set aside: the event log starts after its ids", {
    database: path,
    wal: aside,
    ids_after: highest,
  });
  return highest;
}

/**
 * A connection for what is kept beside the sqlite log (read marks, sign-outs, idempotency keys):
 * the log's own (`SqliteEventLog.database`), not closed by its borrower, or a file opened here.
 */
export function connectionTo(database: Database | string): { db: Database; owned: boolean } {
  if (typeof database !== "string") return { db: database, owned: false };
  const db = new Database(database, { strict: true });
  db.run("PRAGMA busy_timeout = 5000");
  db.run("PRAGMA journal_mode = WAL");
  return { db, owned: true };
}

export class SqliteEventLog implements EventLog {
  readonly #db: Database;
  readonly #retention: Retention;
  readonly #epoch: string;
  #nextId: number;
  #committedId: number;
  #droppedUpTo: number;
  #pending: StoredEvent[] = [];
  /** How each pending event's data was made, to make it again if the event gets another id. */
  #renders: Array<Render | undefined> = [];
  /** The committed events' ids by channel. */
  readonly #index = new ChannelIndex();
  /** The batch being gathered; it resolves with the events that could not be stored, if any. */
  #batch: {
    promise: Promise<Map<StoredEvent, unknown> | null>;
    resolve: (failed: Map<StoredEvent, unknown> | null) => void;
  } | null = null;
  readonly #pruneTimer: ReturnType<typeof setInterval>;
  /** The prune passes, one after another. */
  #pruning: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #log: Log | undefined;
  readonly #path: string;
  /** The checkpointer thread, started the first time it is needed. */
  #checkpointer: Worker | null = null;
  #checkpointInFlight = false;
  #sinceCheckpoint = 0;
  #commitsSinceCheckpoint = 0;
  /** Rounds so far of the run to the WAL's end under way. */
  #checkpointRounds = 0;
  /** Commits since the checkpoint under way began: what it cannot have copied. */
  #commitsDuringCheckpoint = 0;
  /**
   * Rows changed on the log's connection when the checkpoint under way began: by any writer on
   * it (read marks, idempotency keys, sign-outs, pruning), not only the log's commits.
   */
  #changesAtCheckpoint = 0;
  /** Commits since the last run to the WAL's end ended, whether or not it reached the end. */
  #commitsSinceRun = 0;
  /** While set, commits wait for the checkpoint under way (its last round); the timer ends it. */
  #commitsHeld: ReturnType<typeof setTimeout> | null = null;
  #commitWaiting = false;
  readonly #holdMs: number;
  readonly #runCommits: number;
  #checkpointerClosed: (() => void) | null = null;
  /** Checkpoints the checkpointer thread has finished (for tests and metrics). */
  checkpointsOffLoop = 0;
  /** Checkpoints that reached the WAL's end, so that it starts again from its beginning. */
  checkpointsToEnd = 0;
  /** Inserts events in one transaction (made once: `transaction()` builds a function each call). */
  readonly #insert: (events: readonly StoredEvent[]) => void;
  readonly #q: {
    insertEvent: Statement;
    insertEvents: Statement;
    dropEvents: Statement;
    dropReads: Statement;
    setDropped: Statement;
    nthAfter: Statement<{ id: number }>;
    totalChanges: Statement<{ n: number }>;
    lastOlder: Statement<{ id: number }>;
    byIds: Statement<Row>;
    get: Statement<Row>;
  };

  /**
   * Opens (or creates) the log at `path`; `:memory:` for a throwaway database. A file that is not
   * a sound database throws a `HeraldError` that names it.
   */
  constructor(path: string, options: SqliteOptions) {
    this.#retention = options.retention;
    this.#log = options.log;
    this.#path = path;
    this.#holdMs = options.checkpointHoldMs ?? CHECKPOINT_HOLD_MS;
    this.#runCommits = options.checkpointRunCommits ?? CHECKPOINT_RESTART_COMMITS;
    const strayUpTo = setStrayWalAside(path, options.log);
    try {
      this.#db = new Database(path, { create: true, strict: true });
      this.#db.run("PRAGMA journal_mode = WAL");
      this.#db.run(`PRAGMA synchronous = ${options.sync === "full" ? "FULL" : "NORMAL"}`);
      this.#db.run("PRAGMA busy_timeout = 5000");
      // Checkpoint every 10,000 pages (40 MB) rather than 1,000: fewer, larger checkpoints; the WAL
      // file is cut back to 64 MB after one.
      this.#db.run("PRAGMA wal_autocheckpoint = 10000");
      this.#db.run("PRAGMA journal_size_limit = 67108864");
      this.#db.exec(OLD_INDEX);
      this.#db.exec(SCHEMA);
      // `meta.value` has integer affinity; an epoch starts with a letter, so it stays text.
      this.#db.run("INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)", [newEpoch()]);
      this.#epoch = String(
        this.#db.query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'epoch'").get()!.value,
      );
      let dropped =
        this.#db.query<{ value: number }, []>("SELECT value FROM meta WHERE key = 'dropped_up_to'").get()?.value ?? 0;
      if (strayUpTo > dropped) {
        // Kept, so that the ids stay beyond the old log's after a restart that finds no events.
        dropped = strayUpTo;
        this.#db.run(
          "INSERT INTO meta (key, value) VALUES ('dropped_up_to', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
          [dropped],
        );
      }
      let last = 0;
      // Rows as arrays, the quickest read: 100,000 events index in about 100 ms.
      for (const row of this.#db
        .query("SELECT id, event, channels FROM events WHERE id > ? ORDER BY id")
        .values(dropped)) {
        const [id, event, channels] = row as [number, string, string];
        this.#index.add(id, JSON.parse(channels) as Channel[], event);
        last = id;
      }
      this.#committedId = Math.max(last, dropped);
      this.#nextId = this.#committedId + 1;
      this.#droppedUpTo = dropped;
      const idsOf = "SELECT value FROM json_each($ids)";
      this.#q = {
        // Positional parameters on the append path: binding them is cheaper than binding an object.
        insertEvent: this.#db.prepare("INSERT INTO events (id, at, event, data, channels) VALUES (?, ?, ?, ?, ?)"),
        // A busy commit inserts its events this many to a statement: fewer steps into SQLite.
        insertEvents: this.#db.prepare(
          `INSERT INTO events (id, at, event, data, channels) VALUES ${Array(ROWS_PER_INSERT).fill("(?, ?, ?, ?, ?)").join(", ")}`,
        ),
        dropEvents: this.#db.prepare("DELETE FROM events WHERE id <= ?"),
        // reads has no index on event_id: each batch takes the first rows it finds.
        dropReads: this.#db.prepare(
          "DELETE FROM reads WHERE (user, event_id) IN (SELECT user, event_id FROM reads WHERE event_id <= ? LIMIT ?)",
        ),
        setDropped: this.#db.prepare(
          "INSERT INTO meta (key, value) VALUES ('dropped_up_to', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        ),
        totalChanges: this.#db.prepare<{ n: number }, []>("SELECT total_changes() AS n"),
        nthAfter: this.#db.prepare<{ id: number }, [number, number]>(
          "SELECT id FROM events WHERE id > ? ORDER BY id LIMIT 1 OFFSET ?",
        ),
        // Through the index on `at` (whose entries end with the id), so not a scan of every old event.
        lastOlder: this.#db.prepare<{ id: number }, [number]>(
          "SELECT id FROM events WHERE at < ? ORDER BY at DESC, id DESC LIMIT 1",
        ),
        byIds: this.#db.prepare<Row, Record<string, string>>(`SELECT * FROM events WHERE id IN (${idsOf})`),
        get: this.#db.prepare<Row, Record<string, number>>("SELECT * FROM events WHERE id = $id"),
      };
      const q = this.#q;
      this.#insert = this.#db.transaction((events: readonly StoredEvent[]) => {
        let i = 0;
        if (events.length >= ROWS_PER_INSERT) {
          const values: Array<string | number> = new Array(ROWS_PER_INSERT * 5);
          for (; i + ROWS_PER_INSERT <= events.length; i += ROWS_PER_INSERT) {
            for (let j = 0; j < ROWS_PER_INSERT; j++) {
              const event = events[i + j]!;
              const at = j * 5;
              values[at] = event.id;
              values[at + 1] = event.at;
              values[at + 2] = event.event;
              values[at + 3] = event.data;
              values[at + 4] = channelsText(event.channels);
            }
            q.insertEvents.run(...values);
          }
        }
        for (; i < events.length; i++) {
          const event = events[i]!;
          q.insertEvent.run(event.id, event.at, event.event, event.data, channelsText(event.channels));
        }
      });
    } catch (error) {
      if (!isCorrupt(error)) throw error;
      throw new HeraldError(
        `${path} is not a sound SQLite database (${(error as Error).message}): restore it from a backup, or move it away to start a new event log.`,
      );
    }
    this.#pruneInBackground(Date.now());
    this.#pruneTimer = setInterval(() => this.#pruneInBackground(Date.now()), PRUNE_EVERY_MS);
    this.#pruneTimer.unref();
  }

  /**
   * The log's connection, for what is kept in the same file (read marks, sign-outs, idempotency
   * keys): a second connection to the file made each commit of the log markedly slower.
   */
  get database(): Database {
    return this.#db;
  }

  async append(event: NewEvent, render?: Render): Promise<StoredEvent> {
    const id = this.#nextId++;
    const stored = {
      ...event,
      id,
      epoch: this.#epoch,
      data: typeof render === "function" ? render(id) : (render ?? event.data),
    };
    this.#pending.push(stored);
    this.#renders.push(render);
    if (!this.#batch) {
      let resolve!: (failed: Map<StoredEvent, unknown> | null) => void;
      const promise = new Promise<Map<StoredEvent, unknown> | null>((res) => (resolve = res));
      this.#batch = { promise, resolve };
      setImmediate(() => this.#commit());
    }
    const failed = await this.#batch.promise;
    if (failed?.has(stored)) throw failed.get(stored);
    return stored;
  }

  /** Inserts `events` in one transaction and indexes them; throws (storing none) if it fails. */
  #store(events: readonly StoredEvent[]): void {
    this.#insert(events);
    let bytes = 0;
    for (const event of events) {
      this.#index.add(event.id, event.channels, event.event);
      bytes += event.data.length;
    }
    this.#committedId = events.at(-1)?.id ?? this.#committedId;
    this.#sinceCheckpoint += bytes;
    this.#commitsSinceCheckpoint++;
    this.#commitsSinceRun++;
    if (this.#checkpointInFlight) this.#commitsDuringCheckpoint++;
    if (this.#sinceCheckpoint >= CHECKPOINT_BYTES || this.#commitsSinceCheckpoint >= CHECKPOINT_COMMITS)
      this.#checkpoint();
  }

  /**
   * Asks the checkpointer thread, on its own connection, to copy the WAL into the database file.
   * SQLite's own checkpoint runs on the connection that committed, so on the event loop, where a
   * large one holds up every stream and request (figures in docs/reliability.md).
   *
   * The WAL starts again from its beginning only when a commit finds it all copied. A checkpoint
   * on another thread copies up to the last commit at its start, and commits go on meanwhile. So
   * every `checkpointRunCommits` a run of checkpoints begins: a round that did not reach the end
   * is followed at once by another with less to copy, and the last, short round (at most the
   * `CHECKPOINT_ROUNDS`th) holds the commits back until it is over (`#holdCommits`, once a run).
   * A run that does not reach the end is tried again only after as many commits again. Without
   * runs, the WAL grew to `wal_autocheckpoint` pages and SQLite's own checkpoint, with its fsync,
   * ran on the loop.
   *
   * A checkpoint that fails (a full disk) is logged and tried again after a few commits, as is one
   * that finds the checkpoint lock taken (busy); SQLite's own goes on as before.
   */
  #checkpoint(): void {
    if (this.#checkpointInFlight || this.#closed || this.#path === ":memory:") return;
    this.#sinceCheckpoint = 0;
    this.#commitsSinceCheckpoint = 0;
    this.#commitsDuringCheckpoint = 0;
    this.#changesAtCheckpoint = this.#q.totalChanges.get()!.n;
    this.#checkpointInFlight = true;
    if (!this.#checkpointer) {
      const worker = new Worker(new URL("./checkpointer.ts", import.meta.url).href);
      worker.unref();
      worker.onmessage = (message: MessageEvent<CheckpointAnswer>) => this.#checkpointAnswered(message.data);
      worker.onerror = (event) => {
        // A thread that threw may be gone: the next checkpoint starts a new one.
        worker.terminate();
        if (this.#checkpointer === worker) this.#checkpointer = null;
        this.#checkpointInFlight = false;
        this.#endRun();
        this.#log?.warn("event log checkpointer failed; SQLite's own goes on", { error: String(event.message) });
      };
      this.#checkpointer = worker;
    }
    this.#checkpointer.postMessage({ path: this.#path });
  }

  #checkpointAnswered(answer: CheckpointAnswer): void {
    if (answer.closed) {
      this.#checkpointerClosed?.();
      return;
    }
    this.#checkpointInFlight = false;
    if (this.#closed) {
      // An answer after close() gave up waiting for the thread: the connection may be closed.
      this.#endRun();
      return;
    }
    const log = answer.log ?? -1;
    const checkpointed = answer.checkpointed ?? -1;
    if (!answer.done || answer.busy || log < 0 || checkpointed < 0) {
      this.#commitsSinceCheckpoint = CHECKPOINT_COMMITS - CHECKPOINT_RETRY_COMMITS;
      this.#endRun();
      if (!answer.done) this.#log?.warn("event log checkpoint failed; SQLite's own goes on", { error: answer.error });
      return;
    }
    this.checkpointsOffLoop++;
    // SQLite's figures are the WAL's at the checkpoint's start: whatever was written since is on
    // top, by the log's commits or any other writer on its connection.
    const toEnd = checkpointed >= log && this.#q.totalChanges.get()!.n === this.#changesAtCheckpoint;
    if (toEnd) {
      this.checkpointsToEnd++;
      this.#commitsSinceRun = 0;
    }
    if (toEnd || this.#commitsSinceRun < this.#runCommits) {
      this.#endRun();
      return;
    }
    if (++this.#checkpointRounds > CHECKPOINT_ROUNDS) {
      // The run did not reach the end: the next, after as many commits again.
      this.#commitsSinceRun = 0;
      this.#endRun();
      return;
    }
    if (
      this.#checkpointRounds === CHECKPOINT_ROUNDS ||
      this.#commitsDuringCheckpoint <= CHECKPOINT_LAST_ROUND_COMMITS
    ) {
      // The held round is the run's last, whether or not it reaches the end.
      this.#checkpointRounds = CHECKPOINT_ROUNDS;
      this.#holdCommits();
    }
    this.#checkpoint();
  }

  /** Ends the run to the WAL's end, if one is under way, and lets the commits go on. */
  #endRun(): void {
    this.#checkpointRounds = 0;
    this.#releaseCommits();
  }

  #holdCommits(): void {
    this.#commitsHeld ??= setTimeout(() => this.#releaseCommits(), this.#holdMs);
  }

  #releaseCommits(): void {
    if (!this.#commitsHeld) return;
    clearTimeout(this.#commitsHeld);
    this.#commitsHeld = null;
    if (this.#commitWaiting) {
      this.#commitWaiting = false;
      this.#commit();
    }
  }

  /**
   * Commits the pending events. A failed commit is tried once more (a lock held past the busy
   * timeout, an I/O error of a moment), then each event on its own, so that one that cannot be
   * stored (too large for the space left, say) fails alone. Those stored take consecutive ids
   * again, their data made anew where it names its id: no id is skipped.
   */
  #commit(): void {
    if (this.#commitsHeld && !this.#closed) {
      this.#commitWaiting = true;
      return;
    }
    const batch = this.#batch;
    const events = this.#pending;
    const renders = this.#renders;
    this.#batch = null;
    this.#pending = [];
    this.#renders = [];
    if (!batch) return;
    let firstError: unknown;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        this.#store(events);
        batch.resolve(null);
        return;
      } catch (error) {
        firstError ??= error;
      }
    }
    this.#log?.warn("event log commit failed twice; storing its events one by one", {
      events: events.length,
      error: String(firstError),
    });
    const failed = new Map<StoredEvent, unknown>();
    events.forEach((event, i) => {
      const id = this.#committedId + 1;
      if (event.id !== id) {
        event.id = id;
        const render = renders[i];
        if (typeof render === "function") event.data = render(id);
      }
      try {
        this.#store([event]);
      } catch (error) {
        failed.set(event, error);
      }
    });
    this.#nextId = this.#committedId + 1;
    batch.resolve(failed.size ? failed : null);
  }

  async flush(): Promise<void> {
    await this.#batch?.promise;
  }

  async epoch(): Promise<string> {
    return this.#epoch;
  }

  async lastId(): Promise<number> {
    return this.#committedId;
  }

  async covers(epoch: string, afterId: number): Promise<boolean> {
    return (
      epoch === this.#epoch &&
      Number.isSafeInteger(afterId) &&
      afterId >= this.#droppedUpTo &&
      afterId <= this.#committedId
    );
  }

  /** The events with `ids` that are still kept, in the order of `ids`. */
  #byIds(ids: readonly number[]): StoredEvent[] {
    if (ids.length === 0) return [];
    const rows = new Map(this.#q.byIds.all({ ids: JSON.stringify(ids) }).map((row) => [row.id, row]));
    const events: StoredEvent[] = [];
    for (const id of ids) {
      const row = rows.get(id);
      if (row) events.push(fromRow(row, this.#epoch));
    }
    return events;
  }

  async readAfter(afterId: number, channels: readonly Channel[], limit: number): Promise<StoredEvent[]> {
    return this.#byIds(this.#index.after(afterId, channels, limit));
  }

  async backlog(afterId: number, channels: readonly Channel[], max: number): Promise<number> {
    return this.#index.after(afterId, channels, max).length;
  }

  async latest(channels: readonly Channel[], event: string, limit: number, upTo?: number): Promise<StoredEvent[]> {
    return this.#byIds(this.#index.newest(channels, event, { upTo, limit }));
  }

  #get(id: number): StoredEvent | undefined {
    const row = this.#q.get.get({ id });
    return row ? fromRow(row, this.#epoch) : undefined;
  }

  async get(id: number): Promise<StoredEvent | undefined> {
    return this.#get(id);
  }

  async ids(
    channels: readonly Channel[],
    event: string,
    range: { above?: number; upTo?: number; limit?: number } = {},
  ): Promise<number[]> {
    return this.#index.newest(channels, event, range);
  }

  prune(now = Date.now()): Promise<void> {
    const pass = this.#pruning.then(() => this.#pruneInBatches(now));
    this.#pruning = pass.catch(() => {});
    return pass;
  }

  /** A prune from a timer: a failure (a full disk) is logged and the next interval tries again. */
  #pruneInBackground(now: number): void {
    this.prune(now).catch((error: unknown) =>
      this.#log?.error("event log prune failed; trying again later", { error: String(error) }),
    );
  }

  async #pruneInBatches(now: number): Promise<void> {
    const byCount = this.#committedId - this.#retention.maxEvents;
    const byAge = this.#q.lastOlder.get(now - this.#retention.maxAgeMs)?.id ?? 0;
    const upTo = Math.min(Math.max(byCount, byAge), this.#committedId);
    while (!this.#closed && this.#droppedUpTo < upTo) {
      const to = Math.min(upTo, this.#q.nthAfter.get(this.#droppedUpTo, PRUNE_BATCH - 1)?.id ?? upTo);
      this.#db.transaction(() => {
        this.#q.dropEvents.run(to);
        this.#q.setDropped.run(to);
      })();
      this.#droppedUpTo = to;
      this.#index.dropUpTo(to);
      await new Promise((resolve) => setImmediate(resolve));
    }
    while (!this.#closed && this.#q.dropReads.run(this.#droppedUpTo, PRUNE_BATCH).changes === PRUNE_BATCH) {
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#commitsHeld) clearTimeout(this.#commitsHeld);
    this.#commitsHeld = null;
    clearInterval(this.#pruneTimer);
    await this.#pruning;
    this.#commit();
    const worker = this.#checkpointer;
    if (worker) {
      // Its connection closes first, so that the log's own, the last, checkpoints what is left.
      await new Promise<void>((resolve) => {
        this.#checkpointerClosed = resolve;
        setTimeout(resolve, 2000).unref();
        worker.postMessage({ close: true });
      });
      worker.terminate();
      this.#checkpointer = null;
    }
    this.#db.close();
  }
}
