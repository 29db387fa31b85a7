/**
 * Identity: who a request comes from, proven by an HMAC-SHA256-signed cookie.
 *
 * Cookie value: `v2.<payload>.<signature>`, both base64url; the payload is JSON
 * `{ sid, id, name, exp }`. A cookie that does not verify, has expired, or whose session was
 * ended at sign-out (`src/revocations.ts`) means anonymous. The cookie carries no groups: they
 * are looked up in `HERALD_GROUPS` on every request, so a change there applies at once.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { timingSafeEqual } from "node:crypto";
import { USER_ID } from "../core/channel.ts";
import { HeraldError } from "../core/errors.ts";
import { HttpError } from "./errors.ts";

/** A signed-in user, as proven by their session cookie. */
export interface User {
  /** The user channel's id: the name in lower case. */
  id: string;
  /** The name as they typed it. */
  name: string;
  /** The user's groups (`HERALD_GROUPS`), as of this request. */
  groups: readonly string[];
  /** The sign-in session the request carries: CSRF tokens are bound to it, and sign-out ends it. */
  session?: Session;
  /** Channel patterns a token grants beyond the policy's defaults (its `herald` claim). */
  grants?: { readonly subscribe: readonly string[]; readonly publish: readonly string[] };
  /** How herald learnt who the user is: the demo sign-in's session, a token, or the app's auth request. */
  via?: "session" | "jwt" | "auth-request";
}

/** One sign-in, as its cookie states it. */
export interface Session {
  /** Random id of this sign-in, recorded at sign-out so the cookie no longer counts. */
  sid: string;
  /** User id and name, as in `User`. */
  id: string;
  name: string;
  /** When the cookie expires, in seconds since the epoch. */
  exp: number;
}

export const SESSION_COOKIE = "herald_session";
/** What a sign-in name may be. */
export const USER_NAME = /^[A-Za-z0-9_-]{1,32}$/;

/** Checks a sign-in name, throwing a 400 that says what is allowed. Returns the name and its user id. */
export function parseUserName(value: unknown): { id: string; name: string } {
  const name = typeof value === "string" ? value.trim() : "";
  if (!USER_NAME.test(name)) {
    throw new HttpError(400, 'A name is 1–32 letters, digits, "-" or "_".');
  }
  return { id: name.toLowerCase(), name };
}

function base64url(bytes: Uint8Array | string): string {
  return Buffer.from(bytes).toString("base64url");
}

/** Signs and verifies session cookie values. */
export class SessionSigner {
  readonly #secret: string;
  readonly #ttlS: number;

  /**
   * @param secret HMAC key, at least 16 characters.
   * @param ttlS how long a session lasts, in seconds.
   */
  constructor(secret: string, ttlS: number) {
    this.#secret = secret;
    this.#ttlS = ttlS;
  }

  /** How long a session lasts, in seconds (the cookie's Max-Age). */
  get ttlS(): number {
    return this.#ttlS;
  }

  #sign(payload: string): Buffer {
    return new Bun.CryptoHasher("sha256", this.#secret).update(payload).digest();
  }

  /**
   * A new session for a user (with a fresh random id), valid for the session lifetime from `now` (ms), and its cookie
   * value.
   */
  issue(user: { id: string; name: string }, now = Date.now()): { session: Session; cookie: string } {
    const session: Session = {
      sid: newSessionId(),
      id: user.id,
      name: user.name,
      exp: Math.floor(now / 1000) + this.#ttlS,
    };
    const payload = base64url(JSON.stringify(session));
    return { session, cookie: `v2.${payload}.${base64url(this.#sign(payload))}` };
  }

  /** The session a cookie value proves, or `null` for anything tampered, malformed or expired. */
  verify(value: string | null | undefined, now = Date.now()): Session | null {
    if (!value || value.length > MAX_COOKIE) return null;
    const [version, payload, signature, extra] = value.split(".");
    if (version !== "v2" || !payload || !signature || extra !== undefined) return null;
    // Compare the text, not decoded bytes: base64 has spare bits in its last character, so two
    // different strings can decode to the same bytes, and a cookie must have exactly one valid form.
    const given = Buffer.from(signature);
    const expected = Buffer.from(base64url(this.#sign(payload)));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    let data: unknown;
    try {
      data = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    } catch {
      return null;
    }
    if (typeof data !== "object" || data === null) return null;
    const { sid, id, name, exp } = data as Record<string, unknown>;
    if (typeof sid !== "string" || !SESSION_ID.test(sid)) return null;
    if (typeof id !== "string" || !USER_ID.test(id)) return null;
    if (typeof name !== "string" || !USER_NAME.test(name) || name.toLowerCase() !== id) return null;
    if (typeof exp !== "number" || !Number.isSafeInteger(exp) || exp * 1000 <= now) return null;
    return { sid, id, name, exp };
  }
}

const SESSION_ID = /^[A-Za-z0-9_-]{22}$/;
/** Longer than any cookie herald issues: nothing past it is parsed. */
const MAX_COOKIE = 1024;

function newSessionId(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64url");
}

/** The groups of `HERALD_GROUPS` that list `userId`. */
export function groupsOf(groups: Record<string, readonly string[]>, userId: string): string[] {
  return Object.keys(groups).filter((group) => groups[group]!.includes(userId));
}

/**
 * The signing secret: `configured` when given, otherwise the one kept in `<dataDir>/secret`,
 * generated on first use so that restarts keep everyone signed in. A kept secret that is too
 * short stops the start-up: replacing it would sign everyone out without a word.
 */
export function loadSecret(configured: string | undefined, dataDir: string): string {
  if (configured) return configured;
  const path = join(dataDir, "secret");
  try {
    const kept = readFileSync(path, "utf8").trim();
    if (kept.length >= 32) return kept;
    throw new HeraldError(
      `${path} holds a secret of ${kept.length} characters; it needs at least 32. Fix or remove the file (removing it signs everyone out), or set HERALD_SECRET.`,
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  mkdirSync(dataDir, { recursive: true });
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
  writeFileSync(path, secret + "\n", { mode: 0o600 });
  return secret;
}
