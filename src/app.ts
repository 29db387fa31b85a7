/**
 * The herald app: a hub, its routes and a `Bun.serve` server, built from a `Config`.
 * No side effects until `startHerald` is called, so tests start as many as they like on port 0.
 */
import type { Server } from "bun";
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "./config.ts";
import { viewerOf, type AppContext } from "./context.ts";
import { CsrfTokens } from "./csrf.ts";
import { HttpError } from "./errors.ts";
import { MemoryEventLog, RedisEventLog, SqliteEventLog, type EventLog } from "./eventlog/index.ts";
import { RedisUnavailableError } from "./eventlog/redis.ts";
import { Hub } from "./hub.ts";
import { Inventory } from "./inventory.ts";
import { startLiveFeeds } from "./live.ts";
import { Orders, sendOrderStep } from "./orders.ts";
import { RateLimiter } from "./limits.ts";
import { createLogger, type Logger } from "./logger.ts";
import { Policy, type AuthorizeHook } from "./policy.ts";
import { RedisPresence } from "./presence.ts";
import { errorResponse, internalError, secure } from "./respond.ts";
import { apiPublish } from "./routes/api.ts";
import { loadAssets, serveAsset } from "./routes/assets.ts";
import { login, logout } from "./routes/auth.ts";
import { withCors, preflight } from "./cors.ts";
import { clients, monitor, startMonitorFeed } from "./routes/clients.ts";
import { embed } from "./routes/embed.ts";
import { health } from "./routes/health.ts";
import { metrics } from "./routes/metrics.ts";
import { apiInventory, changeFromForm, inventory, watch } from "./routes/inventory.ts";
import { live } from "./routes/live.ts";
import { order, orders } from "./routes/orders.ts";
import { home, markRead, notify } from "./routes/pages.ts";
import { openStream } from "./routes/stream.ts";
import { loadSecret, SessionSigner } from "./session.ts";
import { encodeRetry } from "./sse.ts";

type Handler = (req: Request, server: Server<unknown>) => Response | Promise<Response>;
type Route = (ctx: AppContext, req: Request, server: Server<unknown>) => Response | Promise<Response>;

/** What an app embedding herald can add to the configuration. */
export interface HeraldOptions {
  /** Decides subscribe and publish permissions; see `AuthorizeHook` in `src/policy.ts`. */
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
  return new SqliteEventLog(join(config.dataDir, "herald.db"), { retention, sync: config.sqliteSync });
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

/** The demo shop's database (`/inventory`, `/orders`), beside the event log. */
function openShop(config: Config): Database {
  mkdirSync(config.dataDir, { recursive: true });
  const db = new Database(join(config.dataDir, "shop.db"));
  // Several worker processes may open the file at once: wait for a lock rather than fail.
  db.run("PRAGMA busy_timeout = 5000");
  db.run("PRAGMA journal_mode = WAL");
  return db;
}

/** Starts herald with `config` (`port: 0` picks a free port). */
export function startHerald(config: Config, options: HeraldOptions = {}): Herald {
  const secret = loadSecret(config.secret, config.dataDir);
  const { limits } = config;
  const shop = openShop(config);
  const logger = options.log ?? createLogger(config.logLevel);
  const hub = new Hub({ log: openEventLog(config, logger), heartbeatMs: config.heartbeatMs, clientTimeoutMs: config.clientTimeoutMs });
  const startedAt = Date.now();
  const ctx: AppContext = {
    config,
    hub,
    sessions: new SessionSigner(secret, config.sessionTtlS),
    csrf: new CsrfTokens(secret),
    policy: new Policy({ anonymous: config.anonymous, privateTopics: config.privateTopics, authorize: options.authorize }),
    presence: null,
    log: logger,
    rates: {
      streamsPerIp: new RateLimiter(limits.streamsPerIpPerS),
      publishesPerUser: new RateLimiter(limits.publishesPerUserPerS),
      publishesPerToken: new RateLimiter(limits.publishesPerTokenPerS),
    },
    startedAt,
    inventory: new Inventory(shop),
    orders: new Orders(shop, config.orderStepMs),
    live: startLiveFeeds(hub, startedAt, { marketMs: config.marketMs, metricsMs: config.metricsMs }),
  };
  ctx.orders.start(sendOrderStep(ctx));

  const stopMonitorFeed = startMonitorFeed(ctx, config.monitorMs);
  if (config.eventLog === "redis") ctx.presence = new RedisPresence(ctx.hub, { url: config.redisUrl!, prefix: config.redisPrefix, intervalMs: config.presenceMs, timeoutMs: config.redisTimeoutMs });
  if (hub.log instanceof RedisEventLog) warnWithoutPersistence(hub.log, ctx.log, config.redisUrl!);

  // Every route goes through here: thrown HttpErrors become answers in the asker's format, anything
  // else a logged 500, and every response gets the security headers.
  const route =
    (handler: Route): Handler =>
    async (req, server) => {
      const viewer = () => viewerOf(ctx, req);
      try {
        return secure(await handler(ctx, req, server));
      } catch (error) {
        if (error instanceof HttpError) return secure(errorResponse(req, error, viewer, config.retryMs));
        if (error instanceof RedisUnavailableError) {
          ctx.log.warn("redis unreachable", { method: req.method, path: new URL(req.url).pathname });
          const refused = new HttpError(503, "herald cannot reach its event store (Redis) right now, so nothing was sent; try again shortly.", { "retry-after": "5" });
          return secure(errorResponse(req, refused, viewer, config.retryMs));
        }
        return secure(internalError(req, error, ctx.log, viewer));
      }
    };

  // Streams and embed fragments may be used from the origins in HERALD_CORS_ORIGINS.
  const shared = (handler: Route): Route => async (c, req, server) => withCors(c, req, await handler(c, req, server));
  const routes: Record<string, Partial<Record<"GET" | "POST" | "OPTIONS", Handler>>> = {
    "/": { GET: route(home) },
    "/login": { POST: route(login) },
    "/logout": { POST: route(logout) },
    "/notify": { POST: route(notify) },
    "/notifications/read": { POST: route(markRead) },
    "/sse": { GET: route(shared(openStream)), OPTIONS: route(preflight) },
    "/embed/:topic": { GET: route(shared(embed)), OPTIONS: route(preflight) },
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
  for (const [path, asset] of loadAssets()) routes[path] = { GET: route((_ctx, req) => serveAsset(asset, req)) };

  const server = Bun.serve({
    port: config.port,
    hostname: config.host,
    // Several worker processes listen on the same port; the kernel spreads connections over them.
    reusePort: config.workers > 1,
    routes,
    // Bun calls this for paths without a route and for methods a route does not take.
    fetch: route((_ctx, req) => {
      const path = new URL(req.url).pathname;
      const methods = routes[path];
      if (!methods) throw new HttpError(404, `There is no page at ${path}.`);
      const allow = Object.keys(methods).join(", ");
      throw new HttpError(405, `${path} takes ${allow}, not ${req.method}.`, { allow });
    }),
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
      await ctx.presence?.close();
      ctx.hub.close();
      await server.stop(true);
      await ctx.hub.log.close();
      shop.close();
    },
    async shutdown() {
      if (closed) return;
      closed = true;
      stopMonitorFeed();
      ctx.live.stop();
      ctx.orders.close();
      const stopped = server.stop();
      await ctx.hub.log.flush();
      const clients = ctx.hub.clientCount;
      ctx.hub.close(() => encodeRetry(250 + Math.floor(Math.random() * config.drainMs)), "shutdown");
      await ctx.presence?.close();
      ctx.log.info("shutting down", { streams: clients, drain_ms: config.drainMs });
      await stopped;
      await ctx.hub.log.close();
      shop.close();
    },
  };
}
