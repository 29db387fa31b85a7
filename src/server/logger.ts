/**
 * Structured logs: one JSON line per stream opened or closed, per publish, per refusal worth
 * knowing about. Callers pass ids, names and counts; never a cookie, token or secret.
 */
import { LOG_LEVELS, type LogLevel } from "./config.ts";

import type { Log, LogFields } from "../core/log.ts";

export type { LogFields };

/** The server's logger: the core's `Log`, written as JSON lines. */
export type Logger = Log;

let pending: string[] = [];

function flushStdout(): void {
  if (pending.length === 0) return;
  const lines = pending.join("");
  pending = [];
  process.stdout.write(lines);
}

/**
 * Writes a line to stdout with the others of the same turn of the event loop: one write for a
 * burst of publishes rather than one each. Whatever is pending is written before the process exits.
 */
function toStdout(line: string): void {
  if (pending.length === 0) setImmediate(flushStdout);
  pending.push(line + "\n");
}
process.on("exit", flushStdout);
// A log reader that went away (a closed pipe: EPIPE) must not take the server down with it.
process.stdout.on("error", () => {});

let lastMs = Number.NaN;
let lastTime = "";

/** Now, as an ISO 8601 timestamp; a burst of lines mostly shares its millisecond, and a Date per line adds up. */
function timestamp(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastTime = new Date(ms).toISOString();
  }
  return lastTime;
}

/** A logger that writes lines at `level` and above with `write` (defaults to stdout, a burst at a time). */
export function createLogger(level: LogLevel, write: (line: string) => void = toStdout): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const at = (name: Exclude<LogLevel, "off">) => {
    if (LOG_LEVELS.indexOf(name) < threshold) return () => {};
    return (msg: string, fields: LogFields = {}) =>
      write(JSON.stringify({ time: timestamp(), level: name, msg, ...fields }));
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
