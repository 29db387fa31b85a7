/**
 * What every route needs, and the facts about a request that several routes ask for:
 * who sent it, from where, and what a page rendered for them must carry.
 */
import type { Server } from "bun";
import type { Config } from "./config.ts";
import { CSRF_COOKIE, isNonce, newNonce, type CsrfTokens } from "./csrf.ts";
import { htmxVersionOf, type HtmxVersion } from "./htmx.ts";
import type { Hub } from "./hub.ts";
import type { Inventory } from "./inventory.ts";
import type { LiveFeeds } from "./live.ts";
import type { RateLimiter } from "./limits.ts";
import type { Logger } from "./logger.ts";
import type { Orders } from "./orders.ts";
import type { Outbox } from "./outbox.ts";
import type { Policy } from "./policy.ts";
import type { RedisPresence } from "./presence.ts";
import { SESSION_COOKIE, type SessionSigner, type User } from "./session.ts";

export interface AppContext {
  config: Config;
  hub: Hub;
  sessions: SessionSigner;
  csrf: CsrfTokens;
  policy: Policy;
  log: Logger;
  /** Counts across processes, with `REDIS_URL`; `null` for a single process. */
  presence: RedisPresence | null;
  rates: {
    streamsPerIp: RateLimiter;
    publishesPerUser: RateLimiter;
    publishesPerToken: RateLimiter;
  };
  /** `Date.now()` when the app started. */
  startedAt: number;
  /** The demo shop's products (`/inventory`) and orders (`/orders`), in `shop.db` in the data directory. */
  inventory: Inventory;
  orders: Orders;
  /** The events that announce the shop's changes, queued with them in `shop.db` until published. */
  outbox: Outbox;
  /** The market and metrics feeds of `/live`. */
  live: LiveFeeds;
}

function cookies(req: Request): Bun.CookieMap {
  return new Bun.CookieMap(req.headers.get("cookie") ?? "");
}

/** The verified user behind a request, or `null` for anonymous (no cookie, tampered or expired). */
export function currentUser(ctx: AppContext, req: Request): User | null {
  return ctx.sessions.verify(cookies(req).get(SESSION_COOKIE));
}

/** The request's CSRF cookie nonce, when it has a well-formed one. */
export function csrfNonce(req: Request): string | null {
  const value = cookies(req).get(CSRF_COOKIE);
  return isNonce(value) ? value : null;
}

/** The client's address: the socket's peer, or the first `X-Forwarded-For` hop when `HERALD_TRUST_PROXY` is on. */
export function clientAddress(ctx: AppContext, req: Request, server: Server<unknown>): string {
  if (ctx.config.trustProxy) {
    const forwarded = req.headers.get("x-forwarded-for")?.split(",")[0]?.trim();
    if (forwarded) return forwarded;
  }
  return server.requestIP(req)?.address ?? "unknown";
}

/** Cookie attributes herald uses for its own cookies. */
export function cookieOptions(ctx: AppContext, maxAge: number): Bun.CookieInit {
  return { path: "/", httpOnly: true, sameSite: "lax", secure: ctx.config.publicUrl?.protocol === "https:", maxAge };
}

/** Who a page is rendered for, and the CSRF token its forms carry. */
export interface Viewer {
  user: User | null;
  csrf: string;
  /** The htmx the page is rendered for. */
  htmx: HtmxVersion;
  /** Whether `?htmx=` chose it (links then keep the choice). */
  htmxAsked: boolean;
  /** A `Set-Cookie` value when the visitor had no CSRF cookie yet. */
  setCookie: string | undefined;
}

/** The viewer of a page, creating the visitor's CSRF cookie on their first page view. */
export function viewerOf(ctx: AppContext, req: Request): Viewer {
  const user = currentUser(ctx, req);
  let nonce = csrfNonce(req);
  let setCookie: string | undefined;
  if (!nonce) {
    nonce = newNonce();
    setCookie = new Bun.Cookie(CSRF_COOKIE, nonce, cookieOptions(ctx, 365 * 24 * 3600)).toString();
  }
  const url = new URL(req.url);
  let htmx = ctx.config.htmx;
  try {
    htmx = htmxVersionOf(url, ctx.config.htmx);
  } catch {
    // An error page rendered for a bad ?htmx= still renders, for the configured version.
  }
  return { user, csrf: ctx.csrf.token(nonce, user?.id ?? null), setCookie, htmx, htmxAsked: url.searchParams.has("htmx") && htmx !== ctx.config.htmx };
}

/** The viewer of a page route: like `viewerOf`, but a bad `?htmx=` is a 400. */
export function pageViewer(ctx: AppContext, req: Request): Viewer {
  htmxVersionOf(new URL(req.url), ctx.config.htmx);
  return viewerOf(ctx, req);
}

/** herald's own origins: the one the request came to, and `HERALD_PUBLIC_URL`'s. */
export function ownOrigins(ctx: AppContext, req: Request): string[] {
  const origins = [new URL(req.url).origin];
  if (ctx.config.publicUrl) origins.push(ctx.config.publicUrl.origin);
  return origins;
}
