/**
 * Which page a stream backs (`GET /sse?page=`): the topics that page follows besides those asked
 * for, and its snapshot, the event that brings that page's regions up to date when the stream
 * starts without an id the log covers. Each page's snapshot replaces only elements that page has,
 * so htmx never meets an out-of-band target it cannot find.
 */
import type { Channel } from "../core/channel.ts";
import type { AppContext } from "./context.ts";
import { HttpError } from "./errors.ts";
import { Htmx4Framing } from "./htmx.ts";
import { INVENTORY_TOPIC } from "../shop/inventory.ts";
import { MARKET_TOPIC, METRICS_TOPIC } from "../shop/live.ts";
import { ADMINS } from "./policy.ts";
import type { User } from "./session.ts";
import { inboxItems, snapshotData } from "./inbox.ts";
import { inventorySnapshot } from "../shop/views/inventory.ts";
import { liveSnapshot } from "../shop/views/live.ts";
import { ordersSnapshot } from "../shop/views/orders.ts";
import { html } from "../../views/html.ts";
import { monitorFigures } from "../../views/monitor.ts";
import { clientFigures } from "./routes/clients.ts";

export const PAGES = ["inbox", "inventory", "live", "orders", "monitor", "embed"] as const;
export type Page = (typeof PAGES)[number];

/** The topic of the live page's notification feed. */
export const NOTIFICATIONS_TOPIC = "notifications";

/** Topics each page follows. */
export const PAGE_TOPICS: Record<Page, readonly string[]> = {
  inbox: [],
  inventory: [INVENTORY_TOPIC],
  live: [MARKET_TOPIC, METRICS_TOPIC, NOTIFICATIONS_TOPIC],
  orders: [],
  monitor: [],
  embed: [],
};

const OWN_PAGE_EVENTS = { snapshot: "oob", "history-cut": "oob" } as const;

/**
 * Where each page shows the events it swaps, for streams opened by htmx 4 (see `src/htmx.ts`):
 * the same regions its htmx 2 markup names with `sse-swap`.
 */
export const PAGE_FRAMINGS: Record<Page, Htmx4Framing> = {
  inbox: new Htmx4Framing({ ...OWN_PAGE_EVENTS, unread: "oob", notification: "afterbegin:#notifications" }),
  inventory: new Htmx4Framing({ ...OWN_PAGE_EVENTS, product: "oob", "low-stock": "oob", "stock-ok": "oob" }),
  live: new Htmx4Framing({ ...OWN_PAGE_EVENTS, market: "innerHTML:#market", metrics: "innerHTML:#metrics", notification: "afterbegin:#notifications" }),
  orders: new Htmx4Framing({ ...OWN_PAGE_EVENTS, "order-placed": "oob", "order-status": "oob" }),
  monitor: new Htmx4Framing({ ...OWN_PAGE_EVENTS, monitor: "innerHTML:#monitor-figures" }),
  // The embedded feed is the list that connects: notifications go straight in, as its hx-swap says.
  embed: new Htmx4Framing({ notification: "main" }),
};

/**
 * Event names that herald's own pages act on, which only herald may send: `close` ends an htmx 4
 * page's stream for good, `snapshot` replaces a page's lists, and the others replace regions of
 * the page. `notification` is not among them: sending notifications is what publishing is for.
 */
export const RESERVED_EVENTS: ReadonlySet<string> = new Set(
  ["close", ...Object.values(PAGE_FRAMINGS).flatMap((framing) => framing.events)].filter((name) => name !== "notification"),
);

/** The page named by `?page=`: `inbox` when absent, 400 for one herald does not have, 403 for the monitor unless an admin asks. */
export function parsePage(text: string | null, user: User | null): Page {
  if (text === null || text === "") return "inbox";
  if (!(PAGES as readonly string[]).includes(text)) {
    throw new HttpError(400, `There is no page "${text}" to stream for; use one of ${PAGES.join(", ")}.`);
  }
  if (text === "monitor" && !user?.groups.includes(ADMINS)) throw new HttpError(user ? 403 : 401, "Only members of admins may follow the monitor.");
  return text as Page;
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
    case "monitor":
      return html`<div id="monitor-figures" hx-swap-oob="innerHTML">${monitorFigures(await clientFigures(ctx))}</div>`.value;
    case "embed":
      // Not swapped by the embedded feed; it carries the id a reconnect resumes from.
      return inboxItems(ctx, null, channels, upTo).then((items) => items.value);
  }
}
