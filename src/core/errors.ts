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
 * A request that herald refuses. Thrown anywhere below a route and turned into a response
 * in one place (`src/respond.ts`): a page, an htmx fragment, JSON or plain text depending on
 * who asked. `message` is written for a person and is always escaped before it reaches HTML.
 */
export class HttpError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.headers = headers;
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
