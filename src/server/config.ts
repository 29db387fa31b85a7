/**
 * Configuration, read once from the environment into typed values. A value that does not
 * parse stops the start-up with a message naming the variable, rather than running with a guess.
 */
import { GROUP_NAME, USER_ID } from "../core/channel.ts";
import { readFileSync } from "node:fs";
import { HeraldError } from "../core/errors.ts";
import { VARIABLES, type Variable, type VariableName } from "./variables.ts";
import type { HtmxVersion } from "./htmx.ts";
import { readTls, TLS_OPTIONS } from "./tls.ts";

export interface Config {
  /** TCP port. `PORT`, defaults to `3000`; `0` picks a free port. */
  port: number;
  /** Interface to listen on. `HOST`, defaults to `0.0.0.0`. */
  host: string;
  /** Longest a stream goes without a byte before a heartbeat comment. `HERALD_HEARTBEAT_MS`, defaults to `15000`. */
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
  /**
   * Bearer tokens for `POST /api/publish`. `HERALD_PUBLISH_TOKENS`, comma-separated; defaults to none (the API refuses
   * everyone).
   */
  publishTokens: string[];
  /** Group name → member user ids. `HERALD_GROUPS`, e.g. `admins=alice,bob;ops=carol`; defaults to no groups. */
  groups: Record<string, string[]>;
  /** Whether visitors who are not signed in may open streams. `HERALD_ANONYMOUS` (`on`/`off`), defaults to `on`. */
  anonymous: boolean;
  /**
   * Topic patterns (`*` matches any run of characters) that need permission. `HERALD_PRIVATE_TOPICS`, comma-separated;
   * defaults to none.
   */
  privateTopics: string[];
  /** The URL people reach herald at. `HERALD_PUBLIC_URL`; an `https:` URL makes cookies `Secure`. Defaults to none. */
  publicUrl: URL | undefined;
  /**
   * Path of a PEM certificate file: with `tlsKey`, herald's own server (`startHerald`, `bun src/main.ts`) serves
   * https with HTTP/2 for browsers that offer it and HTTP/1.1 for other clients, on one port. Cookies are then
   * `Secure`, and answers carry HSTS. `createHerald` opens no port: pass the same pair to your `Bun.serve` as
   * `tls`, with `http2: true`. `HERALD_TLS_CERT`; set both or neither. Defaults to none (plain http).
   */
  tlsCert: string | undefined;
  /** Path of the PEM private key (unencrypted) of `tlsCert`. `HERALD_TLS_KEY`; defaults to none. */
  tlsKey: string | undefined;
  /**
   * Origins allowed to embed herald's streams and fragments from their own pages (CORS with
   * credentials). `HERALD_CORS_ORIGINS`, comma-separated, e.g. `https://shop.example`; defaults to none.
   */
  corsOrigins: string[];
  /**
   * How many proxies you run in front of herald, each appending its peer to `X-Forwarded-For`:
   * the client address is the entry the outermost one added. `HERALD_TRUST_PROXY`: `off` (`0`,
   * the socket's peer), `on` (`1`), or a number of hops; defaults to `off`.
   */
  trustProxy: number;
  /** Log level: `debug`, `info`, `warn`, `error` or `off`. `HERALD_LOG`, defaults to `info`. */
  logLevel: LogLevel;
  limits: Limits;
  /**
   * Where events are kept: `sqlite` (a file in the data directory), `memory`, or `redis` (Redis
   * Streams at `REDIS_URL`, shared by several processes). `HERALD_EVENT_LOG`; the default is `redis`
   * when `REDIS_URL` is set, else `sqlite`.
   */
  eventLog: "sqlite" | "memory" | "redis";
  /** Redis, for the `redis` event log. `REDIS_URL`, e.g. `redis://127.0.0.1:6379`; defaults to none. */
  redisUrl: string | undefined;
  /** Prefix of herald's Redis keys. `HERALD_REDIS_PREFIX`, defaults to `herald:`. */
  redisPrefix: string;
  /**
   * How long herald waits for Redis to answer a command before it gives up (a publish then
   * answers 503 with `Retry-After`). `HERALD_REDIS_TIMEOUT_MS`, defaults to `2000`.
   */
  redisTimeoutMs: number;
  /**
   * Processes serving one port (`reusePort`), to hold more streams than one process's open-file
   * limit allows; they share the hub through Redis, so more than one needs `REDIS_URL`.
   * `HERALD_WORKERS`, defaults to `1`.
   */
  workers: number;
  /**
   * With Redis, how often each process writes its stream counts there; a process silent for three
   * times this long is no longer counted. `HERALD_PRESENCE_MS`, defaults to `2000`.
   */
  presenceMs: number;
  /** How often admins' streams get the monitor's figures. `HERALD_MONITOR_MS`, defaults to `2000`. */
  monitorMs: number;
  /** Most events kept for replay. `HERALD_LOG_MAX_EVENTS`, defaults to `100000`. */
  logMaxEvents: number;
  /** Oldest event kept for replay, in seconds. `HERALD_LOG_MAX_AGE_S`, defaults to `604800` (7 days). */
  logMaxAgeS: number;
  /**
   * `full` makes every sqlite commit wait for the disk; `normal` survives crashes of the process. `HERALD_SQLITE_SYNC`,
   * defaults to `normal`.
   */
  sqliteSync: "normal" | "full";
  /**
   * Unsent bytes a stream may hold before it is dropped as a slow consumer. `HERALD_MAX_BUFFER`, defaults to `1048576`
   * (1 MiB).
   */
  maxBuffer: number;
  /**
   * A stream whose socket has not drained for this long is dropped as stale. `HERALD_CLIENT_TIMEOUT_MS`, defaults to
   * `45000`; `0` never.
   */
  clientTimeoutMs: number;
  /** On shutdown, clients are told to come back at random within this window. `HERALD_DRAIN_MS`, defaults to `5000`. */
  drainMs: number;
  /** Notifications a page and a snapshot show. `HERALD_INBOX_SIZE`, defaults to `50`. */
  inboxSize: number;
  /**
   * Most events one stream that is not signed in may have replayed when it resumes; with more
   * missed, it gets a snapshot and a history-cut instead, so one anonymous request cannot pull the
   * whole log. `HERALD_REPLAY_MAX_ANONYMOUS`, defaults to `1000`.
   */
  replayMaxAnonymous: number;
  /** How often the `market` topic gets new prices, while someone follows it. `HERALD_MARKET_MS`, defaults to `2000`. */
  marketMs: number;
  /**
   * How often the `metrics` topic gets this process's figures, while someone follows it. `HERALD_METRICS_MS`, defaults
   * to `3000`.
   */
  metricsMs: number;
  /** Time between the status steps of a demo order. `HERALD_ORDER_STEP_MS`, defaults to `3000`. */
  orderStepMs: number;
  /**
   * Whether the demo shop (inventory, orders, live feeds; `shop.db`) runs beside herald. `HERALD_DEMO` (`on`/`off`),
   * defaults to `on`.
   */
  demo: boolean;
  /** Key for HS256 JSON Web Tokens. `HERALD_JWT_SECRET`; defaults to none. */
  jwtSecret: string | undefined;
  /** PEM public key for RS256 or ES256 tokens (or a file holding one). `HERALD_JWT_PUBLIC_KEY`; defaults to none. */
  jwtPublicKey: string | undefined;
  /** The cookie a token is read from. `HERALD_JWT_COOKIE`, defaults to `herald_jwt`. */
  jwtCookie: string;
  /** When set, a token's `iss` must equal it. `HERALD_JWT_ISSUER`; defaults to none. */
  jwtIssuer: string | undefined;
  /** When set, a token's `aud` must name it. `HERALD_JWT_AUDIENCE`; defaults to none. */
  jwtAudience: string | undefined;
  /** The app's URL herald asks who a request is. `HERALD_AUTH_URL`; defaults to none. */
  authUrl: URL | undefined;
  /** How long an auth request's answer is kept, in seconds. `HERALD_AUTH_CACHE_S`, defaults to `30`. */
  authCacheS: number;
  /** How long herald waits for the auth request. `HERALD_AUTH_TIMEOUT_MS`, defaults to `3000`. */
  authTimeoutMs: number;
  /** Topic patterns whose members are public (presence, `join`/`leave`). `HERALD_PRESENCE_TOPICS`, comma-separated; defaults to none. */
  presenceTopics: string[];
  /** Whether the demo sign-in (a typed name) is on. `HERALD_DEMO_LOGIN` (`on`/`off`); on unless a JWT key or `HERALD_AUTH_URL` is set. */
  demoLogin: boolean;
  /**
   * The htmx pages are rendered for (`2`: htmx 2 + htmx-ext-sse; `4`: htmx 4's hx-sse); `?htmx=` overrides it per page.
   * `HERALD_HTMX`, defaults to `2`.
   */
  htmx: HtmxVersion;
}

export const LOG_LEVELS = ["debug", "info", "warn", "error", "off"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Abuse bounds. Each has its own variable and its own refusal status. */
export interface Limits {
  /** Open streams in total; past it, 503. `HERALD_MAX_CLIENTS`, defaults to `10000`. */
  maxClients: number;
  /** Open streams per signed-in user; past it, 429. `HERALD_MAX_STREAMS_PER_USER`, defaults to `10`. */
  maxStreamsPerUser: number;
  /**
   * New streams per client address per second (bursts of twice that); past it, 429. `HERALD_STREAMS_PER_IP_PER_S`,
   * defaults to `10`.
   */
  streamsPerIpPerS: number;
  /**
   * Publishes per signed-in user per second (bursts of twice that); past it, 429. `HERALD_PUBLISH_RATE_USER`, defaults
   * to `5`.
   */
  publishesPerUserPerS: number;
  /**
   * Publishes per API token per second (bursts of twice that); past it, 429. `HERALD_PUBLISH_RATE_TOKEN`, defaults to
   * `500`.
   */
  publishesPerTokenPerS: number;
  /** Bytes in a request body; past it, 413. `HERALD_MAX_BODY_BYTES`, defaults to `262144` (256 KiB). */
  maxBodyBytes: number;
  /** Bytes of `html` in one published event; past it, 413. `HERALD_MAX_HTML_BYTES`, defaults to `16384`. */
  maxHtmlBytes: number;
  /** Events, or targets, in one API request; past it, 413. `HERALD_MAX_BATCH`, defaults to `100`. */
  maxBatch: number;
}

type Env = Record<string, string | undefined>;

/** A whole number, with its default and bounds from `VARIABLES`. */
function integer(env: Env, name: VariableName): number {
  const {
    default: fallback,
    min,
    max = Number.MAX_SAFE_INTEGER,
  } = VARIABLES[name] as Variable & { default: number; min: number };
  const text = env[name];
  if (text === undefined || text.trim() === "") return fallback;
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new HeraldError(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** Text, with its default from `VARIABLES`. */
function text(env: Env, name: VariableName): string {
  const value = env[name]?.trim();
  return value ? value : String((VARIABLES[name] as Variable).default);
}

function list(env: Env, name: string): string[] {
  return (env[name] ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");
}

/** `on` or `off`, with its default from `VARIABLES`. */
function flag(env: Env, name: VariableName, fallback = (VARIABLES[name] as Variable).default === true): boolean {
  const value = env[name]?.trim().toLowerCase();
  if (!value) return fallback;
  if (["on", "true", "1", "yes"].includes(value)) return true;
  if (["off", "false", "0", "no"].includes(value)) return false;
  throw new HeraldError(`${name} must be on or off, got ${JSON.stringify(env[name])}`);
}

function proxyHops(env: Env): number {
  const value = env.HERALD_TRUST_PROXY?.trim().toLowerCase();
  if (value && /^\d+$/.test(value)) return integer(env, "HERALD_TRUST_PROXY");
  if (value && !["on", "true", "yes", "off", "false", "no"].includes(value)) {
    throw new HeraldError(
      `HERALD_TRUST_PROXY must be on, off or a number of proxies (0–16), got ${JSON.stringify(env.HERALD_TRUST_PROXY)}`,
    );
  }
  return flag(env, "HERALD_TRUST_PROXY", false) ? 1 : 0;
}

function groups(env: Env): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const entry of (env.HERALD_GROUPS ?? "").split(";")) {
    if (entry.trim() === "") continue;
    const [name = "", members = "", extra] = entry.split("=").map((part) => part.trim());
    if (!entry.includes("=") || extra !== undefined || !GROUP_NAME.test(name)) {
      throw new HeraldError(
        `HERALD_GROUPS: "${entry.trim()}" is not group=user,user (group names are lower-case letters, digits, ".", "_" or "-")`,
      );
    }
    const ids = members
      .split(",")
      .map((m) => m.trim().toLowerCase())
      .filter((m) => m !== "");
    for (const id of ids)
      if (!USER_ID.test(id)) throw new HeraldError(`HERALD_GROUPS: "${id}" in group ${name} is not a user name`);
    out[name] = [...new Set([...(out[name] ?? []), ...ids])];
  }
  return out;
}

function privateTopics(env: Env): string[] {
  return topicPatterns(env, "HERALD_PRIVATE_TOPICS");
}

function topicPatterns(env: Env, name: "HERALD_PRIVATE_TOPICS" | "HERALD_PRESENCE_TOPICS"): string[] {
  const patterns = list(env, name);
  for (const pattern of patterns) {
    if (!/^[a-z0-9._*-]{1,64}$/.test(pattern)) {
      throw new HeraldError(`${name}: "${pattern}" is not a topic pattern (topic characters and *)`);
    }
  }
  return patterns;
}

function workers(env: Env): number {
  const count = integer(env, "HERALD_WORKERS");
  if (count > 1 && !redisUrl(env)) {
    throw new HeraldError("HERALD_WORKERS above 1 needs REDIS_URL: the processes share their hub through Redis");
  }
  return count;
}

function redisUrl(env: Env): string | undefined {
  const value = env.REDIS_URL?.trim();
  if (!value) return undefined;
  if (!/^(redis|rediss|valkey|valkeys):\/\/./.test(value))
    throw new HeraldError(`REDIS_URL must be a redis:// URL, got ${JSON.stringify(value)}`);
  return value;
}

function corsOrigins(env: Env): string[] {
  return list(env, "HERALD_CORS_ORIGINS").map((origin) => {
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      // Reported below with the variable's name.
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.origin !== origin.replace(/\/$/, "")) {
      throw new HeraldError(`HERALD_CORS_ORIGINS: "${origin}" is not an origin such as https://shop.example`);
    }
    return url.origin;
  });
}

function publicUrl(env: Env): URL | undefined {
  const value = env.HERALD_PUBLIC_URL?.trim();
  if (!value) return undefined;
  try {
    const url = new URL(value);
    if (url.protocol === "http:" || url.protocol === "https:") return url;
  } catch {
    // Reported below with the variable's name.
  }
  throw new HeraldError(`HERALD_PUBLIC_URL must be an http(s) URL, got ${JSON.stringify(value)}`);
}

function oneOf<T extends string>(env: Env, name: VariableName, values: readonly T[], fallback: T): T {
  const value = (env[name]?.trim() || fallback).toLowerCase();
  if (!(values as readonly string[]).includes(value)) {
    throw new HeraldError(`${name} must be one of ${values.join(", ")}, got ${JSON.stringify(env[name])}`);
  }
  return value as T;
}

function tokens(env: Env): string[] {
  const values = list(env, "HERALD_PUBLISH_TOKENS");
  for (const token of values) {
    if (token.length < 16 || /\s/.test(token))
      throw new HeraldError("HERALD_PUBLISH_TOKENS: every token must be at least 16 characters, without spaces");
  }
  return values;
}

function optional(env: Env, name: string): string | undefined {
  return env[name]?.trim() || undefined;
}

/** How herald learns who a request is: a JWT key, an auth request, or the demo sign-in. */
function identity(env: Env) {
  const jwtSecret = optional(env, "HERALD_JWT_SECRET");
  if (jwtSecret !== undefined && jwtSecret.length < 16)
    throw new HeraldError("HERALD_JWT_SECRET must be at least 16 characters");
  let jwtPublicKey = optional(env, "HERALD_JWT_PUBLIC_KEY");
  if (jwtPublicKey !== undefined && !jwtPublicKey.includes("-----BEGIN")) {
    try {
      jwtPublicKey = readFileSync(jwtPublicKey, "utf8");
    } catch {
      throw new HeraldError(
        `HERALD_JWT_PUBLIC_KEY is neither a PEM key nor a file that can be read: ${JSON.stringify(jwtPublicKey)}`,
      );
    }
  }
  const authText = optional(env, "HERALD_AUTH_URL");
  let authUrl: URL | undefined;
  if (authText !== undefined) {
    authUrl = URL.canParse(authText) ? new URL(authText) : undefined;
    if (!authUrl || (authUrl.protocol !== "http:" && authUrl.protocol !== "https:")) {
      throw new HeraldError(`HERALD_AUTH_URL must be an http(s) URL, got ${JSON.stringify(authText)}`);
    }
  }
  const external = jwtSecret !== undefined || jwtPublicKey !== undefined || authUrl !== undefined;
  return {
    jwtSecret,
    jwtPublicKey,
    jwtCookie: text(env, "HERALD_JWT_COOKIE"),
    jwtIssuer: optional(env, "HERALD_JWT_ISSUER"),
    jwtAudience: optional(env, "HERALD_JWT_AUDIENCE"),
    authUrl,
    authCacheS: integer(env, "HERALD_AUTH_CACHE_S"),
    authTimeoutMs: integer(env, "HERALD_AUTH_TIMEOUT_MS"),
    demoLogin: flag(env, "HERALD_DEMO_LOGIN", !external),
  };
}

/**
 * Checks the settings `loadConfig` checks while it parses, for settings given in code
 * (`createHerald`). Throws `HeraldError` naming the option.
 */
export function checkConfig(config: Config): void {
  for (const token of config.publishTokens) {
    if (typeof token !== "string" || token.length < 16 || /\s/.test(token)) {
      throw new HeraldError("publishTokens: every token must be a string of at least 16 characters, without spaces");
    }
  }
  if (config.secret !== undefined && config.secret.length < 16)
    throw new HeraldError("secret must be at least 16 characters");
  if (config.jwtSecret !== undefined && config.jwtSecret.length < 16)
    throw new HeraldError("jwtSecret must be at least 16 characters");
  readTls(config.tlsCert, config.tlsKey, TLS_OPTIONS);
  if (config.eventLog === "redis" && !config.redisUrl) throw new HeraldError('eventLog "redis" needs redisUrl');
  if (config.workers > 1 && !config.redisUrl) throw new HeraldError("workers above 1 needs redisUrl");
  for (const [name, value] of Object.entries(config.limits)) {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new HeraldError(`limits.${name} must be a whole number from 1`);
  }
  if (!Number.isSafeInteger(config.inboxSize) || config.inboxSize < 1 || config.inboxSize > 1000) {
    throw new HeraldError("inboxSize must be a whole number from 1 to 1000");
  }
}

/** Every setting at its default: what `createHerald` starts from. */
export function defaultConfig(): Config {
  return loadConfig({});
}

/** Reads the configuration from `env` (defaults to `process.env`). Throws `HeraldError` on a bad value. */
export function loadConfig(env: Env = process.env): Config {
  if (env.HERALD_EVENT_LOG?.trim().toLowerCase() === "redis" && !redisUrl(env)) {
    throw new HeraldError("HERALD_EVENT_LOG=redis needs REDIS_URL");
  }
  const secret = env.HERALD_SECRET?.trim() || undefined;
  if (secret !== undefined && secret.length < 16) {
    throw new HeraldError("HERALD_SECRET must be at least 16 characters; unset it to have one generated");
  }
  const tlsCert = optional(env, "HERALD_TLS_CERT");
  const tlsKey = optional(env, "HERALD_TLS_KEY");
  readTls(tlsCert, tlsKey);
  return {
    port: integer(env, "PORT"),
    host: text(env, "HOST"),
    heartbeatMs: integer(env, "HERALD_HEARTBEAT_MS"),
    retryMs: integer(env, "HERALD_RETRY_MS"),
    secret,
    dataDir: text(env, "HERALD_DATA_DIR"),
    sessionTtlS: integer(env, "HERALD_SESSION_TTL_S"),
    maxTopicsPerStream: integer(env, "HERALD_MAX_TOPICS"),
    publishTokens: tokens(env),
    groups: groups(env),
    anonymous: flag(env, "HERALD_ANONYMOUS"),
    privateTopics: privateTopics(env),
    publicUrl: publicUrl(env),
    trustProxy: proxyHops(env),
    tlsCert,
    tlsKey,
    corsOrigins: corsOrigins(env),
    logLevel: oneOf(env, "HERALD_LOG", LOG_LEVELS, VARIABLES.HERALD_LOG.default),
    limits: {
      maxClients: integer(env, "HERALD_MAX_CLIENTS"),
      maxStreamsPerUser: integer(env, "HERALD_MAX_STREAMS_PER_USER"),
      streamsPerIpPerS: integer(env, "HERALD_STREAMS_PER_IP_PER_S"),
      publishesPerUserPerS: integer(env, "HERALD_PUBLISH_RATE_USER"),
      publishesPerTokenPerS: integer(env, "HERALD_PUBLISH_RATE_TOKEN"),
      maxBodyBytes: integer(env, "HERALD_MAX_BODY_BYTES"),
      maxHtmlBytes: integer(env, "HERALD_MAX_HTML_BYTES"),
      maxBatch: integer(env, "HERALD_MAX_BATCH"),
    },
    eventLog: oneOf(
      env,
      "HERALD_EVENT_LOG",
      ["sqlite", "memory", "redis"] as const,
      redisUrl(env) ? "redis" : "sqlite",
    ),
    redisUrl: redisUrl(env),
    redisPrefix: text(env, "HERALD_REDIS_PREFIX"),
    redisTimeoutMs: integer(env, "HERALD_REDIS_TIMEOUT_MS"),
    workers: workers(env),
    presenceMs: integer(env, "HERALD_PRESENCE_MS"),
    monitorMs: integer(env, "HERALD_MONITOR_MS"),
    logMaxEvents: integer(env, "HERALD_LOG_MAX_EVENTS"),
    logMaxAgeS: integer(env, "HERALD_LOG_MAX_AGE_S"),
    sqliteSync: oneOf(env, "HERALD_SQLITE_SYNC", ["normal", "full"] as const, VARIABLES.HERALD_SQLITE_SYNC.default),
    maxBuffer: integer(env, "HERALD_MAX_BUFFER"),
    clientTimeoutMs: integer(env, "HERALD_CLIENT_TIMEOUT_MS"),
    drainMs: integer(env, "HERALD_DRAIN_MS"),
    inboxSize: integer(env, "HERALD_INBOX_SIZE"),
    replayMaxAnonymous: integer(env, "HERALD_REPLAY_MAX_ANONYMOUS"),
    marketMs: integer(env, "HERALD_MARKET_MS"),
    metricsMs: integer(env, "HERALD_METRICS_MS"),
    orderStepMs: integer(env, "HERALD_ORDER_STEP_MS"),
    demo: flag(env, "HERALD_DEMO"),
    presenceTopics: topicPatterns(env, "HERALD_PRESENCE_TOPICS"),
    ...identity(env),
    htmx: Number(oneOf(env, "HERALD_HTMX", ["2", "4"] as const, VARIABLES.HERALD_HTMX.default)) as HtmxVersion,
  };
}
