/**
 * The herald app: a hub, its routes and a `Bun.serve` server, built from a `Config`.
 * No side effects until `startHerald` is called, so tests start as many as they like on port 0.
 */
import type { Server } from "bun";
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "./config.ts";
import { identify, viewerOf, type AppContext } from "./context.ts";
import { CsrfTokens } from "./csrf.ts";
import { HeraldError, InputError, isCorrupt, isDiskFull } from "../core/errors.ts";
import { HttpError } from "./errors.ts";
import { MemoryEventLog, RedisEventLog, SqliteEventLog, type EventLog } from "../core/eventlog/index.ts";
import { RedisUnavailableError } from "../core/eventlog/redis.ts";
import { Hub } from "../core/hub.ts";
import { Inventory } from "../shop/inventory.ts";
import { startLiveFeeds } from "../shop/live.ts";
import { Orders } from "../shop/orders.ts";
import { Outbox, publishOutbox } from "../shop/outbox.ts";
import { RateLimiter } from "./limits.ts";
import { createLogger, type Logger } from "./logger.ts";
import { Policy, type AuthorizeHook } from "./policy.ts";
import { RedisPresence } from "../core/presence.ts";
import { MemoryRevocations, RedisRevocations, SqliteRevocations, type Revocations } from "./revocations.ts";
import { errorResponse, internalError, pathOf, secure } from "./respond.ts";
import { apiPublish } from "./routes/api.ts";
import { loadAssets, serveAsset } from "./routes/assets.ts";
import { login, logout } from "./routes/auth.ts";
import { withCors, preflight } from "./cors.ts";
import { clients, monitor, startMonitorFeed } from "./routes/clients.ts";
import { embed } from "./routes/embed.ts";
import { health } from "./routes/health.ts";
import { metrics } from "./routes/metrics.ts";
import { apiInventory, changeFromForm, inventory, watch } from "../shop/routes/inventory.ts";
import { live } from "../shop/routes/live.ts";
import { order, orders } from "../shop/routes/orders.ts";
import { home, markRead, notify } from "./routes/home.ts";
import { openStream } from "./routes/stream.ts";
import { loadSecret, SessionSigner } from "./session.ts";
import { encodeRetry } from "../core/sse.ts";
import { WORKER_ENV } from "./workers.ts";

type Handler = (req: Request, server: Server<unknown>) => Response | Promise<Response>;
type Route = (ctx: AppContext, req: Request, server: Server<unknown>) => Response | Promise<Response>;

/** What an app embedding herald can add to the configuration. */
export interface HeraldOptions {
  /** Decides subscribe and publish permissions; see `AuthorizeHook` in `src/server/policy.ts`. */
  authorize?: AuthorizeHook;
  /** Where log lines go. Defaults to JSON lines on stdout at `config.logLevel`. */
  log?: Logger;
}

/** A running herald. */
export interface Herald {
  server: Server<unknown>;
  hub: Hub;
  /** `http://host:port`, with the port actually bound. */
  url: string;
  ctx: AppContext;
  /** Closes every stream at once, stops the server and closes the event log. Calling it again does nothing. */
  stop(): Promise<void>;
  /**
   * The graceful way out (SIGTERM, SIGINT): stops taking connections, commits the log, tells each
   * stream to come back at a random moment within `HERALD_DRAIN_MS` (so clients do not return in
   * one burst), closes them, and closes the log.
   */
  shutdown(): Promise<void>;
}

/**
 * Refuses a request whose address cannot be parsed: a missing (HTTP/1.0) or malformed `Host`
 * leaves Bun's `req.url` without a valid origin, and every route reads the URL.
 */
function checkAddress(req: Request): void {
  if (!URL.canParse(req.url)) throw new HttpError(400, "The request's Host header is missing or malformed.");
}

/** Opens the configured event log. */
function openEventLog(config: Config, logger: Logger): EventLog {
  const retention = { maxEvents: config.logMaxEvents, maxAgeMs: config.logMaxAgeS * 1000 };
  if (config.eventLog === "memory") return new MemoryEventLog(retention);
  if (config.eventLog === "redis") {
    return new RedisEventLog({
      url: config.redisUrl!,
      retention,
      prefix: config.redisPrefix,
      timeoutMs: config.redisTimeoutMs,
      onBadEntry: (entry) => logger.warn("redis stream entry skipped: not one herald wrote", { entry }),
    });
  }
  mkdirSync(config.dataDir, { recursive: true });
  return new SqliteEventLog(join(config.dataDir, "herald.db"), { retention, sync: config.sqliteSync, log: logger });
}

/** Where sign-outs are kept: beside the events, so every process that shares the log honours them. */
function openRevocations(config: Config, log: Logger): Revocations {
  if (config.eventLog === "memory") return new MemoryRevocations();
  if (config.eventLog === "redis") return new RedisRevocations(config.redisUrl!, config.redisPrefix, (message) => log.warn(message));
  return new SqliteRevocations(join(config.dataDir, "herald.db"));
}

/**
 * Warns once Redis answers when it keeps nothing across a restart: every event and every
 * client's position would be lost with it (the clients then get a snapshot and a history cut).
 */
function warnWithoutPersistence(log: RedisEventLog, logger: Logger, url: string): void {
  let told = false;
  const check = (): void => {
    log.persistence().then(
      (settings) => {
        if (settings && settings.appendonly !== "yes" && settings.save.trim() === "") {
          logger.warn("redis keeps nothing across a restart (appendonly no, save \"\"): a Redis restart loses every event; turn on appendonly", settings);
        }
      },
      // Not reachable yet: say so once, and ask again later (not worth keeping a process alive for).
      () => {
        if (!told) logger.warn("redis unreachable: answering 503 until it is; check REDIS_URL", { redis: new URL(url).host });
        told = true;
        setTimeout(check, 5_000).unref();
      },
    );
  };
  check();
}

/** The demo shop's database (`/inventory`, `/orders`), beside the event log, with its outbox, products and orders. */
function openShop(config: Config, log: Logger): { db: Database; outbox: Outbox; inventory: Inventory; orders: Orders } {
  mkdirSync(config.dataDir, { recursive: true });
  const path = join(config.dataDir, "shop.db");
  try {
    const db = new Database(path);
    // Several worker processes may open the file at once: wait for a lock rather than fail.
    db.run("PRAGMA busy_timeout = 5000");
    db.run("PRAGMA journal_mode = WAL");
    const slot = Number(process.env[WORKER_ENV] ?? 0) || 0;
    const outbox = new Outbox(db, { slot, workers: config.workers, log });
    return { db, outbox, inventory: new Inventory(db), orders: new Orders(db, config.orderStepMs, outbox, log) };
  } catch (error) {
    if (!isCorrupt(error)) throw error;
    throw new HeraldError(`${path} is not a sound SQLite database (${(error as Error).message}): restore it from a backup, or move it away to start the demo shop afresh.`);
  }
}

/** Starts herald with `config` (`port: 0` picks a free port). */
export function startHerald(config: Config, options: HeraldOptions = {}): Herald {
  const secret = loadSecret(config.secret, config.dataDir);
  const { limits } = config;
  const log = options.log ?? createLogger(config.logLevel);
  const shop = openShop(config, log);
  const hub = new Hub({ log: openEventLog(config, log), heartbeatMs: config.heartbeatMs, clientTimeoutMs: config.clientTimeoutMs });
  const startedAt = Date.now();
  const ctx: AppContext = {
    config,
    hub,
    sessions: new SessionSigner(secret, config.sessionTtlS),
    revocations: openRevocations(config, log),
    csrf: new CsrfTokens(secret),
    policy: new Policy({ anonymous: config.anonymous, privateTopics: config.privateTopics, authorize: options.authorize }),
    presence: null,
    log,
    rates: {
      streamsPerIp: new RateLimiter(limits.streamsPerIpPerS),
      publishesPerUser: new RateLimiter(limits.publishesPerUserPerS),
      publishesPerToken: new RateLimiter(limits.publishesPerTokenPerS),
    },
    startedAt,
    inventory: shop.inventory,
    orders: shop.orders,
    outbox: shop.outbox,
    live: startLiveFeeds(hub, startedAt, { marketMs: config.marketMs, metricsMs: config.metricsMs }),
  };
  ctx.outbox.start(publishOutbox(ctx));
  ctx.orders.start();

  const stopMonitorFeed = startMonitorFeed(ctx, config.monitorMs);
  if (config.eventLog === "redis") ctx.presence = new RedisPresence(ctx.hub, { url: config.redisUrl!, prefix: config.redisPrefix, intervalMs: config.presenceMs, timeoutMs: config.redisTimeoutMs });
  if (hub.log instanceof RedisEventLog) warnWithoutPersistence(hub.log, ctx.log, config.redisUrl!);

  // Every route goes through here: the request's address is checked and its sender identified,
  // thrown HttpErrors become answers in the asker's format, anything else a logged 500, and every
  // response gets the security headers. Static files need no identity; streams and embed
  // fragments may be used from the origins in HERALD_CORS_ORIGINS, refusals included.
  const answer = async (handler: Route, req: Request, server: Server<unknown>, identified: boolean): Promise<Response> => {
    const viewer = () => viewerOf(ctx, req);
    try {
      checkAddress(req);
      if (identified) await identify(ctx, req);
      return await handler(ctx, req, server);
    } catch (error) {
      if (error instanceof HttpError) return errorResponse(req, error, viewer, config.retryMs);
      if (error instanceof InputError) return errorResponse(req, new HttpError(400, error.message), viewer, config.retryMs);
      if (error instanceof URIError) {
        const malformed = new HttpError(400, "The address has a malformed percent-encoding (a % not followed by two hex digits, or bytes that are not UTF-8).");
        return errorResponse(req, malformed, viewer, config.retryMs);
      }
      if (error instanceof RedisUnavailableError) {
        ctx.log.warn("redis unreachable", { method: req.method, path: pathOf(req) });
        const refused = new HttpError(503, "herald cannot reach its event store (Redis) right now, so nothing was sent; try again shortly.", { "retry-after": "5" });
        return errorResponse(req, refused, viewer, config.retryMs);
      }
      if (isDiskFull(error)) {
        ctx.log.error("disk full", { method: req.method, path: pathOf(req), data_dir: config.dataDir });
        const refused = new HttpError(507, "herald's disk is full, so nothing was stored or sent; try again once space has been freed.", { "retry-after": "30" });
        return errorResponse(req, refused, viewer, config.retryMs);
      }
      return internalError(req, error, ctx.log, viewer);
    }
  };
  const route =
    (handler: Route, { identified = true, cors = false } = {}): Handler =>
    async (req, server) => {
      const response = await answer(handler, req, server, identified);
      return secure(cors ? withCors(ctx, req, response) : response);
    };

  const routes: Record<string, Partial<Record<"GET" | "POST" | "OPTIONS", Handler>>> = {
    "/": { GET: route(home) },
    "/login": { POST: route(login) },
    "/logout": { POST: route(logout) },
    "/notify": { POST: route(notify) },
    "/notifications/read": { POST: route(markRead) },
    "/sse": { GET: route(openStream, { cors: true }), OPTIONS: route(preflight) },
    "/embed/:topic": { GET: route(embed, { cors: true }), OPTIONS: route(preflight) },
    "/api/publish": { POST: route(apiPublish) },
    "/api/clients": { GET: route(clients) },
    "/monitor": { GET: route(monitor) },
    "/inventory": { GET: route(inventory) },
    "/inventory/:sku": { POST: route(changeFromForm) },
    "/inventory/:sku/watch": { POST: route(watch) },
    "/api/inventory/:sku": { POST: route(apiInventory) },
    "/live": { GET: route(live) },
    "/orders": { GET: route(orders), POST: route(order) },
    "/healthz": { GET: route(health) },
    "/metrics": { GET: route(metrics) },
  };
  for (const [path, asset] of loadAssets()) routes[path] = { GET: route((_ctx, req) => serveAsset(asset, req), { identified: false }) };

  const server = Bun.serve({
    port: config.port,
    hostname: config.host,
    // Bun's development mode answers an uncaught error with a page of source lines and paths.
    development: false,
    // The last resort, for an error thrown by the error path itself: a bare 500, still secured.
    error(error) {
      ctx.log.error("unhandled error", { error: String(error instanceof Error ? error.stack : error) });
      return secure(new Response("Something went wrong on the server; it has been logged.\n", { status: 500, headers: { "content-type": "text/plain; charset=utf-8" } }));
    },
    // Several worker processes listen on the same port; the kernel spreads connections over them.
    reusePort: config.workers > 1,
    routes,
    // Bun calls this for paths without a route and for methods a route does not take.
    fetch: route(
      (_ctx, req) => {
        const path = new URL(req.url).pathname;
        const methods = routes[path];
        if (!methods) throw new HttpError(404, `There is no page at ${path}.`);
        const allow = Object.keys(methods).join(", ");
        throw new HttpError(405, `${path} takes ${allow}, not ${req.method}.`, { allow });
      },
      { identified: false },
    ),
  });

  let closed = false;
  return {
    server,
    hub: ctx.hub,
    url: `http://${config.host === "0.0.0.0" ? "localhost" : config.host}:${server.port}`,
    ctx,
    async stop() {
      if (closed) return;
      closed = true;
      stopMonitorFeed();
      ctx.live.stop();
      ctx.orders.close();
      ctx.outbox.close();
      await ctx.presence?.close();
      ctx.hub.close();
      await server.stop(true);
      await ctx.hub.log.close();
      await ctx.revocations.close();
      shop.db.close();
    },
    async shutdown() {
      if (closed) return;
      closed = true;
      stopMonitorFeed();
      ctx.live.stop();
      ctx.orders.close();
      ctx.outbox.close();
      const stopped = server.stop();
      await ctx.hub.log.flush();
      const clients = ctx.hub.clientCount;
      ctx.hub.close(() => encodeRetry(250 + Math.floor(Math.random() * config.drainMs)), "shutdown");
      await ctx.presence?.close();
      ctx.log.info("shutting down", { streams: clients, drain_ms: config.drainMs });
      await stopped;
      await ctx.hub.log.close();
      await ctx.revocations.close();
      shop.db.close();
    },
  };
}
