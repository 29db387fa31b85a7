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
