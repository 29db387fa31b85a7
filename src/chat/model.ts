/** The chat's words: rooms and their topics, messages and what a room's page shows. */
import { topicChannel, type Channel } from "../core/channel.ts";
import { HttpError } from "../server/errors.ts";
import type { Html } from "../../views/html.ts";

/** A room is the topic `chat.<room>`; HERALD_PRIVATE_TOPICS and HERALD_PRESENCE_TOPICS name rooms that way. */
export const ROOM_PREFIX = "chat.";
/** A room name: a topic name short enough for the prefix, in lower case. */
export const ROOM_NAME = /^[a-z0-9][a-z0-9._-]{0,58}$/;
/** The room the top bar links to. */
export const LOBBY = "lobby";
/** The most characters one message may have. */
export const MAX_MESSAGE_CHARS = 500;
/** How many of a room's latest messages a page and a snapshot show. */
export const HISTORY_SIZE = 50;

export interface ChatMessage {
  /** The event's id in the log. */
  id: number;
  /** The writer's user id, from their session. */
  author: string;
  text: string;
  /** `Date.now()` when it was posted. */
  at: number;
}

/** What a room's page shows one reader. */
export interface RoomView {
  /** The latest messages' fragments, oldest first, as they were logged. */
  messages: Html;
  /** Who has a stream on the room. */
  members: string[];
  /** Who is typing, the reader aside. */
  typing: string[];
  /** Who has seen the last message, its author aside. */
  seenBy: string[];
}

/** A room name as typed (in an address or a form), lower-cased; 400 when it cannot be a room. */
export function parseRoom(text: string): string {
  const room = text.trim().toLowerCase();
  if (!ROOM_NAME.test(room)) {
    throw new HttpError(
      400,
      `"${text}" is not a room name: use 1–59 letters, digits, ".", "_" or "-", starting with a letter or digit.`,
    );
  }
  return room;
}

/** The channel of a room. */
export function roomChannel(room: string): Channel {
  return topicChannel(`${ROOM_PREFIX}${room}`);
}

/** The room a channel is, or `null` for a channel that is not a room's. */
export function roomOf(channel: Channel): string | null {
  const prefix = `topic:${ROOM_PREFIX}`;
  return channel.startsWith(prefix) ? channel.slice(prefix.length) : null;
}

/** A message's text from the form: trimmed; 400 when empty, 413 when longer than `MAX_MESSAGE_CHARS`. */
export function parseText(value: string | undefined): string {
  const text = (value ?? "").replace(/\r\n?/g, "\n").trim();
  if (text === "") throw new HttpError(400, "Write something before sending.");
  const length = [...text].length;
  if (length > MAX_MESSAGE_CHARS) {
    throw new HttpError(
      413,
      `This message is ${length} characters long; the most a message may have is ${MAX_MESSAGE_CHARS}. Shorten it and send it again.`,
    );
  }
  return text;
}
