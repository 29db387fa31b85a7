/**
 * The sqlite log's checkpointer, run as a Worker: copies what the WAL holds into the database file
 * on a connection of its own, so that the copy and its fsync do not hold up the event loop (see
 * `SqliteEventLog`). Takes `{ path }` to checkpoint and `{ close: true }` to close its connection;
 * answers each with `{ done, busy, log, checkpointed }` (SQLite's row: whether the checkpoint
 * lock was taken, frames in the WAL, frames copied), `{ error }` or `{ closed }`.
 */
import { Database } from "bun:sqlite";

declare const self: Worker;

let db: Database | null = null;

self.onmessage = (message: MessageEvent<{ path?: string; close?: boolean }>) => {
  if (message.data.close) {
    db?.close();
    db = null;
    postMessage({ closed: true });
    return;
  }
  try {
    if (!db) {
      db = new Database(message.data.path!, { strict: true });
      db.run("PRAGMA busy_timeout = 5000");
      // This connection only reads and checkpoints when asked.
      db.run("PRAGMA wal_autocheckpoint = 0");
    }
    // PASSIVE: as many frames as it can without waiting for the writer or any reader.
    const row = db
      .query<{ busy: number; log: number; checkpointed: number }, []>("PRAGMA wal_checkpoint(PASSIVE)")
      .get();
    postMessage({ done: true, busy: row?.busy ?? 1, log: row?.log ?? -1, checkpointed: row?.checkpointed ?? -1 });
  } catch (error) {
    postMessage({ error: String(error) });
  }
};
