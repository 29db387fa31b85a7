/**
 * `GET /embed/:topic`: a self-contained live feed fragment of one public topic, for other pages
 * (and other origins, through `HERALD_CORS_ORIGINS`) to include.
 */
import { parseTopic, topicChannel } from "../channel.ts";
import { currentUser, type AppContext } from "../context.ts";
import { htmxVersionOf } from "../htmx.ts";
import { htmlResponse } from "../respond.ts";
import { inboxItems } from "../snapshot.ts";
import { streamChannels } from "./stream.ts";
import { embedFragment } from "../../views/embed.ts";

export async function embed(ctx: AppContext, req: Request & { params?: Record<string, string> }): Promise<Response> {
  const url = new URL(req.url);
  const topic = parseTopic(decodeURIComponent(url.pathname.slice("/embed/".length)));
  const user = currentUser(ctx, req);
  // The same permission as a stream on the topic: a private topic is refused here too.
  streamChannels(ctx, user, [topic]);
  const origin = ctx.config.publicUrl?.origin ?? url.origin;
  const items = await inboxItems(ctx, null, [topicChannel(topic)]);
  const htmx = htmxVersionOf(url, ctx.config.htmx);
  return htmlResponse(embedFragment({ topic, streamUrl: `${origin}/sse?page=embed&topic=${encodeURIComponent(topic)}`, items, htmx }));
}
