/**
 * Publishing on behalf of someone: the permission check for every target and the rate limit
 * before anything is sent, the publish itself, and its log line. Shared by the send form and the API.
 */
import type { Channel } from "../core/channel.ts";
import type { AppContext } from "./context.ts";
import { HttpError } from "./errors.ts";
import type { PublishResult } from "../core/hub.ts";
import type { RateLimiter } from "./limits.ts";
import type { Principal } from "./policy.ts";
import { parseEventId } from "../core/eventlog/index.ts";
import { URGENT } from "./notification.ts";

/** One event ready to go: where, under which SSE event name, with which HTML (or how to render it from its id). */
export interface Outgoing {
  targets: readonly Channel[];
  event: string;
  data: string | ((id: number) => string);
  /**
   * For an urgent notification: its banner, from the notification's id, published to the same
   * targets right after it as event `urgent` (which goes ahead of what streams have queued).
   */
  banner?: (id: number) => string;
}

/** A name for the principal that is safe to log. */
export function describe(principal: Principal): string {
  if (principal.kind === "user") return `user:${principal.user.id}`;
  if (principal.kind === "token" || principal.kind === "jwt") return principal.label;
  if (principal.kind === "system") return `herald:${principal.label}`;
  return "anonymous";
}

/** Throws 429 when `key` has used up its publish rate (`count` publishes at once). */
export function checkPublishRate(limiter: RateLimiter, key: string, count = 1): void {
  const wait = limiter.take(key, count);
  if (wait > 0) {
    throw new HttpError(429, `Too many notifications sent in a short time; try again in ${wait} s.`, {
      "retry-after": String(wait),
    });
  }
}

/** An urgent notification, then its banner, which names it by id. */
async function publishUrgent(
  ctx: AppContext,
  targets: readonly Channel[],
  event: string,
  data: Outgoing["data"],
  banner: NonNullable<Outgoing["banner"]>,
): Promise<PublishResult> {
  const result = await ctx.hub.publish(targets, { event, data });
  await ctx.hub.publish(targets, { event: URGENT, data: banner(parseEventId(result.id)!.id) });
  return result;
}

/** Throws 401/403 unless `by` may publish to every target of every event. */
export function authorizeAll(ctx: AppContext, by: Principal, events: readonly Outgoing[]): void {
  for (const event of events) for (const target of event.targets) ctx.policy.check(by, "publish", target);
}

/**
 * Publishes events that `authorizeAll` accepted, in order, and logs each. Resolves once all are
 * durable and sent: only then may the publisher be told they were accepted.
 */
export async function publishAll(
  ctx: AppContext,
  by: Principal,
  events: readonly Outgoing[],
): Promise<PublishResult[]> {
  const publishOne = ({ targets, event, data, banner }: Outgoing) =>
    banner ? publishUrgent(ctx, targets, event, data, banner) : ctx.hub.publish(targets, { event, data });
  // Appended in one go, so that a batch is committed together.
  const results = events.length === 1 ? [await publishOne(events[0]!)] : await Promise.all(events.map(publishOne));
  if (events.length === 1) {
    const { targets, event } = events[0]!;
    ctx.log.info("published", {
      id: results[0]!.id,
      event,
      targets: targets.join(","),
      delivered: results[0]!.delivered,
      by: describe(by),
    });
    return results;
  }
  // A batch is one line (each event's own at debug): a feed of many topics would otherwise write
  // as many lines as it publishes events.
  const targets = [...new Set(events.flatMap((e) => e.targets))];
  ctx.log.info("published", {
    ids: `${results[0]!.id}..${results.at(-1)!.id}`,
    events: events.length,
    names: [...new Set(events.map((e) => e.event))].join(","),
    targets: targets.length > 10 ? `${targets.slice(0, 10).join(",")},… (${targets.length})` : targets.join(","),
    delivered: results.reduce((sum, r) => sum + r.delivered, 0),
    by: describe(by),
  });
  for (const [i, { targets, event }] of events.entries()) {
    ctx.log.debug("published", {
      id: results[i]!.id,
      event,
      targets: targets.join(","),
      delivered: results[i]!.delivered,
    });
  }
  return results;
}
