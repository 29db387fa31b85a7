/**
 * Who a request is, as the app herald serves tells it: a JSON Web Token the app signed (in the
 * `HERALD_JWT_COOKIE` cookie or `Authorization: Bearer`), or the app's answer to an auth request
 * (`HERALD_AUTH_URL`, asked with the request's `Cookie` and `Authorization`). Mercure does the
 * first, nchan the second. Without either, the demo sign-in's session cookie says who it is.
 *
 * A token that does not verify is anonymous, with one log line saying why; an auth request that
 * fails or times out is a 503 for that request, never a guess.
 */
import { GROUP_NAME, USER_ID } from "../core/channel.ts";
import type { Config } from "./config.ts";
import { HttpError } from "./errors.ts";
import { JwtError, JwtVerifier } from "./jwt.ts";
import type { Logger } from "./logger.ts";
import { groupsOf, type User } from "./session.ts";

/** The most answers the auth request cache keeps; the oldest goes first. */
const AUTH_CACHE_MAX = 10_000;

/** A JWT's three base64url parts: what a bearer credential must look like to be read as one. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function cookieValue(req: Request, name: string): string | undefined {
  return new Bun.CookieMap(req.headers.get("cookie") ?? "").get(name) ?? undefined;
}

/** The bearer credential of a request, if it has one. */
export function bearerOf(req: Request): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(req.headers.get("authorization") ?? "")?.[1];
}

/** Whether a credential has a JWT's shape (a static API token has not). */
export function looksLikeJwt(credential: string): boolean {
  return JWT_SHAPE.test(credential);
}

export class Identity {
  readonly #config: Config;
  readonly #log: Logger;
  readonly #verifier: Promise<JwtVerifier> | null;
  readonly #answers = new Map<string, { user: User | null; until: number }>();

  constructor(config: Config, log: Logger) {
    this.#config = config;
    this.#log = log;
    const { jwtSecret: secret, jwtPublicKey: publicKey, jwtIssuer: issuer, jwtAudience: audience } = config;
    this.#verifier = secret || publicKey ? JwtVerifier.create({ secret, publicKey, issuer, audience }) : null;
    this.#verifier?.catch(() => {});
  }

  /** Resolves once the keys are imported; rejects, at start-up, for a key WebCrypto cannot use. */
  get ready(): Promise<void> {
    return this.#verifier ? this.#verifier.then(() => undefined) : Promise.resolve();
  }

  /** Whether the app tells herald who requests are (a JWT key or an auth request is configured). */
  get external(): boolean {
    return this.#verifier !== null || this.#config.authUrl !== undefined;
  }

  /**
   * The user a request's token or auth request proves; `null` for anonymous; `undefined` when
   * neither is configured (the demo sign-in's session decides).
   */
  async of(req: Request): Promise<User | null | undefined> {
    if (this.#verifier) {
      const bearer = bearerOf(req);
      const token = bearer && looksLikeJwt(bearer) ? bearer : cookieValue(req, this.#config.jwtCookie);
      if (token) return this.verify(token);
      if (!this.#config.authUrl) return null;
    }
    if (this.#config.authUrl) return this.#ask(req, this.#config.authUrl);
    return undefined;
  }

  /** The user a token proves, or `null` (logged with the reason) for any token that does not verify. */
  async verify(token: string): Promise<User | null> {
    const claims = await this.claims(token);
    if (!claims) return null;
    const groups = [...new Set([...claims.groups, ...groupsOf(this.#config.groups, claims.sub)])];
    return { id: claims.sub, name: claims.sub, groups, grants: claims.grants, via: "jwt" };
  }

  /** A token's claims, or `null` (logged with the reason) when it does not verify. */
  async claims(token: string) {
    if (!this.#verifier) return null;
    try {
      return await (await this.#verifier).verify(token);
    } catch (error) {
      if (!(error instanceof JwtError)) throw error;
      this.#log.info("token refused", { reason: error.message });
      return null;
    }
  }

  /**
   * Asks the app who the request is, forwarding its credentials. 200 with `{"user", "groups"}` is
   * that user, 401 or 403 anonymous, anything else (or no answer in time) a 503. Answers are kept
   * per credential for `HERALD_AUTH_CACHE_S`.
   */
  async #ask(req: Request, url: URL): Promise<User | null> {
    const cookie = req.headers.get("cookie");
    // A static publish token is herald's own credential: it is never forwarded to the app.
    const bearer = bearerOf(req);
    const authorization =
      bearer !== undefined && this.#config.publishTokens.includes(bearer) ? null : req.headers.get("authorization");
    if (!cookie && !authorization) return null;
    const key = new Bun.CryptoHasher("sha256").update(`${cookie ?? ""}\n${authorization ?? ""}`).digest("base64");
    const now = Date.now();
    const kept = this.#answers.get(key);
    if (kept && kept.until > now) return kept.user;
    const headers: Record<string, string> = {};
    if (cookie) headers.cookie = cookie;
    if (authorization) headers.authorization = authorization;
    let answer: Response;
    try {
      answer = await fetch(url, {
        headers,
        redirect: "manual",
        signal: AbortSignal.timeout(this.#config.authTimeoutMs),
      });
    } catch (error) {
      this.#log.warn("auth request failed", { url: url.origin + url.pathname, error: String(error) });
      throw unavailable();
    }
    let user: User | null | undefined;
    if (answer.status === 401 || answer.status === 403) {
      await answer.body?.cancel();
      user = null;
    } else if (answer.status === 200) {
      user = this.#userFrom(await answer.json().catch(() => undefined));
      if (user === undefined) {
        this.#log.warn("auth request answered something that is not {user, groups}", {
          url: url.origin + url.pathname,
        });
        throw unavailable();
      }
    } else {
      await answer.body?.cancel();
      this.#log.warn("auth request answered neither 200 nor 401/403", { status: answer.status });
      throw unavailable();
    }
    if (user === undefined) throw unavailable();
    if (this.#config.authCacheS > 0) {
      if (this.#answers.size >= AUTH_CACHE_MAX) this.#answers.delete(this.#answers.keys().next().value!);
      this.#answers.set(key, { user, until: now + this.#config.authCacheS * 1000 });
    }
    return user;
  }

  /** The user in an auth answer's JSON; `undefined` for a body of the wrong shape. */
  #userFrom(body: unknown): User | undefined {
    if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined;
    const { user, groups = [] } = body as Record<string, unknown>;
    if (typeof user !== "string" || !USER_ID.test(user)) return undefined;
    if (
      !Array.isArray(groups) ||
      groups.length > 64 ||
      !groups.every((g) => typeof g === "string" && GROUP_NAME.test(g))
    ) {
      return undefined;
    }
    const all = [...new Set([...(groups as string[]), ...groupsOf(this.#config.groups, user)])];
    return { id: user, name: user, groups: all, via: "auth-request" };
  }
}

function unavailable(): HttpError {
  return new HttpError(
    503,
    "herald cannot tell who you are right now: the app's auth request did not answer. Try again shortly.",
    {
      "retry-after": "5",
    },
  );
}
