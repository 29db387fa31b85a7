/**
 * The SSE wire format (WHATWG HTML, "Server-sent events"): fields in, bytes out. Pure code.
 *
 * Frames are encoded once per publish and the same bytes are written to every subscriber,
 * so everything here returns a ready `Uint8Array`.
 */
import { HeraldError } from "./errors.ts";

/** One SSE message. Only `data` is required. */
export interface SseMessage {
  /** Event name; htmx's `sse-swap` listens by this name. Omit for an unnamed `message` event. */
  event?: string;
  /** Sent as `id:`; the browser returns the last one it saw in `Last-Event-ID` on reconnect. */
  id?: string;
  /** Reconnection delay hint in milliseconds. */
  retry?: number;
  /** The payload. May span lines: each line becomes its own `data:` line. */
  data: string;
}

const encoder = new TextEncoder();
const LINE_BREAK = /\r\n|\r|\n/;

function checkField(field: "event" | "id", value: string): void {
  // A CR or LF would end the field early and let the rest be read as new fields.
  if (value.includes("\n") || value.includes("\r"))
    throw new HeraldError(`an SSE ${field} must not contain a line break: ${JSON.stringify(value)}`);
  // The spec makes the browser ignore an id containing NUL, which would silently break resume.
  if (field === "id" && value.includes("\0"))
    throw new HeraldError(`an SSE id must not contain NUL: ${JSON.stringify(value)}`);
}

function checkRetry(retry: number): void {
  if (!Number.isSafeInteger(retry) || retry < 0)
    throw new HeraldError(`SSE retry must be a whole number of milliseconds >= 0, got ${retry}`);
}

/**
 * The name of an unnamed message: what a browser dispatches an event without an `event:` field
 * as. A message given this name is written without the field, as htmx 4 swaps only such messages.
 */
export const UNNAMED = "message";

/** The message as wire text, ending in the blank line that dispatches it. */
export function formatMessage(message: SseMessage): string {
  let out = "";
  if (message.event !== undefined && message.event !== UNNAMED) {
    checkField("event", message.event);
    out += `event: ${message.event}\n`;
  }
  if (message.id !== undefined) {
    checkField("id", message.id);
    out += `id: ${message.id}\n`;
  }
  if (message.retry !== undefined) {
    checkRetry(message.retry);
    out += `retry: ${message.retry}\n`;
  }
  const { data } = message;
  // Most fragments break lines with LF alone: one replace rather than a split and a loop.
  if (!data.includes("\r")) return `${out}data: ${data.replaceAll("\n", "\ndata: ")}\n\n`;
  for (const line of data.split(LINE_BREAK)) out += `data: ${line}\n`;
  return out + "\n";
}

/** Encodes one message into bytes ready to write. Throws `HeraldError` on an unsafe event name or id. */
export function encodeMessage(message: SseMessage): Uint8Array {
  return encoder.encode(formatMessage(message));
}

/** A comment frame (`: text`), ignored by the browser: the shape of a heartbeat. */
export function encodeComment(text: string): Uint8Array {
  let out = "";
  for (const line of text.split(LINE_BREAK)) out += `: ${line}\n`;
  return encoder.encode(out + "\n");
}

/** A frame that only sets the reconnection delay: the first bytes of every stream. */
export function encodeRetry(retryMs: number): Uint8Array {
  checkRetry(retryMs);
  return encoder.encode(`retry: ${retryMs}\n\n`);
}

/**
 * A frame with only an id: the browser takes it as its last event id (`Last-Event-ID`) and
 * dispatches nothing. Stands in the place of an event sent ahead of others (`HubOptions.ahead`).
 */
export function encodeIdOnly(id: string): Uint8Array {
  checkField("id", id);
  return encoder.encode(`id: ${id}\n\n`);
}
