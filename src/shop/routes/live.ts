/** `GET /live`: market prices, this server's figures and notifications, live. */
import { pageViewer, streamChannels } from "../../server/context.ts";
import { pageStreamUrl } from "../../server/pages.ts";
import { htmlResponse } from "../../server/respond.ts";
import type { ShopContext } from "../context.ts";
import { liveState } from "../actions.ts";
import { LIVE_PAGE, livePage } from "../views/live.ts";

export async function live(ctx: ShopContext, req: Request): Promise<Response> {
  const viewer = pageViewer(ctx, req);
  const channels = streamChannels(ctx, viewer.user, LIVE_PAGE.topics);
  const page = livePage(viewer, pageStreamUrl(LIVE_PAGE), await liveState(ctx, viewer.user, channels));
  return htmlResponse(page, { headers: viewer.setCookie ? { "set-cookie": viewer.setCookie } : {} });
}
