/**
 * Misuse of herald's own API (an event name with a line break, a bad option).
 * Every message starts with "herald:" so it is easy to trace back in a log.
 */
export class HeraldError extends Error {
  constructor(message: string) {
    super(`herald: ${message}`);
    this.name = "HeraldError";
  }
}

/**
 * Input from outside that herald refuses: a channel, topic or user name that is not valid. The
 * message is written for a person; the server answers it with a 400.
 */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}

/**
 * Whether `error` is the disk (or the user's quota) being full: SQLite's `SQLITE_FULL`, which it
 * answers for ENOSPC on a database or WAL write, or ENOSPC / EDQUOT from a plain file write.
 */
export function isDiskFull(error: unknown): boolean {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return code === "SQLITE_FULL" || code === "ENOSPC" || code === "EDQUOT";
}

/** Whether `error` is SQLite finding a file that is not a sound database. */
export function isCorrupt(error: unknown): boolean {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" && (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB");
}
