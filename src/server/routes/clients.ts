/**
 * `GET /api/clients`: who is connected, for admins (session in `admins`) and API tokens. JSON:
 * totals, per user and per topic, the average connection age, events sent, the last event time,
 * dropped streams, and one row per open stream. `?user=` and `?topic=` filter the rows and totals.
 * Figures are this process's; with Redis, `cluster` sums every live process.
 */
import { groupChannel, parseTopic, topicChannel, USER_ID, userChannel, type Channel } from "../../core/channel.ts";
import { mediaType, readFormData, readJson } from "../form.ts";
import { currentUser, pageViewer, type AppContext } from "../context.ts";
import { clientFigures } from "../monitor.ts";
import { HttpError } from "../errors.ts";
import { ADMINS } from "../policy.ts";
import { htmlResponse, jsonResponse } from "../respond.ts";
import { monitorFigures, monitorPage } from "../../../views/monitor.ts";
import { authenticate } from "./api.ts";

/** Throws 401/403 unless the request comes from an admin's session or carries a publish token. */
export async function checkAdmin(ctx: AppContext, req: Request): Promise<void> {
  const user = currentUser(ctx, req);
  if (user?.groups.includes(ADMINS)) return;
  if (!req.headers.get("authorization")) {
    throw new HttpError(
      user ? 403 : 401,
      user ? "Only members of admins may see who is connected." : "Sign in as an admin, or send a publish token.",
    );
  }
  // A static publish token sees everything; a JSON Web Token that may publish is not an admin.
  if ((await authenticate(ctx, req)).kind !== "token")
    throw new HttpError(403, "Only admins and publish tokens may see who is connected.");
}

/** `GET /monitor`: the page, for admins signed in. */
export async function monitor(ctx: AppContext, req: Request): Promise<Response> {
  const viewer = pageViewer(ctx, req);
  if (!viewer.user) throw new HttpError(401, "Sign in as an admin to see the monitor.");
  if (!viewer.user.groups.includes(ADMINS)) throw new HttpError(403, "Only members of admins may see the monitor.");
  return htmlResponse(monitorPage(viewer, await clientFigures(ctx)), {
    headers: viewer.setCookie ? { "set-cookie": viewer.setCookie } : {},
  });
}

/** Every `intervalMs`, while an admin has a stream open, sends the admins the monitor's figures (not logged). */
export function startMonitorFeed(ctx: AppContext, intervalMs = 2_000): () => void {
  const admins = groupChannel(ADMINS);
  const timer = setInterval(async () => {
    if (ctx.hub.subscriberCount(admins) === 0) return;
    try {
      const figures = await clientFigures(ctx);
      ctx.hub.signal(admins, { event: "monitor", data: monitorFigures(figures).value });
    } catch (error) {
      // Redis away: the figures come with a later tick; a rejection here would end the process.
      ctx.log.warn("monitor figures not sent", { error: String(error) });
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

export async function clients(ctx: AppContext, req: Request): Promise<Response> {
  await checkAdmin(ctx, req);
  const url = new URL(req.url);
  const user = url.searchParams.get("user")?.toLowerCase() ?? null;
  if (user !== null && !USER_ID.test(user)) throw new HttpError(400, `"${user}" is not a valid user.`);
  const topicText = url.searchParams.get("topic");
  const topic = topicText === null ? null : topicChannel(parseTopic(topicText));
  return jsonResponse(await clientFigures(ctx, { user, topic }));
}

/**
 * `POST /api/clients/disconnect` with `user=<id>` or `topic=<name>` (a form or JSON), for admins
 * and publish tokens: ends those streams on every process. Their browsers reconnect as usual,
 * and are let in or not as the policy says then. Answers `{disconnected, everywhere}`: the streams
 * ended on the process that answered, and whether the order went to the others (with Redis).
 */
export async function disconnect(ctx: AppContext, req: Request): Promise<Response> {
  await checkAdmin(ctx, req);
  const fields =
    mediaType(req) === "application/json"
      ? ((await readJson(req, ctx.config.limits.maxBodyBytes)) as Record<string, unknown>)
      : Object.fromEntries(await readFormData(req, ctx.config.limits.maxBodyBytes));
  const user = fields?.user;
  const topic = fields?.topic;
  const one = (value: unknown) => (Array.isArray(value) ? value[0] : value);
  if ((user === undefined) === (topic === undefined))
    throw new HttpError(400, "Say whose streams to end: user=<id> or topic=<name>, one of them.");
  let channel: Channel;
  if (user !== undefined) {
    const id = String(one(user)).toLowerCase();
    if (!USER_ID.test(id)) throw new HttpError(400, `"${String(one(user)).slice(0, 40)}" is not a valid user.`);
    channel = userChannel(id);
  } else {
    channel = topicChannel(parseTopic(String(one(topic))));
  }
  const disconnected = await ctx.control.send({ kind: "disconnect", channel });
  ctx.log.info("streams ended", { channel, disconnected });
  return jsonResponse({ disconnected, everywhere: ctx.config.eventLog === "redis" });
}
