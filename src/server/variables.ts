/**
 * Every variable herald reads, declared once: its default, its bounds and its meaning. The loader
 * (`./config.ts`) takes defaults and bounds from here, and `docs/configuration.md`'s table is
 * generated from here (`npm run docs:config`; a test keeps the two equal).
 */
import { CORE_DEFAULTS } from "../core/defaults.ts";

/** One variable: its default (when it has a plain one), the bounds of a number, and what it means. */
export interface Variable {
  default?: number | string | boolean;
  min?: number;
  max?: number;
  /** How the default reads in the docs, when it is not the plain `default` (none, generated, …). */
  shown?: string;
  meaning: string;
}

export const VARIABLES = {
  PORT: { default: 3000, min: 0, max: 65535, meaning: "TCP port (`0` picks a free one)." },
  HOST: { default: "0.0.0.0", meaning: "Interface to listen on." },
  HERALD_DATA_DIR: {
    default: "./data",
    meaning:
      "Where herald keeps its files: the generated secret, the sqlite event log (`herald.db`) and the demo shop's products, watch lists and orders (`shop.db`, seeded with six products on first start).",
  },
  HERALD_SECRET: {
    shown: "generated",
    meaning:
      "Key (16+ characters) that signs session cookies and CSRF tokens. When unset, one is generated on first start and kept in `<HERALD_DATA_DIR>/secret` (mode 600), so restarts keep everyone signed in.",
  },
  HERALD_SESSION_TTL_S: { default: 7 * 24 * 3600, min: 60, meaning: "How long a sign-in lasts, in seconds (7 days)." },
  HERALD_JWT_SECRET: {
    shown: "none",
    meaning:
      "Key (16+ characters) that HS256 JSON Web Tokens from your app are signed with: they say who the request is (see [Connect your app](connect.md)).",
  },
  HERALD_JWT_PUBLIC_KEY: {
    shown: "none",
    meaning:
      "A PEM public key (RSA for RS256, P-256 for ES256), or the path of a file holding one, that verifies JSON Web Tokens from your app.",
  },
  HERALD_JWT_COOKIE: {
    default: "herald_jwt",
    meaning:
      "The cookie a JSON Web Token is read from (besides `Authorization: Bearer`); set it from an app on the same parent domain.",
  },
  HERALD_JWT_ISSUER: { shown: "none", meaning: "When set, a token's `iss` must equal it." },
  HERALD_JWT_AUDIENCE: { shown: "none", meaning: "When set, a token's `aud` must name it." },
  HERALD_AUTH_URL: {
    shown: "none",
    meaning:
      "Your app's URL that herald asks who a request is, forwarding its `Cookie` and `Authorization` (see [Connect your app](connect.md)).",
  },
  HERALD_AUTH_CACHE_S: {
    default: 30,
    min: 0,
    meaning: "How long the auth request's answer for one credential is kept, in seconds.",
  },
  HERALD_AUTH_TIMEOUT_MS: {
    default: 3_000,
    min: 10,
    meaning: "How long herald waits for the auth request; past it, that request is a 503.",
  },
  HERALD_DEMO_LOGIN: {
    shown: "`on` unless a JWT key or `HERALD_AUTH_URL` is set",
    meaning:
      "The demo sign-in: anyone who types a name is that user. Pages say so when it is on; `off` makes `/login` and `/logout` 404.",
  },
  HERALD_LOG: { default: "info", meaning: "Log level: `debug`, `info`, `warn`, `error`, `off`." },
  HERALD_HEARTBEAT_MS: {
    default: CORE_DEFAULTS.heartbeatMs,
    min: 10,
    meaning:
      "Longest a stream goes without a byte: a stream nothing was written to for between half this and this gets a `: ping` comment (an idle one, every interval); one that events keep busy gets none.",
  },
  HERALD_RETRY_MS: { default: 3_000, min: 0, meaning: "Reconnection delay sent to browsers as `retry:`." },
  HERALD_MAX_TOPICS: { default: 32, min: 1, max: 1000, meaning: "Most topics one stream may follow." },
  HERALD_PUBLISH_TOKENS: {
    shown: "none",
    meaning: "Comma-separated API tokens (16+ characters each). None: the API refuses everyone.",
  },
  HERALD_GROUPS: { shown: "none", meaning: "Groups and members: `admins=alice,bob;ops=carol`." },
  HERALD_ANONYMOUS: { default: true, shown: "`on`", meaning: "`off` requires sign-in for every stream." },
  HERALD_PRIVATE_TOPICS: {
    shown: "none",
    meaning: "Comma-separated topic patterns (`*` wildcard) that only `admins` may follow or send to.",
  },
  HERALD_PRESENCE_TOPICS: {
    shown: "none",
    meaning:
      "Comma-separated topic patterns (`*` wildcard) whose members are public: `GET /api/presence` lists who is on them, and the topic gets `join` and `leave` events as signed-in users come and go.",
  },
  HERALD_PUBLIC_URL: {
    shown: "none",
    meaning: "The URL people use; its origin is accepted for form posts, and `https:` makes cookies `Secure`.",
  },
  HERALD_TLS_CERT: {
    shown: "none",
    meaning:
      "Path of a PEM certificate file (the chain after it, if any): with `HERALD_TLS_KEY`, herald serves https on `PORT`, HTTP/2 to browsers that offer it and HTTP/1.1 to other clients; cookies are then `Secure` and answers carry HSTS. Set both or neither (see [HTTP/2 and TLS](scaling.md#http2-and-tls)).",
  },
  HERALD_TLS_KEY: {
    shown: "none",
    meaning: "Path of the PEM private key (unencrypted) of `HERALD_TLS_CERT`.",
  },
  HERALD_TRUST_PROXY: {
    default: 0,
    min: 0,
    max: 16,
    shown: "`off`",
    meaning:
      "`on` (one proxy) or a number of proxies (0\u201316) you run in front of herald: the client address is the `X-Forwarded-For` entry the outermost one added (the last with `on`).",
  },
  HERALD_CORS_ORIGINS: {
    shown: "none",
    meaning: "Comma-separated origins whose pages may embed herald's streams and fragments (CORS with credentials).",
  },
  HERALD_EVENT_LOG: {
    shown: "`sqlite` (`redis` with `REDIS_URL`)",
    meaning: "Where events are kept for replay: `sqlite` (`<HERALD_DATA_DIR>/herald.db`), `memory`, or `redis`.",
  },
  REDIS_URL: {
    shown: "none",
    meaning:
      "Redis for the event log and fan-out across processes (see [Scaling out on Redis](scaling.md#scaling-out-on-redis)).",
  },
  HERALD_REDIS_PREFIX: { default: "herald:", meaning: "Prefix of herald's Redis keys." },
  HERALD_REDIS_TIMEOUT_MS: {
    default: CORE_DEFAULTS.redisTimeoutMs,
    min: 10,
    meaning:
      "How long herald waits for Redis to answer a command; past it, a publish answers 503 with `Retry-After` and stores nothing.",
  },
  HERALD_WORKERS: { default: 1, min: 1, max: 64, meaning: "Processes serving one port; above 1 needs `REDIS_URL`." },
  HERALD_PRESENCE_MS: {
    default: CORE_DEFAULTS.presenceMs,
    min: 50,
    meaning:
      "With Redis, how often each process writes its stream counts there; one silent for three times this is no longer counted.",
  },
  HERALD_MONITOR_MS: { default: 2_000, min: 50, meaning: "How often admins' streams get the monitor's figures." },
  HERALD_LOG_MAX_EVENTS: { default: 100_000, min: 1, meaning: "Most events kept for replay." },
  HERALD_LOG_MAX_AGE_S: {
    default: 7 * 24 * 3600,
    min: 1,
    meaning: "Oldest event kept for replay, in seconds (7 days).",
  },
  HERALD_SQLITE_SYNC: { default: "normal", meaning: "`full`: every commit waits for the disk." },
  HERALD_MAX_BUFFER: {
    default: CORE_DEFAULTS.maxBuffer,
    min: 1024,
    meaning:
      "Unsent bytes of live events a stream may hold in herald before it is dropped as a slow consumer (its connection is reset). A replay or snapshot does not count.",
  },
  HERALD_CLIENT_TIMEOUT_MS: {
    default: CORE_DEFAULTS.clientTimeoutMs,
    min: 0,
    meaning: "A stream whose socket has not drained for this long is dropped as stale (`0`: never).",
  },
  HERALD_DRAIN_MS: {
    default: 5_000,
    min: 0,
    meaning: "On shutdown, clients are told to come back at random within this window.",
  },
  HERALD_INBOX_SIZE: { default: 50, min: 1, max: 1000, meaning: "Notifications a page and a snapshot show." },
  HERALD_REPLAY_MAX_ANONYMOUS: {
    default: 1_000,
    min: 0,
    meaning:
      "Most missed events a stream that is not signed in gets replayed when it resumes; with more, it gets a `snapshot` and a `history-cut` instead. Signed-in streams are not limited.",
  },
  HERALD_MAX_CLIENTS: {
    default: 10_000,
    min: 1,
    meaning: "Most open streams in total; past it, 503 + `Retry-After: 30`.",
  },
  HERALD_MAX_STREAMS_PER_USER: {
    default: 10,
    min: 1,
    meaning: "Most open streams per signed-in user; past it, 429 + `Retry-After: 30`.",
  },
  HERALD_STREAMS_PER_IP_PER_S: {
    default: 10,
    min: 1,
    meaning: "Most new streams per client address per second (bursts of 2\u00d7); past it, 429 + `Retry-After`.",
  },
  HERALD_PUBLISH_RATE_USER: {
    default: 5,
    min: 1,
    meaning: "Most publishes per user per second, send form (bursts of 2\u00d7); past it, 429 + `Retry-After`.",
  },
  HERALD_PUBLISH_RATE_TOKEN: {
    default: 500,
    min: 1,
    meaning: "Most published events per API token per second (bursts of 2\u00d7); past it, 429 + `Retry-After`.",
  },
  HERALD_MAX_BODY_BYTES: { default: 256 * 1024, min: 1024, meaning: "Most request body bytes; past it, 413." },
  HERALD_MAX_HTML_BYTES: { default: 16 * 1024, min: 64, meaning: "Most `html` bytes in one event; past it, 413." },
  HERALD_MAX_BATCH: {
    default: 100,
    min: 1,
    meaning: "Most events in one API request, and targets of one event; past it, 413.",
  },
  HERALD_DEMO: {
    default: true,
    shown: "`on`",
    meaning:
      "`off` runs herald without the demo shop: no `/inventory`, `/orders` or `/live`, no shop timers, no `shop.db`.",
  },
  HERALD_MARKET_MS: {
    default: 2_000,
    min: 50,
    meaning: "How often topic `market` gets new prices, while any stream follows it.",
  },
  HERALD_METRICS_MS: {
    default: 3_000,
    min: 50,
    meaning: "How often topic `metrics` gets this process's figures, while any stream follows it.",
  },
  HERALD_ORDER_STEP_MS: { default: 3_000, min: 10, meaning: "Time between the status steps of a demo order." },
  HERALD_HTMX: {
    default: "2",
    meaning:
      "The htmx pages are rendered for: `2` (htmx 2 + htmx-ext-sse) or `4` (htmx 4 + hx-sse); `?htmx=` overrides it per page. See [htmx 2 and htmx 4](htmx.md#htmx-2-and-htmx-4).",
  },
} as const satisfies Record<string, Variable>;

export type VariableName = keyof typeof VARIABLES;

/** The docs' table of every variable, in Markdown. */
export function variablesTable(): string {
  const rows = Object.entries(VARIABLES).map(([name, v]: [string, Variable]) => {
    const shownDefault = v.shown ?? (v.default === undefined ? "none" : `\`${v.default}\``);
    const bounds =
      v.min === undefined ? "" : v.max === undefined ? ` At least ${v.min}.` : ` From ${v.min} to ${v.max}.`;
    return `| \`${name}\` | ${shownDefault} | ${v.meaning}${bounds} |`;
  });
  return ["| variable | default | meaning |", "|---|---|---|", ...rows].join("\n");
}

/** `docs` with the table between its `variables:start` and `variables:end` markers replaced. */
export function withVariablesTable(docs: string): string {
  return docs.replace(/(<!-- variables:start[^>]*-->\n)[\s\S]*?(<!-- variables:end -->)/, `$1${variablesTable()}\n$2`);
}

// `bun src/server/variables.ts` (`npm run docs:config`) rewrites the table in docs/configuration.md.
if (import.meta.main) {
  const path = new URL("../../docs/configuration.md", import.meta.url).pathname;
  await Bun.write(path, withVariablesTable(await Bun.file(path).text()));
}
