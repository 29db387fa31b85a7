/** The event log's interface and its three backends: memory, `bun:sqlite` and Redis Streams. */
export type { EventLog, NewEvent, Render, Retention, StoredEvent } from "./event-log.ts";
export { formatEventId, newEpoch, parseEventId, type Position } from "./epoch.ts";

export { MemoryEventLog } from "./memory.ts";
export { SqliteEventLog } from "./sqlite.ts";
export { RedisEventLog } from "./redis.ts";
