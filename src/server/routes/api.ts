/**
 * `POST /api/publish`: the publish API for servers, behind `Authorization: Bearer <token>`.
 *
 * Body (JSON, or a form for a single event): `target` (or `targets`, several channels for one
 * event), `event` (default `notification`), and either `message` (+ `title`, `level`), rendered
 * and escaped by the notification template, or `html`, markup the token holder vouches for.
 * A JSON array (or `{ "events": [...] }`) publishes several events. The whole request is checked
 * before anything is published: one bad event refuses them all.
 */
import { timingSafeEqual } from "node:crypto";
import { parseTarget, type Channel } from "../../core/channel.ts";
import type { AppContext } from "../context.ts";
import { InputError } from "../../core/errors.ts";
import { HttpError } from "../errors.ts";
import { FORM_TYPES, mediaType, readFormData, readJson } from "../form.ts";
import { parseNotificationFields } from "../notification.ts";
import type { Principal } from "../policy.ts";
import { authorizeAll, checkPublishRate, publishAll, type Outgoing } from "../publish.ts";
import { jsonResponse } from "../respond.ts";
import { notificationItem } from "../../../views/notification.ts";

/** What an SSE event name from the API may be. */
export const EVENT_NAME = /^[a-z][a-z0-9-]{0,63}$/;

/** Each configured token list as bytes, made once rather than on every request. */
const tokenBytes = new WeakMap<readonly string[], Buffer[]>();

/** The token principal for the request's bearer token; 401 for none or a wrong one. */
export function authenticate(ctx: AppContext, req: Request): Principal {
  const tokens = ctx.config.publishTokens;
  if (tokens.length === 0) {
    throw new HttpError(401, "The publish API is off: the server has no HERALD_PUBLISH_TOKENS.", {
      "www-authenticate": 'Bearer realm="herald"',
    });
  }
  const header = req.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) {
    throw new HttpError(401, "Send a publish token as Authorization: Bearer <token>.", {
      "www-authenticate": 'Bearer realm="herald"',
    });
  }
  const given = Buffer.from(match[1]!);
  let expected = tokenBytes.get(tokens);
  if (!expected) tokenBytes.set(tokens, (expected = tokens.map((token) => Buffer.from(token))));
  // Compare with every token, always, so the time taken does not say which one nearly matched.
  let found = -1;
  expected.forEach((token, index) => {
    if (token.length === given.length && timingSafeEqual(token, given) && found < 0) found = index;
  });
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
    const eventValue = field(input, "event") ?? "notification";
    if (typeof eventValue !== "string" || !EVENT_NAME.test(eventValue)) {
      throw new HttpError(400, 'event must be a lower-case name: a letter, then letters, digits or "-", at most 64.');
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
    if (html !== undefined && message !== undefined) throw new HttpError(400, "Give either message or html, not both.");
    if (html !== undefined) {
      if (typeof html !== "string" || html.trim() === "")
        throw new HttpError(400, "html must be a non-empty string of markup.");
      const bytes = Buffer.byteLength(html);
      if (bytes > ctx.config.limits.maxHtmlBytes) {
        throw new HttpError(413, `html is ${bytes} bytes; the most is ${ctx.config.limits.maxHtmlBytes}.`);
      }
      return { targets: channels, event: eventValue, data: html };
    }
    if (message === undefined) throw new HttpError(400, "Give a message (or html) to send.");
    const fields = parseNotificationFields({ message, title: field(input, "title"), level: field(input, "level") });
    const sentAt = Date.now();
    const render = (id: number) =>
      notificationItem({ ...fields, id, channel: channels.join(", "), from: null, sentAt }).value;
    return { targets: channels, event: eventValue, data: render };
  } catch (error) {
    if (error instanceof InputError && prefix) throw new HttpError(400, prefix + error.message);
    if (error instanceof HttpError && prefix) throw new HttpError(error.status, prefix + error.message, error.headers);
    throw error;
  }
}

/** Reads the body into raw events; `single` says whether the answer is one result or a list. */
async function readEvents(ctx: AppContext, req: Request): Promise<{ events: unknown[]; single: boolean }> {
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
      events: [
        {
          targets,
          event: one("event"),
          message: one("message"),
          title: one("title"),
          level: one("level"),
          html: one("html"),
        },
      ].map((event) => Object.fromEntries(Object.entries(event).filter(([, value]) => value !== undefined))),
    };
  }
  const body = await readJson(req, maxBytes);
  if (Array.isArray(body)) return { events: body, single: false };
  if (typeof body === "object" && body !== null && Object.hasOwn(body, "events")) {
    const events = (body as { events: unknown }).events;
    if (!Array.isArray(events)) throw new HttpError(400, "events must be a list of events.");
    return { events, single: false };
  }
  return { events: [body], single: true };
}

/** `POST /api/publish`: answers `{id, delivered}`, or a list of them for a batch. */
export async function apiPublish(ctx: AppContext, req: Request): Promise<Response> {
  const principal = authenticate(ctx, req);
  if (principal.kind !== "token") throw new HttpError(401, "A publish token is required.");
  const { events: raw, single } = await readEvents(ctx, req);
  if (raw.length === 0) throw new HttpError(400, "The batch is empty: give at least one event.");
  if (raw.length > ctx.config.limits.maxBatch) {
    throw new HttpError(
      413,
      `A batch may hold at most ${ctx.config.limits.maxBatch} events; this one has ${raw.length}.`,
    );
  }
  const events = raw.map((event, index) => parseEvent(ctx, event, single ? "" : `events[${index}]`));
  authorizeAll(ctx, principal, events);
  checkPublishRate(ctx.rates.publishesPerToken, principal.label, events.length);
  const results = await publishAll(ctx, principal, events);
  return jsonResponse(single ? results[0] : results);
}
