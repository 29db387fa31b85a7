/**
 * Which page a stream backs (`GET /sse?page=`): the topics that page follows besides those asked
 * for, and its snapshot, the event that brings that page's regions up to date when the stream
 * starts without an id the log covers. Each page's snapshot replaces only elements that page has,
 * so htmx never meets an out-of-band target it cannot find.
 */
import type { Channel } from "./channel.ts";
import type { AppContext } from "./context.ts";
import { HttpError } from "./errors.ts";
import { INVENTORY_TOPIC } from "./inventory.ts";
import { MARKET_TOPIC, METRICS_TOPIC } from "./live.ts";
import type { User } from "./session.ts";
import { inboxItems, snapshotData } from "./snapshot.ts";
import { inventorySnapshot } from "../views/inventory.ts";
import { liveSnapshot } from "../views/live.ts";
import { ordersSnapshot } from "../views/orders.ts";

export const PAGES = ["inbox", "inventory", "live", "orders"] as const;
export type Page = (typeof PAGES)[number];

/** The topic of the live page's notification feed. */
export const NOTIFICATIONS_TOPIC = "notifications";

/** Topics each page follows. */
export const PAGE_TOPICS: Record<Page, readonly string[]> = {
  inbox: [],
  inventory: [INVENTORY_TOPIC],
  live: [MARKET_TOPIC, METRICS_TOPIC, NOTIFICATIONS_TOPIC],
  orders: [],
};

/** The page named by `?page=`: `inbox` when absent, 400 for one herald does not have. */
export function parsePage(text: string | null): Page {
  if (text === null || text === "") return "inbox";
  if ((PAGES as readonly string[]).includes(text)) return text as Page;
  throw new HttpError(400, `There is no page "${text}" to stream for; use one of ${PAGES.join(", ")}.`);
}

/** The `sse-connect` URL of a page. */
export function pageStreamUrl(page: Page, topics: readonly string[] = []): string {
  const query = [page === "inbox" ? "" : `page=${page}`, topics.length ? `topic=${topics.map(encodeURIComponent).join(",")}` : ""].filter(Boolean);
  return query.length ? `/sse?${query.join("&")}` : "/sse";
}

/** The latest state of the live page's feeds, and the notifications on `channels`. */
export async function liveState(ctx: AppContext, user: User | null, channels: readonly Channel[], upTo?: number) {
  const { market, metrics } = ctx.live;
  return {
    quotes: market.quotes,
    quotesAt: market.updatedAt,
    metrics: metrics.latest,
    items: await inboxItems(ctx, user, channels, upTo),
    marketMs: ctx.config.marketMs,
    metricsMs: ctx.config.metricsMs,
  };
}

/** The `snapshot` event's data for `page`, as of event `upTo`. */
export async function pageSnapshot(ctx: AppContext, page: Page, user: User | null, channels: readonly Channel[], upTo: number): Promise<string> {
  switch (page) {
    case "inbox":
      return snapshotData(ctx, user, channels, upTo);
    case "inventory":
      return inventorySnapshot(ctx.inventory.all()).value;
    case "live":
      return liveSnapshot(await liveState(ctx, user, channels, upTo)).value;
    case "orders":
      return ordersSnapshot(user ? ctx.orders.of(user.id) : []).value;
  }
}
