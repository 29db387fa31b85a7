/**
 * `POST /login` and `POST /logout`, both CSRF-checked browser forms.
 */
import { cookieOptions, currentUser, type AppContext } from "../context.ts";
import { CSRF_COOKIE, CSRF_COOKIE_MAX_AGE_S, newNonce } from "../csrf.ts";
import { readBrowserForm } from "../form.ts";
import { groupsOf, parseUserName, SESSION_COOKIE } from "../session.ts";

/** Where sign-in and sign-out go: the home page, keeping a `?htmx=` choice the form carried. */
function home(req: Request): string {
  const htmx = new URL(req.url).searchParams.get("htmx");
  return htmx === "2" || htmx === "4" ? `/?htmx=${htmx}` : "/";
}

/**
 * Signs in with a name: a new session in a signed cookie, and a new CSRF nonce, so that no token
 * issued before the sign-in (to this browser or to whoever planted its cookie) works after it.
 */
export async function login(ctx: AppContext, req: Request): Promise<Response> {
  const fields = await readBrowserForm(ctx, req, currentUser(ctx, req));
  const { id, name } = parseUserName(fields.name);
  const { cookie } = ctx.sessions.issue({ id, name });
  ctx.log.info("signed in", { user: id, groups: groupsOf(ctx.config.groups, id).join(",") });
  const headers = new Headers({ location: home(req) });
  headers.append(
    "set-cookie",
    new Bun.Cookie(SESSION_COOKIE, cookie, cookieOptions(ctx, ctx.sessions.ttlS)).toString(),
  );
  headers.append(
    "set-cookie",
    new Bun.Cookie(CSRF_COOKIE, newNonce(), cookieOptions(ctx, CSRF_COOKIE_MAX_AGE_S)).toString(),
  );
  return new Response(null, { status: 303, headers });
}

/** Ends the session for every process (a replayed cookie is anonymous from now on), clears the cookie and goes home. */
export async function logout(ctx: AppContext, req: Request): Promise<Response> {
  const user = currentUser(ctx, req);
  await readBrowserForm(ctx, req, user);
  if (user?.session) {
    await ctx.revocations.revoke(user.session.sid, user.session.exp * 1000);
    ctx.hub.disconnect({ tag: user.session.sid });
  }
  const headers = new Headers({ location: home(req) });
  headers.append("set-cookie", new Bun.Cookie(SESSION_COOKIE, "", cookieOptions(ctx, 0)).toString());
  headers.append(
    "set-cookie",
    new Bun.Cookie(CSRF_COOKIE, newNonce(), cookieOptions(ctx, CSRF_COOKIE_MAX_AGE_S)).toString(),
  );
  if (user) ctx.log.info("signed out", { user: user.id });
  return new Response(null, { status: 303, headers });
}
