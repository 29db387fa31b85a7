/**
 * The core's defaults, declared once: the hub, its streams and its Redis clients use them when
 * an option is not given, and the server's variables table (`src/server/variables.ts`) takes
 * the same values as the defaults of the matching `HERALD_*` variables.
 */
export const CORE_DEFAULTS = {
  /** Longest a stream goes without a byte before a heartbeat comment (an idle one gets one every interval). */
  heartbeatMs: 15_000,
  /** A stream whose socket has not drained for this long is dropped as stale. */
  clientTimeoutMs: 45_000,
  /** Unsent bytes of live events a stream may hold before it is dropped as a slow consumer. */
  maxBuffer: 1024 * 1024,
  /** How long a Redis command may take before it counts as failed. */
  redisTimeoutMs: 2_000,
  /** With Redis, how often each process writes its stream counts there. */
  presenceMs: 2_000,
  /** With a shared log, how long a publisher waits for its event to come round before it is answered anyway. */
  followWaitMs: 5_000,
} as const;
