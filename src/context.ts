/**
 * What every route needs: the configuration, the hub and the session signer.
 */
import type { Config } from "./config.ts";
import type { Hub } from "./hub.ts";
import { SESSION_COOKIE, type Principal, type SessionSigner } from "./session.ts";

export interface AppContext {
  config: Config;
  hub: Hub;
  sessions: SessionSigner;
  /** `Date.now()` when the app started. */
  startedAt: number;
}

/** The verified user behind a request, or `null` for anonymous (no cookie, tampered or expired). */
export function currentUser(ctx: AppContext, req: Request): Principal | null {
  return ctx.sessions.verify(readCookie(req, SESSION_COOKIE));
}

function readCookie(req: Request, name: string): string | null {
  const header = req.headers.get("cookie");
  if (!header) return null;
  return new Bun.CookieMap(header).get(name);
}
