/**
 * The chat's routes. Who posts, types or has seen is always the session's user: no field of the
 * request names a user. Reading a room needs the subscribe permission on its topic (anyone for a
 * public room, as for any public topic; `admins` for a room in HERALD_PRIVATE_TOPICS), writing in
 * it the publish permission and a signed-in session.
 */
import { currentUser, pageViewer, viewerOf, type AppContext } from "../server/context.ts";
import { HttpError } from "../server/errors.ts";
import { readBrowserForm } from "../server/form.ts";
import { pageStreamUrl } from "../server/pages.ts";
import { principalOf } from "../server/policy.ts";
import { checkPublishRate } from "../server/publish.ts";
import { htmlResponse, isHtmx, seeOther } from "../server/respond.ts";
import type { User } from "../server/session.ts";
import { LOBBY, parseRoom, parseText, roomChannel, ROOM_PREFIX } from "./model.ts";
import type { ChatRooms } from "./rooms.ts";
import { CHAT_MESSAGE, CHAT_PAGE, chatPage, messageForm, messageItem } from "./views.ts";

/** What the chat's routes need: herald's context and the rooms' live state. */
export interface ChatContext extends AppContext {
  chat: ChatRooms;
}

/** The room in `/chat/:room…`, lower-cased; 400 when it cannot be one. */
function roomOfPath(req: Request): string {
  return parseRoom(decodeURIComponent(new URL(req.url).pathname.split("/")[2] ?? ""));
}

/** The signed-in user who may write in `room`: 401 for anonymous, 403 where the policy refuses. */
function writer(ctx: AppContext, req: Request, room: string, doing: string): User {
  const user = currentUser(ctx, req);
  if (!user) throw new HttpError(401, `Sign in to ${doing} in a chat room.`);
  ctx.policy.check(principalOf(user), "publish", roomChannel(room));
  return user;
}

/** `GET /chat`: to the room `?room=` names, or the lobby. */
export function chatIndex(_ctx: ChatContext, req: Request): Response {
  const { searchParams } = new URL(req.url);
  const asked = searchParams.get("room");
  const htmx = searchParams.get("htmx");
  const room = asked ? parseRoom(asked) : LOBBY;
  return seeOther(`/chat/${room}${htmx ? `?htmx=${encodeURIComponent(htmx)}` : ""}`);
}

/** `GET /chat/:room`: the room's page, for whoever may follow its topic. */
export async function room(ctx: ChatContext, req: Request): Promise<Response> {
  const name = roomOfPath(req);
  const viewer = pageViewer(ctx, req);
  ctx.policy.check(principalOf(viewer.user), "subscribe", roomChannel(name));
  const view = await ctx.chat.view(name, viewer.user?.id ?? null);
  const page = chatPage(viewer, name, pageStreamUrl(CHAT_PAGE, [`${ROOM_PREFIX}${name}`]), view);
  return htmlResponse(page, { headers: viewer.setCookie ? { "set-cookie": viewer.setCookie } : {} });
}

/** `POST /chat/:room`: field `text`. Publishes `chat-message` on the room, written by the session's user. */
export async function post(ctx: ChatContext, req: Request): Promise<Response> {
  const name = roomOfPath(req);
  const user = writer(ctx, req, name, "write");
  const fields = await readBrowserForm(ctx, req, user);
  const text = parseText(fields.text);
  checkPublishRate(ctx.rates.publishesPerUser, user.id);
  const at = Date.now();
  const published = await ctx.hub.publish(roomChannel(name), {
    event: CHAT_MESSAGE,
    data: (id) => messageItem({ id, author: user.id, text, at }).value,
  });
  ctx.chat.stoppedTyping(name, user.id);
  await ctx.chat.seen(name, user.id, Number(published.id.slice(published.id.lastIndexOf("-") + 1)));
  if (!isHtmx(req)) return seeOther(`/chat/${name}`);
  // The status line is emptied (of an earlier refusal), and the form comes back empty.
  return htmlResponse(messageForm(name, viewerOf(ctx, req).csrf, true));
}

/** `POST /chat/:room/typing`: the session's user is typing; the room's other readers are told. */
export async function typing(ctx: ChatContext, req: Request): Promise<Response> {
  const name = roomOfPath(req);
  const user = writer(ctx, req, name, "write");
  await readBrowserForm(ctx, req, user);
  ctx.chat.typing(name, user.id);
  return new Response(null, { status: 204 });
}

/**
 * `POST /chat/:room/seen`: field `upTo` (a message id; the newest when empty). The session's user
 * has seen the room up to there; the room gets the new receipts.
 */
export async function seen(ctx: ChatContext, req: Request): Promise<Response> {
  const name = roomOfPath(req);
  const user = currentUser(ctx, req);
  if (!user) throw new HttpError(401, "Sign in to mark a chat room seen.");
  ctx.policy.check(principalOf(user), "subscribe", roomChannel(name));
  const fields = await readBrowserForm(ctx, req, user);
  const text = (fields.upTo ?? "").trim();
  if (text !== "" && !/^\d{1,15}$/.test(text)) throw new HttpError(400, "upTo must be a message id (a whole number).");
  await ctx.chat.seen(name, user.id, text === "" ? undefined : Number(text));
  return new Response(null, { status: 204 });
}
