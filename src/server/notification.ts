/**
 * A notification: what the send form and the API publish, and what the inbox shows.
 */
import { HttpError } from "./errors.ts";

export const LEVELS = ["info", "success", "warning", "error"] as const;
export type Level = (typeof LEVELS)[number];

/** Characters a message may have. */
export const MAX_MESSAGE = 1000;
/** Characters a title may have. */
export const MAX_TITLE = 100;

export interface Notification {
  message: string;
  /** Empty when none was given. */
  title: string;
  level: Level;
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
}): Pick<Notification, "message" | "title" | "level"> {
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
  return { message, title, level: levelText as Level };
}
