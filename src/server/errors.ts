/**
 * A request that herald refuses. Thrown anywhere below a route and turned into a response
 * in one place (`src/server/respond.ts`): a page, an htmx fragment, JSON or plain text depending
 * on who asked. `message` is written for a person and is always escaped before it reaches HTML.
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
