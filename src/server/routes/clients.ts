/**
 * `GET /api/clients`: who is connected, for admins (session in `admins`) and API tokens. JSON:
 * totals, per user and per topic, the average connection age, events sent, the last event time,
 * dropped streams, and one row per open stream. `?user=` and `?topic=` filter the rows and totals.
 * Figures are this process's; with Redis, `cluster` sums every live process.
 */
import { groupChannel, parseTopic, topicChannel, USER_ID } from "../../core/channel.ts";
import { currentUser, pageViewer, type AppContext } from "../context.ts";
import { clientFigures } from "../monitor.ts";
import { HttpError } from "../errors.ts";
import { ADMINS } from "../policy.ts";
import { htmlResponse, jsonResponse } from "../respond.ts";
import { monitorFigures, monitorPage } from "../../../views/monitor.ts";
import { authenticate } from "./api.ts";

/** Throws 401/403 unless the request comes from an admin's session or carries a publish token. */
export function checkAdmin(ctx: AppContext, req: Request): void {
  const user = currentUser(ctx, req);
  if (user?.groups.includes(ADMINS)) return;
  if (!req.headers.get("authorization")) {
    throw new HttpError(
      user ? 403 : 401,
      user ? "Only members of admins may see who is connected." : "Sign in as an admin, or send a publish token.",
    );
  }
  authenticate(ctx, req);
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
  checkAdmin(ctx, req);
  const url = new URL(req.url);
  const user = url.searchParams.get("user")?.toLowerCase() ?? null;
  if (user !== null && !USER_ID.test(user)) throw new HttpError(400, `"${user}" is not a valid user.`);
  const topicText = url.searchParams.get("topic");
  const topic = topicText === null ? null : topicChannel(parseTopic(topicText));
  return jsonResponse(await clientFigures(ctx, { user, topic }));
}
