/**
 * herald as a library: `createHerald(options)` builds the hub, its services and its routes, and
 * answers requests through `herald.fetch` (or `herald.routes` for `Bun.serve({ routes })`), in an
 * app's own server beside its own routes. It opens no port and starts no app of its own: the demo
 * shop is added by `src/app.ts` through the same `addRoutes`/`addPage`/`use` an app would call.
 *
 * @example
 * const herald = await createHerald({ eventLog: "sqlite", dataDir: "./data" });
 * Bun.serve({ routes: { ...herald.routes, "/mine": () => new Response("mine") }, fetch: herald.fetch });
 * await herald.hub.publishToUser("alice", { event: "notification", data: html`<li>Hi</li>`.value });
 */
import type { Server } from "bun";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { InputError, isDiskFull } from "../core/errors.ts";
import { MemoryEventLog, RedisEventLog, SqliteEventLog, type EventLog } from "../core/eventlog/index.ts";
import { RedisUnavailableError } from "../core/eventlog/redis.ts";
import { LocalControl, RedisControl } from "../core/control.ts";
import { Hub } from "../core/hub.ts";
import { RedisPresence } from "../core/presence.ts";
import { MemoryReadMarks, RedisReadMarks, SqliteReadMarks, type ReadMarks } from "../core/read-marks.ts";
import { encodeRetry } from "../core/sse.ts";
import { checkConfig, defaultConfig, type Config } from "./config.ts";
import { identify, viewerOf, type AppContext } from "./context.ts";
import {
  MemoryIdempotencyKeys,
  RedisIdempotencyKeys,
  SqliteIdempotencyKeys,
  type IdempotencyKeys,
} from "./idempotency.ts";
import { Identity } from "./identity.ts";
import {
  MemoryFollowedTopics,
  RedisFollowedTopics,
  SqliteFollowedTopics,
  type FollowedTopics,
} from "./followed-topics.ts";
import { preflight, withCors } from "./cors.ts";
import { CsrfTokens } from "./csrf.ts";
import { HttpError } from "./errors.ts";
import { inboxItems, snapshotData, startUnreadUpdates } from "./inbox.ts";
import { RateLimiter } from "./limits.ts";
import { createLogger, type Logger } from "./logger.ts";
import { clientFigures } from "./monitor.ts";
import { Pages, type PageDefinition } from "./pages.ts";
import { ADMINS, Policy, type AuthorizeHook } from "./policy.ts";
import { errorResponse, internalError, pathOf, secure, wantsHsts } from "./respond.ts";
import { MemoryRevocations, RedisRevocations, SqliteRevocations, type Revocations } from "./revocations.ts";
import { apiPublish } from "./routes/api.ts";
import { loadAssets, serveAsset } from "./routes/assets.ts";
import { login, logout } from "./routes/auth.ts";
import { clients, disconnect, monitor, startMonitorFeed } from "./routes/clients.ts";
import { embed } from "./routes/embed.ts";
import { health } from "./routes/health.ts";
import { dismiss, home, markRead, notify } from "./routes/home.ts";
import { metrics } from "./routes/metrics.ts";
import { presence } from "./routes/presence.ts";
import { openStream } from "./routes/stream.ts";
import { loadSecret, SessionSigner } from "./session.ts";
import { EMBED_PAGE } from "../../views/embed.ts";
import { html } from "../../views/html.ts";
import { INBOX_PAGE } from "../../views/home.ts";
import { MONITOR_PAGE, monitorFigures } from "../../views/monitor.ts";
import { URGENT } from "./notification.ts";

/** A request handler as `Bun.serve` calls it. */
export type Handler = (req: Request, server: Server<unknown>) => Response | Promise<Response>;
/** A route of herald's own, or one added with `addRoutes`: it gets herald's context. */
export type Route<C extends AppContext = AppContext> = (
  ctx: C,
  req: Request,
  server: Server<unknown>,
) => Response | Promise<Response>;
export type Method = "GET" | "POST" | "OPTIONS";
/** Routes by path (`/inventory/:sku` style) and method, as `Bun.serve({ routes })` takes them. */
export type RouteTable = Record<string, Partial<Record<Method, Handler>>>;

/** How `handle` wraps a route. */
export interface HandleOptions {
  /** Whether the sender is identified first (not needed for static files). Defaults to `true`. */
  identified?: boolean;
  /** Whether origins in `corsOrigins` may use the answer (streams, embed fragments). Defaults to `false`. */
  cors?: boolean;
}

/**
 * What `createHerald` takes: any setting of `Config` (each documented there with its default,
 * which `loadConfig` reads from the `HERALD_*` variables), and the hooks an app passes in code.
 */
export interface HeraldOptions extends Partial<Omit<Config, "limits">> {
  /** Abuse bounds; any not given takes its default (see `Limits` in `src/server/config.ts`). */
  limits?: Partial<Config["limits"]>;
  /**
   * Decides subscribe and publish permissions; see `AuthorizeHook` in `src/server/policy.ts`. Defaults to herald's
   * policy.
   */
  authorize?: AuthorizeHook;
  /** Where log lines go. Defaults to JSON lines on stdout at `logLevel`. */
  log?: Logger;
}

/** Something herald stops and closes with itself: `stop` first (timers), `close` at the end. */
export interface Service {
  stop?(): void;
  close?(): void | Promise<void>;
}

/** herald, ready to answer requests in an app's own `Bun.serve`. */
export interface HeraldApp {
  readonly config: Config;
  readonly hub: Hub;
  readonly ctx: AppContext;
  /** herald's routes for `Bun.serve({ routes })`, including those added with `addRoutes`. */
  readonly routes: RouteTable;
  /** Answers any of herald's routes (matching `:params` itself), and 404/405 for other paths. */
  fetch(req: Request, server: Server<unknown>): Promise<Response>;
  /** Wraps a route with what every herald route gets: identity, errors as answers, security headers. */
  handle(route: Route, options?: HandleOptions): Handler;
  /** Adds routes, each wrapped by `handle`. */
  addRoutes(table: Record<string, Partial<Record<Method, Route>>>, options?: HandleOptions): void;
  /** Adds a page that streams can back (`/sse?page=`), and a link to it in the top bar when `nav` is given. */
  addPage(page: PageDefinition, nav?: { href: string; label: string }): void;
  /** Stops and closes `service` with herald, in the reverse order of `use`. */
  use(service: Service): void;
  /**
   * Closes every stream at once and closes the event log; `stopServer` (the caller's
   * `server.stop(true)`) runs once the streams are closed. Calling it again does nothing.
   */
  stop(stopServer?: () => Promise<void>): Promise<void>;
  /**
   * The graceful way out: `stopServer` (the caller's `server.stop()`, no longer taking
   * connections) first, then commits the log, tells each stream to come back at a random moment
   * within `drainMs` (so clients do not return in one burst), closes them, and closes the log.
   */
  shutdown(stopServer?: () => Promise<void>): Promise<void>;
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
function openRevocations(config: Config, logger: Logger, log: EventLog): Revocations {
  if (config.eventLog === "memory") return new MemoryRevocations();
  if (config.eventLog === "redis")
    return new RedisRevocations(config.redisUrl!, config.redisPrefix, (message) => logger.warn(message));
  return new SqliteRevocations(log instanceof SqliteEventLog ? log.database : join(config.dataDir, "herald.db"));
}

/** Where the publish API's idempotency keys are kept: beside the events, for every process. */
function openIdempotencyKeys(config: Config, log: EventLog): IdempotencyKeys {
  if (config.eventLog === "memory") return new MemoryIdempotencyKeys();
  if (config.eventLog === "redis")
    return new RedisIdempotencyKeys(config.redisUrl!, config.redisPrefix, config.redisTimeoutMs);
  return new SqliteIdempotencyKeys(log instanceof SqliteEventLog ? log.database : join(config.dataDir, "herald.db"));
}

/** Where the topics each user follows are kept: beside the events, as read marks are. */
function openFollowedTopics(config: Config, log: EventLog): FollowedTopics {
  if (config.eventLog === "memory") return new MemoryFollowedTopics();
  if (config.eventLog === "redis")
    return new RedisFollowedTopics(config.redisUrl!, config.redisPrefix, config.redisTimeoutMs);
  return new SqliteFollowedTopics(log instanceof SqliteEventLog ? log.database : join(config.dataDir, "herald.db"));
}

/** Where read marks are kept: beside the events, so every process that shares the log sees them. */
function openReadMarks(config: Config, log: EventLog): ReadMarks {
  if (config.eventLog === "memory") return new MemoryReadMarks();
  if (config.eventLog === "redis")
    return new RedisReadMarks({ url: config.redisUrl!, prefix: config.redisPrefix, timeoutMs: config.redisTimeoutMs });
  return new SqliteReadMarks(log instanceof SqliteEventLog ? log.database : join(config.dataDir, "herald.db"));
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
          logger.warn(
            'redis keeps nothing across a restart (appendonly no, save ""): a Redis restart loses every event; turn on appendonly',
            settings,
          );
        }
      },
      // Not reachable yet: say so once, and ask again later (not worth keeping a process alive for).
      () => {
        if (!told)
          logger.warn("redis unreachable: answering 503 until it is; check REDIS_URL", { redis: new URL(url).host });
        told = true;
        setTimeout(check, 5_000).unref();
      },
    );
  };
  check();
}

/**
 * Says at start-up that the demo sign-in is on: anyone who types a name is that user. Louder when
 * `HERALD_GROUPS` gives anyone a group, since typing an admin's name then makes one an admin.
 */
function warnOfDemoLogin(config: Config, log: Logger): void {
  if (!config.demoLogin) return;
  const grouped = Object.entries(config.groups).filter(([, members]) => members.length > 0);
  if (grouped.length === 0) {
    log.warn(
      "demo sign-in is on: anyone can sign in as any name; set HERALD_JWT_SECRET, HERALD_JWT_PUBLIC_KEY or HERALD_AUTH_URL for real users",
    );
    return;
  }
  log.error("demo sign-in is on and HERALD_GROUPS gives groups: anyone who types a member's name is in that group", {
    groups: grouped.map(([name]) => name).join(","),
    fix: "set HERALD_JWT_SECRET, HERALD_JWT_PUBLIC_KEY or HERALD_AUTH_URL, or HERALD_DEMO_LOGIN=off",
  });
}

/**
 * Builds herald from `options` (every setting not given takes its default). Rejects, having
 * closed what it opened, for a JWT key WebCrypto cannot use.
 */
export async function createHerald(options: HeraldOptions = {}): Promise<HeraldApp> {
  const defaults = defaultConfig();
  const config: Config = { ...defaults, ...options, limits: { ...defaults.limits, ...options.limits } };
  checkConfig(config);
  const herald = buildHerald(config, options);
  try {
    await herald.ctx.identity.ready;
  } catch (error) {
    await herald.stop();
    throw error;
  }
  return herald;
}

/** `createHerald` with a whole `Config`, at once (no setting needs to wait for anything yet). */
export function buildHerald(config: Config, options: Pick<HeraldOptions, "authorize" | "log"> = {}): HeraldApp {
  const secret = loadSecret(config.secret, config.dataDir);
  const { limits } = config;
  const log = options.log ?? createLogger(config.logLevel);
  const hub = new Hub({
    log: openEventLog(config, log),
    heartbeatMs: config.heartbeatMs,
    clientTimeoutMs: config.clientTimeoutMs,
    ahead: [URGENT],
  });
  // The policy is made below; presence asks it which topics' members are public.
  const presenceTopic = (topic: string) => ctx.policy.isPresenceTopic(topic);
  const ctx: AppContext = {
    config,
    hub,
    sessions: new SessionSigner(secret, config.sessionTtlS),
    identity: new Identity(config, log),
    revocations: openRevocations(config, log, hub.log),
    csrf: new CsrfTokens(secret),
    policy: new Policy({
      anonymous: config.anonymous,
      privateTopics: config.privateTopics,
      presenceTopics: config.presenceTopics,
      authorize: options.authorize,
    }),
    presence:
      config.eventLog === "redis"
        ? new RedisPresence(hub, {
            url: config.redisUrl!,
            prefix: config.redisPrefix,
            intervalMs: config.presenceMs,
            timeoutMs: config.redisTimeoutMs,
            members: (topic) => presenceTopic(topic),
          })
        : null,
    log,
    rates: {
      streamsPerIp: new RateLimiter(limits.streamsPerIpPerS),
      publishesPerUser: new RateLimiter(limits.publishesPerUserPerS),
      publishesPerToken: new RateLimiter(limits.publishesPerTokenPerS),
    },
    startedAt: Date.now(),
    readMarks: openReadMarks(config, hub.log),
    followedTopics: openFollowedTopics(config, hub.log),
    idempotencyKeys: openIdempotencyKeys(config, hub.log),
    control:
      config.eventLog === "redis"
        ? new RedisControl(hub, {
            url: config.redisUrl!,
            prefix: config.redisPrefix,
            log,
            timeoutMs: config.redisTimeoutMs,
          })
        : new LocalControl(hub),
    pages: new Pages(),
    nav: [],
  };
  if (hub.log instanceof RedisEventLog) warnWithoutPersistence(hub.log, log, config.redisUrl!);
  warnOfDemoLogin(config, log);
  if (config.corsOrigins.length > 0 && !config.publicUrl) {
    log.warn(
      "HERALD_CORS_ORIGINS is set without HERALD_PUBLIC_URL: embed fragments name /sse relative to the page that loads them, so other sites' pages cannot stream; set HERALD_PUBLIC_URL",
    );
  }

  ctx.pages.add({ ...INBOX_PAGE, snapshot: (user, channels, upTo) => snapshotData(ctx, user, channels, upTo) });
  ctx.pages.add({
    ...MONITOR_PAGE,
    check(user) {
      if (!user?.groups.includes(ADMINS))
        throw new HttpError(user ? 403 : 401, "Only members of admins may follow the monitor.");
    },
    snapshot: async () =>
      html`<div id="monitor-figures" hx-swap-oob="innerHTML">${monitorFigures(await clientFigures(ctx))}</div>`.value,
  });
  // Not swapped by the embedded feed; it carries the id a reconnect resumes from.
  ctx.pages.add({
    ...EMBED_PAGE,
    snapshot: async (_user, channels, upTo) => (await inboxItems(ctx, null, channels, upTo)).value,
  });

  const services: Service[] = [];
  const stopMonitorFeed = startMonitorFeed(ctx, config.monitorMs);
  const stopUnreadUpdates = startUnreadUpdates(ctx);
  services.push({
    stop() {
      stopMonitorFeed();
      stopUnreadUpdates();
    },
    async close() {
      await ctx.revocations.close();
      await ctx.readMarks.close();
      await ctx.followedTopics.close();
      await ctx.idempotencyKeys.close();
      await ctx.control.close();
    },
  });

  const answer = async (
    route: Route,
    req: Request,
    server: Server<unknown>,
    identified: boolean,
  ): Promise<Response> => {
    const viewer = () => viewerOf(ctx, req);
    try {
      checkAddress(req);
      if (identified) await identify(ctx, req);
      return await route(ctx, req, server);
    } catch (error) {
      if (error instanceof HttpError) return errorResponse(req, error, viewer, config.retryMs);
      if (error instanceof InputError)
        return errorResponse(req, new HttpError(400, error.message), viewer, config.retryMs);
      if (error instanceof URIError) {
        const malformed = new HttpError(
          400,
          "The address has a malformed percent-encoding (a % not followed by two hex digits, or bytes that are not UTF-8).",
        );
        return errorResponse(req, malformed, viewer, config.retryMs);
      }
      if (error instanceof RedisUnavailableError) {
        log.warn("redis unreachable", { method: req.method, path: pathOf(req) });
        const refused = new HttpError(
          503,
          "herald cannot reach its event store (Redis) right now, so nothing was sent; try again shortly.",
          { "retry-after": "5" },
        );
        return errorResponse(req, refused, viewer, config.retryMs);
      }
      if (isDiskFull(error)) {
        log.error("disk full", { method: req.method, path: pathOf(req), data_dir: config.dataDir });
        const refused = new HttpError(
          507,
          "herald's disk is full, so nothing was stored or sent; try again once space has been freed.",
          { "retry-after": "30" },
        );
        return errorResponse(req, refused, viewer, config.retryMs);
      }
      return internalError(req, error, log, viewer);
    }
  };

  // Every route goes through here: the request's address is checked and its sender identified,
  // thrown HttpErrors become answers in the asker's format, anything else a logged 500, and every
  // response gets the security headers (and HSTS, under TLS).
  const handle = (route: Route, { identified = true, cors = false }: HandleOptions = {}): Handler => {
    return async (req, server) => {
      const response = await answer(route, req, server, identified);
      return secure(cors ? withCors(ctx, req, response) : response, config.tlsCert !== undefined && wantsHsts(req));
    };
  };

  const routes: RouteTable = {};
  const addRoutes = (table: Record<string, Partial<Record<Method, Route>>>, handleOptions?: HandleOptions) => {
    for (const [path, methods] of Object.entries(table)) {
      const wrapped: Partial<Record<Method, Handler>> = (routes[path] ??= {});
      for (const [method, route] of Object.entries(methods) as Array<[Method, Route]>)
        wrapped[method] = handle(route, handleOptions);
    }
  };
  // Without the demo sign-in there is no /login or /logout: the app signs its users in and out.
  if (config.demoLogin) addRoutes({ "/login": { POST: login }, "/logout": { POST: logout } });
  addRoutes({
    "/": { GET: home },
    "/notify": { POST: notify },
    "/notifications/read": { POST: markRead },
    "/notifications/dismiss": { POST: dismiss },
    "/api/clients": { GET: clients },
    "/api/clients/disconnect": { POST: disconnect },
    "/api/presence": { GET: presence },
    "/monitor": { GET: monitor },
    "/healthz": { GET: health },
    "/metrics": { GET: metrics },
  });
  // The publish API's caller is its bearer token (`authenticate`), never a session or the app's
  // auth endpoint: asking who sent it would cost every publish a lookup, or a request to the app.
  addRoutes({ "/api/publish": { POST: apiPublish } }, { identified: false });
  // Streams and embed fragments may be used from the origins in HERALD_CORS_ORIGINS, refusals included.
  addRoutes({ "/sse": { GET: openStream }, "/embed/:topic": { GET: embed } }, { cors: true });
  addRoutes({ "/sse": { OPTIONS: preflight }, "/embed/:topic": { OPTIONS: preflight } });
  for (const [path, asset] of loadAssets())
    addRoutes({ [path]: { GET: (_ctx, req) => serveAsset(asset, req) } }, { identified: false });

  // Bun calls this for paths without a route and for methods a route does not take; an app that
  // mounts only `fetch` gets herald's routes through it too.
  const notFound = handle(
    (_ctx, req) => {
      const path = new URL(req.url).pathname;
      const methods = matchRoute(routes, path);
      if (!methods) throw new HttpError(404, `There is no page at ${path}.`);
      const allow = Object.keys(methods).join(", ");
      throw new HttpError(405, `${path} takes ${allow}, not ${req.method}.`, { allow });
    },
    { identified: false },
  );
  const fetch = async (req: Request, server: Server<unknown>): Promise<Response> => {
    const path = URL.canParse(req.url) ? new URL(req.url).pathname : null;
    const handler = path === null ? undefined : matchRoute(routes, path)?.[req.method as Method];
    return (handler ?? notFound)(req, server);
  };

  let closed = false;
  // One ordered teardown for both ways out: timers, then streams, then the server, then storage.
  const teardown = async (stopServer: (() => Promise<void>) | undefined, graceful: boolean) => {
    if (closed) return;
    closed = true;
    // Each step runs whatever an earlier one did: a failure is logged, and the rest still close.
    const step = async (what: string, run: () => unknown) => {
      try {
        await run();
      } catch (error) {
        log.error("teardown step failed", { step: what, error: String(error) });
      }
    };
    for (const service of [...services].reverse()) await step("stop a service", () => service.stop?.());
    const stopped = graceful ? stopServer?.() : undefined;
    if (graceful) await step("commit the log", () => hub.log.flush());
    const streams = hub.clientCount;
    const farewell = () => encodeRetry(250 + Math.floor(Math.random() * config.drainMs));
    await step("close the streams", () => (graceful ? hub.close(farewell, "shutdown") : hub.close()));
    await step("close presence", () => ctx.presence?.close());
    if (graceful) log.info("shutting down", { streams, drain_ms: config.drainMs });
    await step("stop the server", () => (graceful ? stopped : stopServer?.()));
    await step("close the log", () => hub.log.close());
    for (const service of [...services].reverse()) await step("close a service", () => service.close?.());
  };

  return {
    config,
    hub,
    ctx,
    routes,
    fetch,
    handle,
    addRoutes,
    addPage(page, nav) {
      ctx.pages.add(page);
      if (nav) ctx.nav.push(nav);
    },
    use(service) {
      services.push(service);
    },
    stop: (stopServer) => teardown(stopServer, false),
    shutdown: (stopServer) => teardown(stopServer, true),
  };
}

/** The methods of the route whose pattern (`/inventory/:sku`) matches `path`, if any. */
function matchRoute(routes: RouteTable, path: string): Partial<Record<Method, Handler>> | undefined {
  const exact = routes[path];
  if (exact) return exact;
  const parts = path.split("/");
  for (const [pattern, methods] of Object.entries(routes)) {
    if (!pattern.includes(":")) continue;
    const want = pattern.split("/");
    if (
      want.length === parts.length &&
      want.every((segment, i) => (segment.startsWith(":") ? parts[i] !== "" : segment === parts[i]))
    )
      return methods;
  }
  return undefined;
}
