/**
 * `POST /login` and `POST /logout`.
 */
import type { AppContext } from "../context.ts";
import { readForm } from "../form.ts";
import { seeOther } from "../respond.ts";
import { parseUserName, SESSION_COOKIE } from "../session.ts";

/** Signs in with a name, sets the signed session cookie, and goes back to the home page. */
export async function login(ctx: AppContext, req: Request): Promise<Response> {
  const fields = await readForm(req);
  const principal = parseUserName(fields.name);
  const cookie = new Bun.Cookie(SESSION_COOKIE, ctx.sessions.issue(principal), {
    path: "/",
    httpOnly: true,
    sameSite: "lax",
    maxAge: ctx.sessions.ttlS,
  });
  return seeOther("/", { "set-cookie": cookie.toString() });
}

/** Clears the session cookie and goes back to the home page. */
export function logout(): Response {
  const cookie = new Bun.Cookie(SESSION_COOKIE, "", { path: "/", httpOnly: true, sameSite: "lax", maxAge: 0 });
  return seeOther("/", { "set-cookie": cookie.toString() });
}
