/**
 * `POST /api/publish`: the publish API for servers, behind `Authorization: Bearer <token>`.
 *
 * Body (JSON, or a form for a single event): `target` (or `targets`, several channels for one
 * event), `event` (default `notification`), and one of `message` (+ `title`, `level`, `priority`,
 * `url`), rendered and escaped by the notification template, `html`, markup the token holder
 * vouches for, or `data`, any JSON value.
 * A JSON array (or `{ "events": [...] }`) publishes several events. The whole request is checked
 * before anything is published: one bad event refuses them all.
 */
import { parseTarget, type Channel } from "../../core/channel.ts";
import type { AppContext } from "../context.ts";
import { InputError } from "../../core/errors.ts";
import { HttpError } from "../errors.ts";
import { FORM_TYPES, mediaType, readFormData, readJson } from "../form.ts";
import { parseNotificationFields } from "../notification.ts";
import type { Principal } from "../policy.ts";
import { authorizeAll, checkPublishRate, publishAll, type Outgoing } from "../publish.ts";
import { jsonResponse } from "../respond.ts";
import { bearerOf, looksLikeJwt } from "../identity.ts";
import { UNNAMED } from "../../core/sse.ts";
import { notificationItem, urgentBanner } from "../../../views/notification.ts";

/** What an SSE event name from the API may be. */
export const EVENT_NAME = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;

/** The fields an event of the publish API may have; any other is a 400 that names it. */
const EVENT_FIELDS = ["target", "targets", "event", "message", "title", "level", "priority", "url", "html", "data"];
const EVENT_FIELD_SET = new Set(EVENT_FIELDS);

/**
 * Whether two strings are equal, in a time that depends on their length only, not on where they
 * first differ (what `timingSafeEqual` does for buffers, without making two for every request).
 */
function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

/**
 * Who calls the API: a static publish token (`HERALD_PUBLISH_TOKENS`), or a JSON Web Token whose
 * `herald.publish` patterns say where it may publish. 401 for none, a wrong one, or a token that
 * does not verify; 403 for a verified token that grants no publishing.
 */
export async function authenticate(ctx: AppContext, req: Request): Promise<Principal> {
  const tokens = ctx.config.publishTokens;
  const given = bearerOf(req);
  if (given !== undefined && looksLikeJwt(given) && ctx.identity.external) {
    const claims = await ctx.identity.claims(given);
    if (!claims) {
      throw new HttpError(401, "That token is not valid (its signature, algorithm, expiry or claims; see the log).", {
        "www-authenticate": 'Bearer realm="herald", error="invalid_token"',
      });
    }
    if (claims.grants.publish.length === 0) {
      throw new HttpError(
        403,
        "That token grants no publishing: give it a herald.publish claim with the channels it may send to.",
      );
    }
    return { kind: "jwt", label: `jwt:${claims.sub}`, publish: claims.grants.publish };
  }
  if (tokens.length === 0) {
    throw new HttpError(401, "The publish API is off: the server has no HERALD_PUBLISH_TOKENS.", {
      "www-authenticate": 'Bearer realm="herald"',
    });
  }
  if (given === undefined) {
    throw new HttpError(401, "Send a publish token as Authorization: Bearer <token>.", {
      "www-authenticate": 'Bearer realm="herald"',
    });
  }
  // Compare with every token, always, so the time taken does not say which one nearly matched.
  let found = -1;
  for (let index = 0; index < tokens.length; index++) {
    if (sameText(tokens[index]!, given) && found < 0) found = index;
  }
  if (found < 0) {
    throw new HttpError(401, "That publish token is not valid.", {
      "www-authenticate": 'Bearer realm="herald", error="invalid_token"',
    });
  }
  return { kind: "token", label: `token#${found + 1}` };
}

function field(raw: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(raw, name) ? raw[name] : undefined;
}

/** One event of the request body, checked and rendered. `where` names it in messages (`events[2]`). */
function parseEvent(ctx: AppContext, raw: unknown, where: string): Outgoing {
  const prefix = where ? `${where}: ` : "";
  try {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw))
      throw new HttpError(400, "An event must be a JSON object.");
    const input = raw as Record<string, unknown>;
    const keys = Object.keys(input);
    if (!keys.every((key) => EVENT_FIELD_SET.has(key))) {
      const unknown = keys.filter((key) => !EVENT_FIELD_SET.has(key));
      const names = unknown.slice(0, 5).map((key) => JSON.stringify(key.slice(0, 40)));
      throw new HttpError(400, `Unknown field ${names.join(", ")}: an event takes ${EVENT_FIELDS.join(", ")}.`);
    }
    const targetTexts: unknown[] = [];
    const target = field(input, "target");
    const targets = field(input, "targets");
    if (target !== undefined) targetTexts.push(target);
    if (targets !== undefined) {
      if (!Array.isArray(targets)) throw new HttpError(400, "targets must be a list of channels.");
      targetTexts.push(...targets);
    }
    if (targetTexts.length === 0)
      throw new HttpError(400, "Give a target (or targets): everyone, topic:<name>, user:<name> or group:<name>.");
    if (targetTexts.length > ctx.config.limits.maxBatch) {
      throw new HttpError(
        413,
        `One event may go to at most ${ctx.config.limits.maxBatch} targets; this one names ${targetTexts.length}.`,
      );
    }
    const channels: Channel[] = [];
    for (const text of targetTexts) {
      if (typeof text !== "string") throw new HttpError(400, "Each target must be a string such as topic:orders.");
      const channel = parseTarget(text);
      if (!channels.includes(channel)) channels.push(channel);
    }
    const data = field(input, "data");
    // A `data` event without a name is an unnamed message: what `EventSource.onmessage` receives.
    const eventValue = field(input, "event") ?? (data !== undefined ? UNNAMED : "notification");
    if (typeof eventValue !== "string" || (eventValue !== UNNAMED && !EVENT_NAME.test(eventValue))) {
      throw new HttpError(
        400,
        'event must be a name: a letter, then letters, digits, "_", ".", ":" or "-", at most 64.',
      );
    }
    const reserved = ctx.pages.reserved();
    if (reserved.has(eventValue)) {
      throw new HttpError(
        400,
        `event "${eventValue}" is reserved for herald's own pages; the reserved names are ${[...reserved].join(", ")}.`,
      );
    }
    const html = field(input, "html");
    const message = field(input, "message");
    if (Number(html !== undefined) + Number(message !== undefined) + Number(data !== undefined) > 1) {
      throw new HttpError(400, "Give one of message, html or data, not several.");
    }
    if (message === undefined) {
      const rendered = ["title", "level", "priority", "url"].filter((name) => field(input, name) !== undefined);
      if (rendered.length > 0) {
        throw new HttpError(
          400,
          `${rendered.join(", ")} go with a message, which herald renders; not with html or data.`,
        );
      }
    }
    if (data !== undefined) {
      // Compact JSON text, for clients that are not htmx; a JSON string has no raw line breaks.
      const text = JSON.stringify(data);
      const bytes = Buffer.byteLength(text);
      if (bytes > ctx.config.limits.maxHtmlBytes) {
        throw new HttpError(413, `data is ${bytes} bytes as JSON; the most is ${ctx.config.limits.maxHtmlBytes}.`);
      }
      return { targets: channels, event: eventValue, data: text };
    }
    if (html !== undefined) {
      if (typeof html !== "string" || html.trim() === "")
        throw new HttpError(400, "html must be a non-empty string of markup.");
      const bytes = Buffer.byteLength(html);
      if (bytes > ctx.config.limits.maxHtmlBytes) {
        throw new HttpError(413, `html is ${bytes} bytes; the most is ${ctx.config.limits.maxHtmlBytes}.`);
      }
      return { targets: channels, event: eventValue, data: html };
    }
    if (message === undefined) throw new HttpError(400, "Give a message (or html, or data) to send.");
    const fields = parseNotificationFields({
      message,
      title: field(input, "title"),
      level: field(input, "level"),
      priority: field(input, "priority"),
      url: field(input, "url"),
    });
    const sentAt = Date.now();
    // One object for its renders, which differ only in the id (a retried commit renders again).
    const notification = { ...fields, channel: channels.join(", "), from: null, sentAt, id: 0 };
    const render = (id: number) => {
      notification.id = id;
      return notificationItem(notification).value;
    };
    const banner =
      fields.priority === "urgent"
        ? (id: number) => {
            notification.id = id;
            return urgentBanner(notification).value;
          }
        : undefined;
    return { targets: channels, event: eventValue, data: render, banner };
  } catch (error) {
    if (error instanceof InputError && prefix) throw new HttpError(400, prefix + error.message);
    if (error instanceof HttpError && prefix) throw new HttpError(error.status, prefix + error.message, error.headers);
    throw error;
  }
}

/** What a request's body holds: its events, whether the answer is one result or a list, and its idempotency key. */
interface Body {
  events: unknown[];
  single: boolean;
  idempotencyKey?: unknown;
}

/** Takes the `idempotency_key` field off an object, which is not an event's field. */
function withoutKey(body: Record<string, unknown>): { rest: Record<string, unknown>; key: unknown } {
  if (!Object.hasOwn(body, "idempotency_key")) return { rest: body, key: undefined };
  const { idempotency_key: key, ...rest } = body;
  return { rest, key };
}

/** Reads the body into raw events; `single` says whether the answer is one result or a list. */
async function readEvents(ctx: AppContext, req: Request): Promise<Body> {
  const type = mediaType(req);
  const json = type === "application/json";
  if (!json && !FORM_TYPES.includes(type)) {
    throw new HttpError(415, `Send application/json or a form, not ${type || "a body without a content type"}.`);
  }
  const maxBytes = ctx.config.limits.maxBodyBytes;
  if (!json) {
    const fields = await readFormData(req, maxBytes);
    const one = (name: string) => fields.get(name)?.[0];
    const targets = fields.get("target") ?? [];
    return {
      single: true,
      idempotencyKey: one("idempotency_key"),
      events: [
        {
          targets,
          event: one("event"),
          message: one("message"),
          title: one("title"),
          level: one("level"),
          priority: one("priority"),
          url: one("url"),
          html: one("html"),
        },
      ].map((event) => Object.fromEntries(Object.entries(event).filter(([, value]) => value !== undefined))),
    };
  }
  const body = await readJson(req, maxBytes);
  if (Array.isArray(body)) return { events: body, single: false };
  if (typeof body === "object" && body !== null && Object.hasOwn(body, "events")) {
    const { rest, key } = withoutKey(body as Record<string, unknown>);
    if (!Array.isArray(rest.events)) throw new HttpError(400, "events must be a list of events.");
    return { events: rest.events, single: false, idempotencyKey: key };
  }
  if (typeof body === "object" && body !== null) {
    const { rest, key } = withoutKey(body as Record<string, unknown>);
    return { events: [rest], single: true, idempotencyKey: key };
  }
  return { events: [body], single: true };
}

/** An idempotency key: printable ASCII, 1 to 255 characters. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** The request's idempotency key (header or field), checked; `undefined` when it has none. */
function idempotencyKeyOf(req: Request, field: unknown): string | undefined {
  const key = req.headers.get("idempotency-key") ?? field;
  if (key === undefined || key === null) return undefined;
  if (typeof key !== "string" || !IDEMPOTENCY_KEY.test(key)) {
    throw new HttpError(400, "An idempotency key is 1 to 255 printable ASCII characters (no spaces).");
  }
  return key;
}

/** `POST /api/publish`: answers `{id, delivered}`, or a list of them for a batch. */
export async function apiPublish(ctx: AppContext, req: Request): Promise<Response> {
  const principal = await authenticate(ctx, req);
  const label = principal.kind === "token" || principal.kind === "jwt" ? principal.label : "unknown";

  const { events: raw, single, idempotencyKey } = await readEvents(ctx, req);
  const key = idempotencyKeyOf(req, idempotencyKey);
  if (raw.length === 0) throw new HttpError(400, "The batch is empty: give at least one event.");
  if (raw.length > ctx.config.limits.maxBatch) {
    throw new HttpError(
      413,
      `A batch may hold at most ${ctx.config.limits.maxBatch} events; this one has ${raw.length}.`,
    );
  }
  const events = raw.map((event, index) => parseEvent(ctx, event, single ? "" : `events[${index}]`));
  authorizeAll(ctx, principal, events);
  checkPublishRate(ctx.rates.publishesPerToken, label, events.length);
  if (key === undefined) {
    const results = await publishAll(ctx, principal, events);
    return jsonResponse(single ? results[0] : results);
  }
  // Scoped to the caller, and hashed: one client's keys neither collide with nor reveal another's.
  const scoped = new Bun.CryptoHasher("sha256").update(`${label}\n${key}`).digest("base64url");
  const ttlMs = ctx.config.logMaxAgeS * 1000;
  const claim = await ctx.idempotencyKeys.claim(scoped, ttlMs);
  if (claim.state === "done") {
    return new Response(claim.answer, {
      headers: { "content-type": "application/json", "idempotent-replayed": "true" },
    });
  }
  if (claim.state === "pending") {
    throw new HttpError(409, "A request with this Idempotency-Key is being published; try again in a moment.", {
      "retry-after": "1",
    });
  }
  let answer: string;
  try {
    const results = await publishAll(ctx, principal, events);
    answer = JSON.stringify(single ? results[0] : results);
  } catch (error) {
    await ctx.idempotencyKeys.release(scoped).catch(() => {});
    throw error;
  }
  await ctx.idempotencyKeys.finish(scoped, answer, ttlMs);
  return new Response(answer, { headers: { "content-type": "application/json" } });
}
