/**
 * Channel names: what a stream subscribes to and what a publish targets.
 *
 * - `everyone`: every stream;
 * - `topic:<name>`: streams that asked for the topic;
 * - `user:<id>`: the signed-in user's own streams, granted only from a verified session;
 * - `group:<name>`: the streams of a group's members (`HERALD_GROUPS`), from their session.
 */
import { InputError } from "./errors.ts";

export type Channel = "everyone" | `topic:${string}` | `user:${string}` | `group:${string}`;
export type ChannelKind = "everyone" | "topic" | "user" | "group";

/** A topic name: lower-case letters, digits, `.`, `_` and `-`, starting with a letter or digit, at most 64. */
export const TOPIC_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** A user id: the sign-in name in lower case. */
export const USER_ID = /^[a-z0-9_-]{1,32}$/;
/** A group name: like a topic name. */
export const GROUP_NAME = TOPIC_NAME;

export const EVERYONE: Channel = "everyone";

export function topicChannel(name: string): Channel {
  return `topic:${name}`;
}

export function userChannel(id: string): Channel {
  return `user:${id}`;
}

export function groupChannel(name: string): Channel {
  return `group:${name}`;
}

/** Checks a topic name, in lower case as user ids are, throwing a 400 that says what a valid one looks like. */
export function parseTopic(text: string): string {
  // ASCII only: `toLowerCase` would also fold characters such as the Kelvin sign into "k".
  const name = text.replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
  if (!TOPIC_NAME.test(name)) {
    throw new InputError(
      `"${text}" is not a valid topic name: use 1–64 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit.`,
    );
  }
  return name;
}

/** Parses a publish target (`everyone`, `topic:<name>`, `user:<id>` or `group:<name>`), throwing a 400 otherwise. */
export function parseTarget(text: string): Channel {
  const target = text.trim();
  if (target === "") throw new InputError("Choose a target: everyone, topic:<name>, user:<name> or group:<name>.");
  if (target === EVERYONE) return EVERYONE;
  const colon = target.indexOf(":");
  const kind = colon < 0 ? target : target.slice(0, colon);
  const name = target.slice(colon + 1);
  if (colon > 0 && kind === "topic") return topicChannel(parseTopic(name));
  if (colon > 0 && kind === "user") {
    const id = name.toLowerCase();
    if (!USER_ID.test(id)) throw new InputError(`"${name}" is not a valid user: use the name they signed in with.`);
    return userChannel(id);
  }
  if (colon > 0 && kind === "group") {
    if (!GROUP_NAME.test(name)) throw new InputError(`"${name}" is not a valid group name.`);
    return groupChannel(name);
  }
  throw new InputError(`Unknown target "${target}": use everyone, topic:<name>, user:<name> or group:<name>.`);
}

/** The kind of a channel, for stats and labels. */
export function channelKind(channel: Channel): ChannelKind {
  if (channel === EVERYONE) return "everyone";
  return channel.slice(0, channel.indexOf(":")) as ChannelKind;
}

/** The part after `kind:`; empty for `everyone`. */
export function channelName(channel: Channel): string {
  return channel.slice(channel.indexOf(":") + 1);
}

/**
 * Topics from query values such as `?topic=a&topic=b`, `?topic=a,b` or a form's `a, b`:
 * split, trimmed, de-duplicated and checked. More than `max` is a 400.
 */
export function parseTopicList(values: readonly string[], max: number): string[] {
  const topics = new Set<string>();
  for (const value of values) {
    for (const part of value.split(/[\s,]+/)) if (part !== "") topics.add(parseTopic(part));
  }
  if (topics.size > max)
    throw new InputError(`A stream may follow at most ${max} topics; this one asked for ${topics.size}.`);
  return [...topics];
}
