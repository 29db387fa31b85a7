/**
 * Identity: who a request comes from, proven by an HMAC-SHA256-signed cookie.
 *
 * Cookie value: `v1.<payload>.<signature>`, both base64url; the payload is JSON
 * `{ id, name, groups, exp }`. A cookie that does not verify, or has expired, means anonymous.
 * Group membership is looked up once at sign-in and carried by the session.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { timingSafeEqual } from "node:crypto";
import { GROUP_NAME, USER_ID } from "./channel.ts";
import { HttpError } from "./errors.ts";

/** A signed-in user, as proven by their session cookie. */
export interface User {
  /** The user channel's id: the name in lower case. */
  id: string;
  /** The name as they typed it. */
  name: string;
  /** Groups the user belonged to at sign-in (`HERALD_GROUPS`). */
  groups: readonly string[];
}

export const SESSION_COOKIE = "herald_session";
/** What a sign-in name may be. */
export const USER_NAME = /^[A-Za-z0-9_-]{1,32}$/;

/** Checks a sign-in name, throwing a 400 that says what is allowed. Returns the name and its user id. */
export function parseUserName(value: unknown): { id: string; name: string } {
  const name = typeof value === "string" ? value.trim() : "";
  if (!USER_NAME.test(name)) {
    throw new HttpError(400, "A name is 1–32 letters, digits, \"-\" or \"_\".");
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

  /** A cookie value for `user`, valid for the session lifetime from `now` (ms). */
  issue(user: User, now = Date.now()): string {
    const exp = Math.floor(now / 1000) + this.#ttlS;
    const payload = base64url(JSON.stringify({ id: user.id, name: user.name, groups: user.groups, exp }));
    return `v1.${payload}.${base64url(this.#sign(payload))}`;
  }

  /** The user a cookie value proves, or `null` for anything tampered, malformed or expired. */
  verify(value: string | null | undefined, now = Date.now()): User | null {
    if (!value) return null;
    const [version, payload, signature, extra] = value.split(".");
    if (version !== "v1" || !payload || !signature || extra !== undefined) return null;
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
    const { id, name, groups, exp } = data as Record<string, unknown>;
    if (typeof id !== "string" || !USER_ID.test(id)) return null;
    if (typeof name !== "string" || !USER_NAME.test(name) || name.toLowerCase() !== id) return null;
    if (!Array.isArray(groups) || !groups.every((g) => typeof g === "string" && GROUP_NAME.test(g))) return null;
    if (typeof exp !== "number" || exp * 1000 <= now) return null;
    return { id, name, groups: groups as string[] };
  }
}

/** The groups of `HERALD_GROUPS` that list `userId`. */
export function groupsOf(groups: Record<string, readonly string[]>, userId: string): string[] {
  return Object.keys(groups).filter((group) => groups[group]!.includes(userId));
}

/**
 * The signing secret: `configured` when given, otherwise the one kept in `<dataDir>/secret`,
 * generated on first use so that restarts keep everyone signed in.
 */
export function loadSecret(configured: string | undefined, dataDir: string): string {
  if (configured) return configured;
  const path = join(dataDir, "secret");
  try {
    const kept = readFileSync(path, "utf8").trim();
    if (kept.length >= 32) return kept;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  mkdirSync(dataDir, { recursive: true });
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("hex");
  writeFileSync(path, secret + "\n", { mode: 0o600 });
  return secret;
}
