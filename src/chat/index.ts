/**
 * The demo chat: rooms at `/chat/<room>`, added to a herald through the same interface any app
 * uses (`addRoutes`, `addPage`, `use`). A room is the topic `chat.<room>`: its messages are events
 * in the log (so a reconnect replays what it missed, and a snapshot shows the latest), its member
 * list comes from presence (`join`/`leave`), and its typing indicator and read receipts are
 * signals. See `src/chat/routes.ts` for who may do what.
 */
import { join } from "node:path";
import { HeraldError } from "../core/errors.ts";
import type { HeraldApp, Route } from "../server/app.ts";
import type { Config } from "../server/config.ts";
import { JS, loadAsset, serveAsset } from "../server/routes/assets.ts";
import { LOBBY, ROOM_PREFIX, roomOf } from "./model.ts";
import { ChatRooms, type ChatOptions } from "./rooms.ts";
import { chatIndex, post, room, seen, typing, type ChatContext } from "./routes.ts";
import { CHAT_PAGE, chatSnapshot } from "./views.ts";
import { html } from "../../views/html.ts";

/** The topic pattern of every room, for HERALD_PRESENCE_TOPICS. */
export const ROOM_TOPICS = `${ROOM_PREFIX}*`;

/** `config` with every room's members public (HERALD_PRESENCE_TOPICS), which the chat's member list needs. */
export function withChatPresence(config: Config): Config {
  if (config.presenceTopics.includes(ROOM_TOPICS)) return config;
  return { ...config, presenceTopics: [...config.presenceTopics, ROOM_TOPICS] };
}

/**
 * Adds the chat to `herald`: its page, routes and script. Rooms must be presence topics
 * (`withChatPresence`), or their member lists would stay empty: that is refused here.
 */
export function installChat(herald: HeraldApp, options: ChatOptions = {}): ChatContext {
  if (!herald.ctx.policy.isPresenceTopic(`${ROOM_PREFIX}${LOBBY}`))
    throw new HeraldError(`the chat needs its rooms' members public: add ${ROOM_TOPICS} to HERALD_PRESENCE_TOPICS`);
  const chat: ChatContext = { ...herald.ctx, chat: new ChatRooms(herald.ctx, options) };
  herald.use({ stop: () => chat.chat.stop() });
  herald.addPage(
    {
      ...CHAT_PAGE,
      snapshot: async (user, channels, upTo) => {
        const name = channels.map(roomOf).find((r) => r !== null);
        if (name === undefined)
          return html`<p id="stream-notice" class="notice" hx-swap-oob="true">This stream follows no chat room: add ?topic=chat.&lt;room&gt;.</p>`
            .value;
        return chatSnapshot(await chat.chat.view(name, user?.id ?? null, upTo)).value;
      },
    },
    { href: `/chat/${LOBBY}`, label: "Chat" },
  );
  const bind =
    (route: Route<ChatContext>): Route =>
    (_ctx, req, server) =>
      route(chat, req, server);
  herald.addRoutes({
    "/chat": { GET: bind(chatIndex) },
    "/chat/:room": { GET: bind(room), POST: bind(post) },
    "/chat/:room/typing": { POST: bind(typing) },
    "/chat/:room/seen": { POST: bind(seen) },
  });
  const script = loadAsset(join(import.meta.dir, "chat.js"), JS);
  herald.addRoutes({ "/assets/chat.js": { GET: (_ctx, req) => serveAsset(script, req) } }, { identified: false });
  return chat;
}
