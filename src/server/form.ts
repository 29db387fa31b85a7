/**
 * Reading request bodies into plain values, once, at the edge: size, content type and shape
 * are checked here, so routes see only fields.
 */
import { csrfNonce, csrfSubject, ownOrigins, type AppContext } from "./context.ts";
import { checkSameOrigin, CSRF_FIELD, CSRF_HEADER } from "./csrf.ts";
import { HttpError } from "./errors.ts";
import type { User } from "./session.ts";

/** Text fields of a form post; a field given twice keeps its first value. */
export type FormFields = Record<string, string>;

export const FORM_TYPES = ["application/x-www-form-urlencoded", "multipart/form-data"];

/** The media type of a request body, lower case, without parameters. */
export function mediaType(req: Request): string {
  const header = req.headers.get("content-type");
  // The common case, as API clients send it, needs no parsing.
  if (header === "application/json") return header;
  return (header ?? "").split(";")[0]!.trim().toLowerCase();
}

function tooLarge(declared: number | null, maxBytes: number): HttpError {
  const size = declared === null ? `more than ${maxBytes} bytes` : `${declared} bytes`;
  return new HttpError(413, `The request body is ${size}; the most this server takes is ${maxBytes} bytes.`);
}

/**
 * Reads the body, at most `maxBytes`: a declared larger body is refused before any of it is read,
 * an undeclared (chunked) one as soon as it passes the limit. 413 either way.
 */
export async function readBody(req: Request, maxBytes: number): Promise<Uint8Array> {
  const length = req.headers.get("content-length");
  const declared = Number(length ?? 0);
  if (declared > maxBytes) throw tooLarge(declared, maxBytes);
  // A declared length is enforced by Bun: read it in one go. Only a chunked body is counted as it comes.
  if (length !== null) return await req.bytes();
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of req.body) {
    total += chunk.byteLength;
    if (total > maxBytes) throw tooLarge(null, maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Parses a urlencoded or multipart body (at most `maxBytes`) into fields, repeated fields as lists. 400 for a malformed
 * body.
 */
export async function readFormData(req: Request, maxBytes: number): Promise<Map<string, string[]>> {
  const body = await readBody(req, maxBytes);
  const parsed = new Response(body, { headers: { "content-type": req.headers.get("content-type") ?? "" } });
  const data = await parsed.formData().catch(() => {
    throw new HttpError(400, "The form data could not be read: the body is malformed.");
  });
  const fields = new Map<string, string[]>();
  for (const [name, value] of data.entries()) {
    if (typeof value !== "string")
      throw new HttpError(400, `The field "${name}" is a file; this form takes only text.`);
    const values = fields.get(name);
    if (values) values.push(value);
    else fields.set(name, [value]);
  }
  return fields;
}

/** Refuses bytes that are not UTF-8; decoding a whole body keeps no state, so one serves every request. */
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Parses a JSON body (UTF-8, at most `maxBytes`). 413 for too large a body, 400 for one that is not JSON. */
export async function readJson(req: Request, maxBytes: number): Promise<unknown> {
  const bytes = await readBody(req, maxBytes);
  try {
    return JSON.parse(UTF8.decode(bytes));
  } catch {
    throw new HttpError(400, "The body is not valid JSON (in UTF-8).");
  }
}

/** Parses a form body. 415 for another content type, 413 for too large a body, 400 for a malformed one. */
export async function readForm(req: Request, maxBytes: number): Promise<FormFields> {
  const type = mediaType(req);
  if (!FORM_TYPES.includes(type)) {
    throw new HttpError(
      415,
      `Send this form as application/x-www-form-urlencoded or multipart/form-data, not ${type || "a body without a content type"}.`,
    );
  }
  const fields: FormFields = {};
  for (const [name, values] of await readFormData(req, maxBytes)) fields[name] = values[0]!;
  return fields;
}

/**
 * Reads a browser form post after the CSRF checks: the origin before the body is read, then the
 * token from the `_csrf` field or the `X-CSRF-Token` header against the visitor's cookie and `user`.
 */
export async function readBrowserForm(ctx: AppContext, req: Request, user: User | null): Promise<FormFields> {
  checkSameOrigin(req, ownOrigins(ctx, req));
  const fields = await readForm(req, ctx.config.limits.maxBodyBytes);
  ctx.csrf.verify(csrfNonce(req), csrfSubject(user), fields[CSRF_FIELD] ?? req.headers.get(CSRF_HEADER));
  return fields;
}
