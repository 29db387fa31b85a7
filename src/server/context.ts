/**
 * What every route needs, and the facts about a request that several routes ask for:
 * who sent it, from where, and what a page rendered for them must carry.
 */
import type { Server } from "bun";
import { isIP } from "node:net";
import type { Config } from "./config.ts";
import { CSRF_COOKIE, CSRF_COOKIE_MAX_AGE_S, isNonce, newNonce, type CsrfTokens } from "./csrf.ts";
import { htmxVersionOf, type HtmxVersion } from "./htmx.ts";
import type { Control } from "../core/control.ts";
import type { Hub } from "../core/hub.ts";
import type { RateLimiter } from "./limits.ts";
import type { Logger } from "./logger.ts";
import type { IdempotencyKeys } from "./idempotency.ts";
import type { Identity } from "./identity.ts";
import type { Pages } from "./pages.ts";
import type { ReadMarks } from "../core/read-marks.ts";
import type { FollowedTopics } from "./followed-topics.ts";
import type { Policy } from "./policy.ts";
import type { RedisPresence } from "../core/presence.ts";
import type { Revocations } from "./revocations.ts";
import { EVERYONE, groupChannel, topicChannel, userChannel, type Channel } from "../core/channel.ts";
import { principalOf } from "./policy.ts";
import { groupsOf, SESSION_COOKIE, type SessionSigner, type User } from "./session.ts";

export interface AppContext {
  config: Config;
  hub: Hub;
  sessions: SessionSigner;
  /** Who a request is, as the app says (a token, an auth request); see `./identity.ts`. */
  identity: Identity;
  /** Sessions ended at sign-out, shared by every process of this herald. */
  revocations: Revocations;
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
  /** Orders for every process of this herald (end the streams on a channel). */
  control: Control;
  /** Idempotency keys of the publish API, kept where the event log is. */
  idempotencyKeys: IdempotencyKeys;
  /** Which notifications each user has read: kept where the event log is, apart from it. */
  readMarks: ReadMarks;
  /** The topics each signed-in user follows on the home page, kept where the event log is. */
  followedTopics: FollowedTopics;
  /** The pages herald streams for: its own and those an app (the demo shop) adds. */
  pages: Pages;
  /** The top bar's links after the home page's: the pages an app (the demo shop) adds. */
  nav: Array<{ href: string; label: string }>;
}

function cookies(req: Request): Bun.CookieMap {
  return new Bun.CookieMap(req.headers.get("cookie") ?? "");
}

/** Who each request being served is, once `identify` has found out. */
const identities = new WeakMap<Request, User | null>();

/**
 * Finds out who a request comes from, once per request (every route does this first): the
 * session its cookie proves, unless that session was ended at sign-out, with the user's groups
 * as `HERALD_GROUPS` says now. `null` for anonymous (no cookie, tampered, expired or ended).
 */
export async function identify(ctx: AppContext, req: Request): Promise<User | null> {
  if (identities.has(req)) return identities.get(req)!;
  // The app's word first (a token, an auth request); the demo sign-in only where it is on.
  let user = await ctx.identity.of(req);
  // Without a Cookie header (an API call, say) there is no session to parse.
  if (!user && ctx.config.demoLogin && req.headers.has("cookie")) {
    const session = ctx.sessions.verify(cookies(req).get(SESSION_COOKIE));
    user =
      session && !(await ctx.revocations.isRevoked(session.sid))
        ? { ...userById(ctx, session.id, session.name), session, via: "session" }
        : null;
  }
  identities.set(req, user ?? null);
  return user ?? null;
}

/** The user `identify` found for a request; `null` for anonymous. */
export function currentUser(_ctx: AppContext, req: Request): User | null {
  const user = identities.get(req);
  if (user === undefined) throw new Error("herald: currentUser() before identify() for this request");
  return user;
}

/**
 * A user by id, with their groups as `HERALD_GROUPS` says now (for users who are not the asker, such as a
 * notification's recipient).
 */
export function userById(ctx: AppContext, id: string, name = id): User {
  return { id, name, groups: groupsOf(ctx.config.groups, id) };
}

/**
 * The channels whose notifications are the user's own, as far as the policy lets them follow
 * them: `everyone`, their user channel and their groups. The one answer to "what is this user's
 * inbox", used by streams, pages, snapshots, unread counts and mark-read alike.
 */
export function personalChannels(ctx: AppContext, user: User): Channel[] {
  const principal = principalOf(user);
  const own: Channel[] = [EVERYONE, userChannel(user.id), ...user.groups.map(groupChannel)];
  return own.filter((channel) => ctx.policy.allows(principal, "subscribe", channel));
}

/**
 * Whether `user` (or an anonymous visitor) may read what was sent to any of `channels`: the subscribe permission, as
 * for a stream.
 */
export function mayRead(ctx: AppContext, user: User | null, channels: readonly Channel[]): boolean {
  const principal = principalOf(user);
  return channels.some((channel) => ctx.policy.allows(principal, "subscribe", channel));
}

/**
 * The channels a page or stream following `topics` is on: `everyone` and the topics (403 for one
 * the policy refuses), and the user's own channel and groups where the policy allows.
 */
export function streamChannels(ctx: AppContext, user: User | null, topics: readonly string[]): Channel[] {
  const principal = principalOf(user);
  const asked: Channel[] = [EVERYONE, ...topics.map(topicChannel)];
  for (const channel of asked) ctx.policy.check(principal, "subscribe", channel);
  const own = user ? personalChannels(ctx, user).filter((channel) => channel !== EVERYONE) : [];
  return [...asked, ...own];
}

/** What a visitor's CSRF token is bound to: the sign-in session (so it ends with it), the user, or nobody. */
export function csrfSubject(user: User | null): string | null {
  if (!user) return null;
  return user.session ? `session:${user.session.sid}` : `user:${user.id}`;
}

/** The request's CSRF cookie nonce, when it has a well-formed one. */
export function csrfNonce(req: Request): string | null {
  const value = cookies(req).get(CSRF_COOKIE);
  return isNonce(value) ? value : null;
}

/**
 * The client's address: the socket's peer or, behind `HERALD_TRUST_PROXY` proxies, the address
 * the outermost of them saw. Each proxy appends its peer to `X-Forwarded-For` (nginx's
 * `$proxy_add_x_forwarded_for`), so only the last `trustProxy` entries were written by proxies;
 * whatever stands before them the client wrote itself.
 */
export function clientAddress(ctx: AppContext, req: Request, server: Server<unknown>): string {
  const peer = server.requestIP(req)?.address ?? "unknown";
  const hops = ctx.config.trustProxy;
  if (hops === 0) return peer;
  const entries = (req.headers.get("x-forwarded-for") ?? "").split(",").map((entry) => entry.trim());
  const added = entries.length >= hops ? entries[entries.length - hops] : undefined;
  return added && isIP(added) ? added : peer;
}

/** Cookie attributes herald uses for its own cookies: `Secure` when people reach herald over https. */
export function cookieOptions(ctx: AppContext, maxAge: number): Bun.CookieInit {
  const secure = ctx.config.publicUrl?.protocol === "https:" || ctx.config.tlsCert !== undefined;
  return { path: "/", httpOnly: true, sameSite: "lax", secure, maxAge };
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
  /** The top bar's links after the home page's (the pages an app added). */
  nav: ReadonlyArray<{ href: string; label: string }>;
  /** Whether the demo sign-in is on: the page says so, and shows its form. */
  demoLogin: boolean;
  /** The `retry:` streams send (`HERALD_RETRY_MS`), which `#connection` shows while reconnecting. */
  retryMs: number;
}

/** The viewer of a page, creating the visitor's CSRF cookie on their first page view. */
export function viewerOf(ctx: AppContext, req: Request): Viewer {
  // The error path renders pages too, also for a request that failed before `identify` ran.
  const user = identities.get(req) ?? null;
  let nonce = csrfNonce(req);
  let setCookie: string | undefined;
  if (!nonce) {
    nonce = newNonce();
    setCookie = new Bun.Cookie(CSRF_COOKIE, nonce, cookieOptions(ctx, CSRF_COOKIE_MAX_AGE_S)).toString();
  }
  let htmx = ctx.config.htmx;
  let asked = false;
  try {
    const url = new URL(req.url);
    htmx = htmxVersionOf(url, ctx.config.htmx);
    asked = url.searchParams.has("htmx");
  } catch {
    // An error page rendered for a bad ?htmx= (or an unparsable address) still renders, for the configured version.
  }
  return {
    user,
    csrf: ctx.csrf.token(nonce, csrfSubject(user)),
    setCookie,
    htmx,
    htmxAsked: asked && htmx !== ctx.config.htmx,
    nav: ctx.nav,
    demoLogin: ctx.config.demoLogin,
    retryMs: ctx.config.retryMs,
  };
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
