/** `GET /live`: market prices, this server's figures and notifications, live. */
import { pageViewer, type AppContext } from "../context.ts";
import { liveState, PAGE_TOPICS, pageStreamUrl } from "../page.ts";
import { htmlResponse } from "../respond.ts";
import { streamChannels } from "./stream.ts";
import { livePage } from "../../views/live.ts";

export async function live(ctx: AppContext, req: Request): Promise<Response> {
  const viewer = pageViewer(ctx, req);
  const channels = streamChannels(ctx, viewer.user, PAGE_TOPICS.live);
  const page = livePage(viewer, pageStreamUrl("live"), await liveState(ctx, viewer.user, channels));
  return htmlResponse(page, { headers: viewer.setCookie ? { "set-cookie": viewer.setCookie } : {} });
}
