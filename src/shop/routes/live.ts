/** `GET /live`: market prices, this server's figures and notifications, live. */
import { pageViewer, type AppContext } from "../../server/context.ts";
import { liveState, PAGE_TOPICS, pageStreamUrl } from "../../server/pages.ts";
import { htmlResponse } from "../../server/respond.ts";
import { streamChannels } from "../../server/routes/stream.ts";
import { livePage } from "../views/live.ts";

export async function live(ctx: AppContext, req: Request): Promise<Response> {
  const viewer = pageViewer(ctx, req);
  const channels = streamChannels(ctx, viewer.user, PAGE_TOPICS.live);
  const page = livePage(viewer, pageStreamUrl("live"), await liveState(ctx, viewer.user, channels));
  return htmlResponse(page, { headers: viewer.setCookie ? { "set-cookie": viewer.setCookie } : {} });
}
