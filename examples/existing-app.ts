/**
 * An "existing app" with users of its own (passwords checked with `Bun.password`), that tells
 * herald who they are, and shows herald's live inbox in its own page. Two ways:
 *
 * - `mode: "jwt"`: at sign-in the app signs a JSON Web Token (HS256, WebCrypto) and sets it as
 *   the `herald_jwt` cookie; herald, with the same `HERALD_JWT_SECRET`, verifies it.
 * - `mode: "auth-request"`: the app keeps its own session cookie and answers herald's auth
 *   request at `/herald-auth` (herald's `HERALD_AUTH_URL`) with `{user, groups}`.
 *
 * Cookies are shared by every port of a host, so herald on another port of the same host gets
 * them, as an app and herald on one parent domain would.
 *
 *   HERALD_JWT_SECRET=change-me-0123456789abcdef HERALD_CORS_ORIGINS=http://localhost:3003 \
 *     HERALD_PUBLIC_URL=http://localhost:3000 npm run dev        # herald on :3000
 *   HERALD_JWT_SECRET=change-me-0123456789abcdef bun examples/existing-app.ts   # the app on :3003
 *
 * Sign in as alice / wonderland or bob / builder.
 */

export interface ExistingAppOptions {
  /** How the app tells herald who its user is. */
  mode: "jwt" | "auth-request";
  /** herald's URL, for the page's scripts and stream. */
  heraldUrl: string;
  /** The HS256 key shared with herald (`HERALD_JWT_SECRET`), for `mode: "jwt"`. */
  jwtSecret?: string;
  port?: number;
  hostname?: string;
}

interface AppUser {
  id: string;
  passwordHash: string;
  groups: string[];
}

const escapeText = (text: string) => Bun.escapeHTML(text);

function base64url(bytes: string | ArrayBuffer): string {
  return Buffer.from(typeof bytes === "string" ? bytes : new Uint8Array(bytes)).toString("base64url");
}

/** A herald token for `user`, valid for an hour. */
async function signToken(secret: string, user: AppUser): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const head = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = base64url(
    JSON.stringify({ sub: user.id, exp: Math.floor(Date.now() / 1000) + 3600, groups: user.groups }),
  );
  const signature = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${head}.${body}`));
  return `${head}.${body}.${base64url(signature)}`;
}

function page(heraldUrl: string, user: AppUser | null, message = ""): Response {
  const base = escapeText(heraldUrl);
  const body = user
    ? `<p>Hello ${escapeText(user.id)}. Your notifications, live from herald:</p>
<div hx-ext="sse" sse-connect="${base}/sse">
  <ul id="inbox" sse-swap="notification" hx-swap="afterbegin"></ul>
</div>`
    : `<form method="post" action="/login">
  <label>User <input name="user" autocomplete="username"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button type="submit">Sign in</button>
</form>${message ? `<p role="alert">${escapeText(message)}</p>` : ""}`;
  return new Response(
    `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Existing app</title>
<meta name="htmx-config" content='{"selfRequestsOnly":false}'>
<script src="${base}/assets/htmx.js"></script>
<script src="${base}/assets/htmx-ext-sse.js"></script>
</head>
<body>
<h1>Existing app</h1>
${body}
</body>
</html>
`,
    { status: message ? 401 : 200, headers: { "content-type": "text/html; charset=utf-8" } },
  );
}

/** Starts the app; returns its URL and a way to stop it. */
export async function startExistingApp(options: ExistingAppOptions): Promise<{ url: string; stop(): void }> {
  const users = new Map<string, AppUser>([
    ["alice", { id: "alice", passwordHash: await Bun.password.hash("wonderland"), groups: ["ops"] }],
    ["bob", { id: "bob", passwordHash: await Bun.password.hash("builder"), groups: [] }],
  ]);
  // The app's own sessions: an opaque random id to a user.
  const sessions = new Map<string, AppUser>();
  const sessionOf = (req: Request) =>
    sessions.get(new Bun.CookieMap(req.headers.get("cookie") ?? "").get("app_session") ?? "") ?? null;

  const server = Bun.serve({
    port: options.port ?? 0,
    hostname: options.hostname ?? "127.0.0.1",
    development: false,
    routes: {
      "/": (req) => page(options.heraldUrl, sessionOf(req)),
      "/favicon.ico": () => new Response(null, { status: 204 }),
      "/login": {
        POST: async (req) => {
          const form = await req.formData();
          const user = users.get(String(form.get("user") ?? ""));
          if (!user || !(await Bun.password.verify(String(form.get("password") ?? ""), user.passwordHash))) {
            return page(options.heraldUrl, null, "Wrong user or password.");
          }
          const sid = crypto.randomUUID();
          sessions.set(sid, user);
          const headers = new Headers({ location: "/" });
          headers.append(
            "set-cookie",
            new Bun.Cookie("app_session", sid, { path: "/", httpOnly: true, sameSite: "lax" }).toString(),
          );
          if (options.mode === "jwt") {
            const token = await signToken(options.jwtSecret!, user);
            headers.append(
              "set-cookie",
              new Bun.Cookie("herald_jwt", token, {
                path: "/",
                httpOnly: true,
                sameSite: "lax",
                maxAge: 3600,
              }).toString(),
            );
          }
          return new Response(null, { status: 303, headers });
        },
      },
      // herald's auth request (HERALD_AUTH_URL): who is the request whose cookies these are?
      "/herald-auth": (req) => {
        const user = sessionOf(req);
        return user ? Response.json({ user: user.id, groups: user.groups }) : new Response(null, { status: 401 });
      },
    },
    fetch: () => new Response("Not found", { status: 404 }),
  });
  return { url: `http://${server.hostname}:${server.port}`, stop: () => server.stop(true) };
}

if (import.meta.main) {
  const mode = process.env.APP_MODE === "auth-request" ? "auth-request" : "jwt";
  const app = await startExistingApp({
    mode,
    heraldUrl: process.env.HERALD_URL ?? "http://localhost:3000",
    jwtSecret: process.env.HERALD_JWT_SECRET,
    port: Number(process.env.APP_PORT ?? 3003),
    hostname: "localhost",
  });
  console.log(`existing app (${mode}) listening on ${app.url}`);
}
