/**
 * `POST /login` and `POST /logout`, both CSRF-checked browser forms.
 */
import { cookieOptions, currentUser, type AppContext } from "../context.ts";
import { readBrowserForm } from "../form.ts";
import { seeOther } from "../respond.ts";
import { groupsOf, parseUserName, SESSION_COOKIE } from "../session.ts";

/** Signs in with a name, sets the signed session cookie (with the user's groups), and goes home. */
export async function login(ctx: AppContext, req: Request): Promise<Response> {
  const fields = await readBrowserForm(ctx, req, currentUser(ctx, req));
  const { id, name } = parseUserName(fields.name);
  const user = { id, name, groups: groupsOf(ctx.config.groups, id) };
  const cookie = new Bun.Cookie(SESSION_COOKIE, ctx.sessions.issue(user), cookieOptions(ctx, ctx.sessions.ttlS));
  ctx.log.info("signed in", { user: id, groups: user.groups.join(",") });
  return seeOther("/", { "set-cookie": cookie.toString() });
}

/** Clears the session cookie and goes home. */
export async function logout(ctx: AppContext, req: Request): Promise<Response> {
  const user = currentUser(ctx, req);
  await readBrowserForm(ctx, req, user);
  const cookie = new Bun.Cookie(SESSION_COOKIE, "", cookieOptions(ctx, 0));
  if (user) ctx.log.info("signed out", { user: user.id });
  return seeOther("/", { "set-cookie": cookie.toString() });
}
