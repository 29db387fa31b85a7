/**
 * Configuration, read once from the environment into typed values. A value that does not
 * parse stops the start-up with a message naming the variable, rather than running with a guess.
 */
import { HeraldError } from "./errors.ts";

export interface Config {
  /** TCP port. `PORT`, defaults to `3000`; `0` picks a free port. */
  port: number;
  /** Interface to listen on. `HOST`, defaults to `0.0.0.0`. */
  host: string;
  /** Milliseconds between heartbeat comments on every stream. `HERALD_HEARTBEAT_MS`, defaults to `15000`. */
  heartbeatMs: number;
  /** Reconnection delay sent to browsers as `retry:`. `HERALD_RETRY_MS`, defaults to `3000`. */
  retryMs: number;
  /** Key for signing session cookies. `HERALD_SECRET`; when unset, generated once and kept in the data directory. */
  secret: string | undefined;
  /** Where herald keeps its files (the generated secret). `HERALD_DATA_DIR`, defaults to `./data`. */
  dataDir: string;
  /** How long a sign-in lasts, in seconds. `HERALD_SESSION_TTL_S`, defaults to `604800` (7 days). */
  sessionTtlS: number;
  /** Most topics one stream may follow. `HERALD_MAX_TOPICS`, defaults to `32`. */
  maxTopicsPerStream: number;
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const text = env[name];
  if (text === undefined || text.trim() === "") return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new HeraldError(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}

function text(env: Env, name: string, fallback: string): string {
  const value = env[name]?.trim();
  return value ? value : fallback;
}

/** Reads the configuration from `env` (defaults to `process.env`). Throws `HeraldError` on a bad value. */
export function loadConfig(env: Env = process.env): Config {
  const secret = env.HERALD_SECRET?.trim() || undefined;
  if (secret !== undefined && secret.length < 16) {
    throw new HeraldError("HERALD_SECRET must be at least 16 characters; unset it to have one generated");
  }
  return {
    port: integer(env, "PORT", 3000, 0, 65535),
    host: text(env, "HOST", "0.0.0.0"),
    heartbeatMs: integer(env, "HERALD_HEARTBEAT_MS", 15_000, 10),
    retryMs: integer(env, "HERALD_RETRY_MS", 3_000, 0),
    secret,
    dataDir: text(env, "HERALD_DATA_DIR", "./data"),
    sessionTtlS: integer(env, "HERALD_SESSION_TTL_S", 7 * 24 * 3600, 60),
    maxTopicsPerStream: integer(env, "HERALD_MAX_TOPICS", 32, 1, 1000),
  };
}
