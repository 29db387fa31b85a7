/**
 * `GET /embed/:topic`: a self-contained live feed fragment of one public topic, for other pages
 * (and other origins, through `HERALD_CORS_ORIGINS`) to include.
 */
import { parseTopic, topicChannel } from "../../core/channel.ts";
import { currentUser, type AppContext, streamChannels } from "../context.ts";
import { htmxVersionOf } from "../htmx.ts";
import { HttpError } from "../errors.ts";
import { htmlResponse } from "../respond.ts";
import { inboxItems } from "../inbox.ts";
import { embedFragment } from "../../../views/embed.ts";

/** The topic in `/embed/:topic`, decoded; 400 for a malformed percent-encoding. */
function topicOf(url: URL): string {
  let text: string;
  try {
    text = decodeURIComponent(url.pathname.slice("/embed/".length));
  } catch {
    throw new HttpError(400, "The topic in the address has a malformed percent-encoding.");
  }
  return parseTopic(text);
}

/**
 * The fragment's stream URL is absolute only with `HERALD_PUBLIC_URL`: built from the request's
 * `Host`, it would let whoever sends the request (or poisons a cache with it) point pages at
 * their own server. Relative, it works on herald's own pages; other origins need the public URL.
 */
export async function embed(ctx: AppContext, req: Request): Promise<Response> {
  const url = new URL(req.url);
  const topic = topicOf(url);
  const user = currentUser(ctx, req);
  // The same permission as a stream on the topic: a private topic is refused here too.
  streamChannels(ctx, user, [topic]);
  const origin = ctx.config.publicUrl?.origin ?? "";
  const items = await inboxItems(ctx, null, [topicChannel(topic)]);
  const htmx = htmxVersionOf(url, ctx.config.htmx);
  // Who asks decides whether it is answered (a private topic is refused): no shared cache may keep it.
  return htmlResponse(
    embedFragment({ topic, streamUrl: `${origin}/sse?page=embed&topic=${encodeURIComponent(topic)}`, items, htmx }),
    { headers: { "cache-control": "private, no-cache" } },
  );
}
