/**
 * Publishing on behalf of someone: the permission check for every target and the rate limit
 * before anything is sent, the publish itself, and its log line. Shared by the send form and the API.
 */
import type { Channel } from "./channel.ts";
import type { AppContext } from "./context.ts";
import { HttpError } from "./errors.ts";
import type { PublishResult } from "./hub.ts";
import type { RateLimiter } from "./limits.ts";
import type { Principal } from "./policy.ts";

/** One event ready to go: where, under which SSE event name, with which HTML. */
export interface Outgoing {
  targets: readonly Channel[];
  event: string;
  data: string;
}

/** A name for the principal that is safe to log. */
export function describe(principal: Principal): string {
  if (principal.kind === "user") return `user:${principal.user.id}`;
  if (principal.kind === "token") return principal.label;
  return "anonymous";
}

/** Throws 429 when `key` has used up its publish rate (`count` publishes at once). */
export function checkPublishRate(limiter: RateLimiter, key: string, count = 1): void {
  const wait = limiter.take(key, count);
  if (wait > 0) {
    throw new HttpError(429, `Too many notifications sent in a short time; try again in ${wait} s.`, { "retry-after": String(wait) });
  }
}

/** Throws 401/403 unless `by` may publish to every target of every event. */
export function authorizeAll(ctx: AppContext, by: Principal, events: readonly Outgoing[]): void {
  for (const event of events) for (const target of event.targets) ctx.policy.check(by, "publish", target);
}

/** Publishes events that `authorizeAll` accepted, in order, and logs each. */
export function publishAll(ctx: AppContext, by: Principal, events: readonly Outgoing[]): PublishResult[] {
  return events.map(({ targets, event, data }) => {
    const result = ctx.hub.publish(targets.length === 1 ? targets[0]! : targets, { event, data });
    ctx.log.info("published", { id: result.id, event, targets: targets.join(","), delivered: result.delivered, by: describe(by), bytes: data.length });
    return result;
  });
}
