/**
 * The live state of chat rooms beside their messages (which are events in the log): who is typing,
 * and who has seen up to which message. Both are kept by this process, in memory, and sent as
 * signals (not logged) on the room's topic; a snapshot carries them after any reconnect. The
 * member list comes from presence: who has a stream on the room, sent again whenever a `join` or
 * `leave` event goes out on it.
 */
import type { AppContext } from "../server/context.ts";
import { raw } from "../../views/html.ts";
import { HISTORY_SIZE, roomChannel, roomOf, ROOM_PREFIX, type RoomView } from "./model.ts";
import {
  authorOf,
  CHAT_MEMBERS,
  CHAT_MESSAGE,
  CHAT_SEEN,
  CHAT_TYPING,
  memberList,
  receiptsLine,
  typingLine,
} from "./views.ts";

export interface ChatOptions {
  /** How long a typing indicator stays after its writer's last keystroke, in milliseconds. Defaults to `4000`. */
  typingMs?: number;
}

/** Rooms whose read receipts are kept; past it, the room seen longest ago is forgotten first. */
const ROOMS_KEPT = 10_000;

/** The rooms' typing indicators, read receipts and member lists, sent as they change. */
export class ChatRooms {
  readonly #ctx: AppContext;
  readonly #typingMs: number;
  /** room → user → when their indicator ends (`performance.now()`). */
  readonly #typing = new Map<string, Map<string, number>>();
  /** room → user → the id of the last message they have seen. */
  readonly #seen = new Map<string, Map<string, number>>();
  #sweep: ReturnType<typeof setTimeout> | null = null;
  readonly #later = new Set<ReturnType<typeof setTimeout>>();
  readonly #stopListening: () => void;

  constructor(ctx: AppContext, options: ChatOptions = {}) {
    this.#ctx = ctx;
    this.#typingMs = options.typingMs ?? 4000;
    this.#stopListening = ctx.hub.onSent(
      (channels, event) => {
        if (event !== "join" && event !== "leave") return;
        for (const channel of channels) {
          const room = roomOf(channel);
          if (room === null) continue;
          void this.#sendMembers(room);
          // With Redis, presence counts other processes' streams as of their last write.
          if (ctx.presence) {
            const timer = setTimeout(() => {
              this.#later.delete(timer);
              void this.#sendMembers(room);
            }, ctx.config.presenceMs + 100);
            timer.unref();
            this.#later.add(timer);
          }
        }
      },
      (error) => ctx.log.error("event listener failed", { error: String(error) }),
    );
  }

  /** Who has a stream on the room: this process's streams, and with Redis every live process's. */
  async members(room: string): Promise<string[]> {
    const here = new Set(this.#ctx.hub.usersOn(roomChannel(room)).users);
    if (this.#ctx.presence) {
      try {
        for (const user of (await this.#ctx.presence.totals()).members[`${ROOM_PREFIX}${room}`] ?? []) here.add(user);
      } catch {
        // Redis away: this process's own members are still right.
      }
    }
    return [...here].sort();
  }

  async #sendMembers(room: string): Promise<void> {
    const list = memberList(await this.members(room), true).value;
    this.#ctx.hub.signal(roomChannel(room), { event: CHAT_MEMBERS, data: list });
  }

  /** Who is typing in the room now, `reader` aside. */
  typists(room: string, reader: string | null): string[] {
    return [...(this.#typing.get(room)?.keys() ?? [])].filter((user) => user !== reader).sort();
  }

  /** `user` is typing in the room: the others are told, and told again once it ends. */
  typing(room: string, user: string): void {
    let typing = this.#typing.get(room);
    if (!typing) this.#typing.set(room, (typing = new Map()));
    const already = typing.has(user);
    typing.set(user, performance.now() + this.#typingMs);
    if (!already) this.#sendTyping(room);
    this.#sweep ??= setTimeout(() => this.#expire(), this.#typingMs);
    this.#sweep.unref();
  }

  /** `user` stopped typing (they sent their message). */
  stoppedTyping(room: string, user: string): void {
    const typing = this.#typing.get(room);
    if (!typing?.delete(user)) return;
    if (typing.size === 0) this.#typing.delete(room);
    this.#sendTyping(room);
  }

  #expire(): void {
    this.#sweep = null;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [room, typing] of this.#typing) {
      let changed = false;
      for (const [user, until] of typing) {
        if (until <= now) {
          typing.delete(user);
          changed = true;
        } else next = Math.min(next, until);
      }
      if (typing.size === 0) this.#typing.delete(room);
      if (changed) this.#sendTyping(room);
    }
    if (next !== Number.POSITIVE_INFINITY) {
      this.#sweep = setTimeout(() => this.#expire(), Math.max(1, next - now));
      this.#sweep.unref();
    }
  }

  /** Each reader gets the typists without themselves. */
  #sendTyping(room: string): void {
    this.#ctx.hub.signalEach(roomChannel(room), (reader) => ({
      event: CHAT_TYPING,
      data: typingLine(this.typists(room, reader), true).value,
    }));
  }

  /**
   * `user` has seen the room's messages up to id `upTo` (the newest when omitted): their mark
   * moves to the last message at or before it, never back, and the room gets the new receipts.
   */
  async seen(room: string, user: string, upTo?: number): Promise<void> {
    const [last] = await this.#ctx.hub.log.latest([roomChannel(room)], CHAT_MESSAGE, 1, upTo);
    if (!last) return;
    let marks = this.#seen.get(room);
    if (marks) this.#seen.delete(room);
    else marks = new Map();
    // Kept in the order rooms were last seen in, so the one forgotten is the one seen longest ago.
    this.#seen.set(room, marks);
    if (this.#seen.size > ROOMS_KEPT) this.#seen.delete(this.#seen.keys().next().value!);
    if ((marks.get(user) ?? 0) >= last.id) return;
    marks.set(user, last.id);
    await this.sendReceipts(room);
  }

  /** Who has seen the room's last message, its author aside. */
  async seenBy(room: string, upTo?: number): Promise<string[]> {
    const [last] = await this.#ctx.hub.log.latest([roomChannel(room)], CHAT_MESSAGE, 1, upTo);
    if (!last) return [];
    const author = authorOf(last.data);
    return [...(this.#seen.get(room) ?? [])]
      .filter(([user, id]) => id >= last.id && user !== author)
      .map(([user]) => user)
      .sort();
  }

  /** Sends the room who has seen its last message (after a new message, nobody yet). */
  async sendReceipts(room: string): Promise<void> {
    const data = receiptsLine(await this.seenBy(room), true).value;
    this.#ctx.hub.signal(roomChannel(room), { event: CHAT_SEEN, data });
  }

  /** What the room's page shows `reader`, as of event `upTo` (now when omitted). */
  async view(room: string, reader: string | null, upTo?: number): Promise<RoomView> {
    const events = await this.#ctx.hub.log.latest([roomChannel(room)], CHAT_MESSAGE, HISTORY_SIZE, upTo);
    return {
      // Stored fragments are markup the chat rendered, every value escaped.
      messages: raw(
        events
          .reverse()
          .map((event) => event.data)
          .join("\n"),
      ),
      members: await this.members(room),
      typing: this.typists(room, reader),
      seenBy: await this.seenBy(room, upTo),
    };
  }

  /** Stops listening for presence and the timers. */
  stop(): void {
    this.#stopListening();
    if (this.#sweep) clearTimeout(this.#sweep);
    for (const timer of this.#later) clearTimeout(timer);
    this.#later.clear();
  }
}
