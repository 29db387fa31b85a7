/**
 * A notification: what the send form and the API publish, and what the inbox shows.
 */
import { HttpError } from "./errors.ts";

export const LEVELS = ["info", "success", "warning", "error"] as const;
export type Level = (typeof LEVELS)[number];

/** How much a notification matters: `urgent` ones also show as a banner on every page of their recipients. */
export const PRIORITIES = ["low", "normal", "high", "urgent"] as const;
export type Priority = (typeof PRIORITIES)[number];

/** The SSE event of an urgent notification's banner (see `views/notification.ts`); it goes ahead of queued events. */
export const URGENT = "urgent";

/** Characters an action link may have. */
export const MAX_URL = 2048;

/** Characters a message may have. */
export const MAX_MESSAGE = 1000;
/** Characters a title may have. */
export const MAX_TITLE = 100;

export interface Notification {
  message: string;
  /** Empty when none was given. */
  title: string;
  level: Level;
  /** Defaults to `normal`. */
  priority?: Priority;
  /** The notification's action link (a same-site path or an http(s) URL checked by `parseActionUrl`); none by default. */
  url?: string | null;
  /** Where it was sent: a channel, or several joined by ", ". */
  channel: string;
  /** Display name of the sender, or `null` for the system. */
  from: string | null;
  /** `Date.now()` when it was published. */
  sentAt: number;
}

/** Length in characters as a person counts them (code points, not UTF-16 units). */
function length(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** Reads message, title and level from form or JSON fields, throwing a 400 that names the problem. */
export function parseNotificationFields(fields: {
  message?: unknown;
  title?: unknown;
  level?: unknown;
  priority?: unknown;
  url?: unknown;
}): Pick<Notification, "message" | "title" | "level"> & { priority: Priority; url: string | null } {
  const message = typeof fields.message === "string" ? fields.message.trim() : "";
  if (message === "") throw new HttpError(400, "The message is empty: write something to send.");
  if (length(message) > MAX_MESSAGE) {
    throw new HttpError(413, `The message is ${length(message)} characters long; the most is ${MAX_MESSAGE}.`);
  }
  const title = typeof fields.title === "string" ? fields.title.trim() : "";
  if (length(title) > MAX_TITLE) {
    throw new HttpError(413, `The title is ${length(title)} characters long; the most is ${MAX_TITLE}.`);
  }
  const levelText = typeof fields.level === "string" && fields.level !== "" ? fields.level : "info";
  if (!(LEVELS as readonly string[]).includes(levelText)) {
    throw new HttpError(400, `Unknown level "${levelText}": use ${LEVELS.join(", ")}.`);
  }
  return {
    message,
    title,
    level: levelText as Level,
    priority: parsePriority(fields.priority),
    url: parseActionUrl(fields.url),
  };
}

/** A priority from a form or JSON field: `normal` when absent or empty, else one of `PRIORITIES` (400 otherwise). */
export function parsePriority(value: unknown): Priority {
  if (value === undefined || value === null || value === "") return "normal";
  if (typeof value === "string" && (PRIORITIES as readonly string[]).includes(value)) return value as Priority;
  const shown = typeof value === "string" ? `"${value.slice(0, 40)}"` : "that value";
  throw new HttpError(400, `Unknown priority ${shown}: use ${PRIORITIES.join(", ")}.`);
}

const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f-\u009f]/;

/**
 * An action link: a path on this site (`/orders/12`, not `//host`) or an absolute http(s) URL,
 * without spaces or control characters; `null` when absent or empty. Anything else, a
 * `javascript:` or `data:` URL included, is a 400.
 */
export function parseActionUrl(value: unknown): string | null {
  if (value === undefined || value === null || value === "") return null;
  const refuse = () =>
    new HttpError(400, "url must be a path on this site (such as /orders/12) or an http:// or https:// URL.");
  if (typeof value !== "string") throw refuse();
  if (length(value) > MAX_URL)
    throw new HttpError(413, `url is ${length(value)} characters long; the most is ${MAX_URL}.`);
  if (CONTROL_OR_SPACE.test(value)) throw refuse();
  // A path, but not `//host` or `/\host`, which browsers take as another site.
  if (/^\/(?![/\\])/.test(value)) return value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw refuse();
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw refuse();
  return value;
}
