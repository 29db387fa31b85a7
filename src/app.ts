/**
 * The herald app as `bun run dev` runs it: herald (`src/server/app.ts`) with the demo shop
 * (`src/shop/`) and chat (`src/chat/`) unless `HERALD_DEMO=off`, on a `Bun.serve` of its own. No side effects until
 * `startHerald` is called, so tests start as many as they like on port 0.
 */
import type { Server } from "bun";
import { buildHerald, type HeraldApp, type HeraldOptions } from "./server/app.ts";
import type { Config } from "./server/config.ts";
import type { AppContext } from "./server/context.ts";
import { secure } from "./server/respond.ts";
import { readTls } from "./server/tls.ts";
import { installShop } from "./shop/index.ts";
import type { ShopContext } from "./shop/context.ts";
import { installChat, withChatPresence } from "./chat/index.ts";
import type { ChatContext } from "./chat/routes.ts";

export type { HeraldOptions };

/** A running herald with its own server. */
export interface Herald {
  server: Server<unknown>;
  hub: HeraldApp["hub"];
  /** `http://host:port` (`https:` with `tlsCert`), with the port actually bound. */
  url: string;
  /** herald's context. */
  ctx: AppContext;
  /** The demo shop's context, or `null` with `HERALD_DEMO=off`. */
  shop: ShopContext | null;
  /** The demo chat's context, or `null` with `HERALD_DEMO=off`. */
  chat: ChatContext | null;
  /** The app, for adding routes and pages before requests come. */
  app: HeraldApp;
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
 * Starts herald with `config` (`port: 0` picks a free port), and the demo shop and chat when
 * `config.demo` (chat rooms are then presence topics too).
 */
export function startHerald(config: Config, options: Pick<HeraldOptions, "authorize" | "log"> = {}): Herald {
  const tls = readTls(config.tlsCert, config.tlsKey);
  const app = buildHerald(config.demo ? withChatPresence(config) : config, options);
  let shop: ShopContext | null = null;
  let chat: ChatContext | null = null;
  try {
    if (config.demo) {
      shop = installShop(app);
      chat = installChat(app);
    }
  } catch (error) {
    void app.stop();
    throw error;
  }
  const server = Bun.serve({
    port: config.port,
    hostname: config.host,
    // Bun's development mode answers an uncaught error with a page of source lines and paths.
    development: false,
    // The last resort, for an error thrown by the error path itself: a bare 500, still secured.
    error(error) {
      app.ctx.log.error("unhandled error", { error: String(error instanceof Error ? error.stack : error) });
      return secure(
        new Response("Something went wrong on the server; it has been logged.\n", {
          status: 500,
          headers: { "content-type": "text/plain; charset=utf-8" },
        }),
      );
    },
    // Several worker processes listen on the same port; the kernel spreads connections over them.
    reusePort: config.workers > 1,
    // Over TLS, HTTP/2 for clients that offer it (ALPN), HTTP/1.1 for the rest, on the same port:
    // a browser then holds every tab's stream on one connection, past its six per host.
    ...(tls ? { tls, http2: true } : {}),
    routes: app.routes,
    // Bun calls this for paths without a route and for methods a route does not take.
    fetch: app.fetch,
  });
  return {
    server,
    hub: app.hub,
    url: `${tls ? "https" : "http"}://${config.host === "0.0.0.0" ? "localhost" : config.host}:${server.port}`,
    ctx: app.ctx,
    shop,
    chat,
    app,
    stop: () => app.stop(() => server.stop(true)),
    shutdown: () => app.shutdown(() => server.stop()),
  };
}
