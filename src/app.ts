/**
 * The herald app: a hub, its routes and a `Bun.serve` server, built from a `Config`.
 * No side effects until `startHerald` is called, so tests start as many as they like on port 0.
 */
import type { Server } from "bun";
import type { Config } from "./config.ts";
import { currentUser, type AppContext } from "./context.ts";
import { HttpError } from "./errors.ts";
import { Hub } from "./hub.ts";
import { errorResponse, internalError } from "./respond.ts";
import { login, logout } from "./routes/auth.ts";
import { loadAssets, serveAsset } from "./routes/assets.ts";
import { health } from "./routes/health.ts";
import { home, notify } from "./routes/pages.ts";
import { openStream } from "./routes/stream.ts";
import { loadSecret, SessionSigner } from "./session.ts";

type Handler = (req: Request, server: Server<unknown>) => Response | Promise<Response>;

/** A running herald. */
export interface Herald {
  server: Server<unknown>;
  hub: Hub;
  /** `http://host:port`, with the port actually bound. */
  url: string;
  ctx: AppContext;
  /** Closes every stream and stops the server. */
  stop(): Promise<void>;
}

/** Maps anything a route throws to a response: `HttpError`s as they say, the rest as a logged 500. */
function guard(ctx: AppContext, handler: Handler): Handler {
  return async (req, server) => {
    try {
      return await handler(req, server);
    } catch (error) {
      if (error instanceof HttpError) return errorResponse(req, error, currentUser(ctx, req));
      return internalError(req, error);
    }
  };
}

/** Starts herald with `config` (`port: 0` picks a free port). */
export function startHerald(config: Config): Herald {
  const ctx: AppContext = {
    config,
    hub: new Hub({ heartbeatMs: config.heartbeatMs }),
    sessions: new SessionSigner(loadSecret(config.secret, config.dataDir), config.sessionTtlS),
    startedAt: Date.now(),
  };
  const route = (handler: (ctx: AppContext, req: Request, server: Server<unknown>) => Response | Promise<Response>) =>
    guard(ctx, (req, server) => handler(ctx, req, server));
  const assets = Object.fromEntries(
    [...loadAssets()].map(([path, asset]) => [path, { GET: (req: Request) => serveAsset(asset, req) }]),
  );

  const routes: Record<string, Partial<Record<"GET" | "POST", Handler>>> = {
    "/": { GET: route(home) },
    "/login": { POST: route(login) },
    "/logout": { POST: route(logout) },
    "/notify": { POST: route(notify) },
    "/sse": { GET: route(openStream) },
    "/healthz": { GET: route(health) },
    ...assets,
  };

  const server = Bun.serve({
    port: config.port,
    hostname: config.host,
    routes,
    // Bun answers here for paths without a route and for methods a route does not take.
    fetch: guard(ctx, (req) => {
      const path = new URL(req.url).pathname;
      const methods = routes[path];
      if (!methods) throw new HttpError(404, `There is no page at ${path}.`);
      const allow = Object.keys(methods).join(", ");
      throw new HttpError(405, `${path} takes ${allow}, not ${req.method}.`, { allow });
    }),
    error: (error) => internalError(new Request("http://herald/"), error),
  });

  return {
    server,
    hub: ctx.hub,
    url: `http://${config.host === "0.0.0.0" ? "localhost" : config.host}:${server.port}`,
    ctx,
    async stop() {
      ctx.hub.close();
      await server.stop(true);
    },
  };
}
