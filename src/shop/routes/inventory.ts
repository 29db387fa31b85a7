/**
 * `/inventory`: the page, its forms (`POST /inventory/:sku` to sell, restock, set a quantity or
 * a threshold; `POST /inventory/:sku/watch`), and `POST /api/inventory/:sku`, where a queue
 * consumer reports stock changes with a publish token.
 */
import { currentUser, pageViewer, viewerOf } from "../../server/context.ts";
import type { ShopContext } from "../context.ts";
import { HttpError } from "../../server/errors.ts";
import { mediaType, readBrowserForm, readJson } from "../../server/form.ts";
import { changeStock } from "../actions.ts";
import type { StockChange } from "../inventory.ts";
import { MAX_QUANTITY } from "../model.ts";
import { requestHtmx } from "../../server/htmx.ts";
import { pageStreamUrl } from "../../server/pages.ts";
import { principalOf } from "../../server/policy.ts";
import { checkPublishRate } from "../../server/publish.ts";
import { htmlResponse, isHtmx, jsonResponse, seeOther } from "../../server/respond.ts";
import { html } from "../../../views/html.ts";
import { INVENTORY_PAGE, inventoryPage, productRowUpdate, stockStatus, watchList } from "../views/inventory.ts";
import { authenticate } from "../../server/routes/api.ts";

/** The SKU in `/inventory/:sku…` or `/api/inventory/:sku`, as typed (checked by `Inventory.find`). */
function skuOf(req: Request, index: number): string {
  const part = new URL(req.url).pathname.split("/")[index] ?? "";
  try {
    return decodeURIComponent(part).toUpperCase();
  } catch {
    throw new HttpError(400, "The SKU in the address is not valid.");
  }
}

/**
 * A whole number from 0 (or `-MAX_QUANTITY` when `signed`) to `MAX_QUANTITY`, or a 400 naming the
 * field. Only decimal digits count: a form's text, or a JSON number; `0x10`, `1e3`, `0b11` and
 * numbers in JSON strings are refused, not read the way JavaScript's `Number` would.
 */
function amount(value: unknown, name: string, { signed = false } = {}): number {
  const min = signed ? -MAX_QUANTITY : 0;
  const n = typeof value === "string" ? decimal(value, signed) : typeof value === "number" ? value : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > MAX_QUANTITY) {
    throw new HttpError(400, `${name} must be a whole number from ${min} to ${MAX_QUANTITY}, in decimal digits.`);
  }
  return n;
}

/** A form field's decimal integer; NaN for anything else. */
function decimal(text: string, signed: boolean): number {
  const trimmed = text.trim();
  return (signed ? /^-?\d{1,15}$/ : /^\d{1,15}$/).test(trimmed) ? Number(trimmed) : Number.NaN;
}

export function inventory(ctx: ShopContext, req: Request): Response {
  const viewer = pageViewer(ctx, req);
  const products = ctx.inventory.all();
  const watched = viewer.user ? ctx.inventory.watchedBy(viewer.user.id) : new Set<string>();
  const page = inventoryPage({ viewer, products, watched, streamUrl: pageStreamUrl(INVENTORY_PAGE) });
  return htmlResponse(page, { headers: viewer.setCookie ? { "set-cookie": viewer.setCookie } : {} });
}

const ACTIONS: Record<string, (n: number) => { change: StockChange; what: string }> = {
  sell: (n) => ({ change: { delta: -n }, what: `Sold ${n}` }),
  restock: (n) => ({ change: { delta: n }, what: `Restocked ${n}` }),
  set: (n) => ({ change: { quantity: n }, what: `Set to ${n}` }),
  threshold: (n) => ({ change: { threshold: n }, what: `Threshold set to ${n}` }),
};

/** `POST /inventory/:sku`: `action` (sell, restock, set or threshold) with `amount`. */
export async function changeFromForm(ctx: ShopContext, req: Request): Promise<Response> {
  const user = currentUser(ctx, req);
  if (!user) throw new HttpError(401, "Sign in to change stock.");
  const fields = await readBrowserForm(ctx, req, user);
  const sku = skuOf(req, 2);
  const action = ACTIONS[fields.action ?? ""];
  if (!action) throw new HttpError(400, "Choose what to do: sell, restock, set or threshold.");
  const { change, what } = action(amount(fields.amount, "The amount"));
  ctx.inventory.find(sku);
  checkPublishRate(ctx.rates.publishesPerUser, user.id);
  const { product } = await changeStock(ctx, principalOf(user), sku, change);
  if (!isHtmx(req)) return seeOther("/inventory");
  // The row comes back here too, so the page that acted is current even before its stream says so.
  return htmlResponse(html`${stockStatus(product, what)}${productRowUpdate(product, requestHtmx(req))}`);
}

/** `POST /inventory/:sku/watch`: `watch=on` or `off`. */
export async function watch(ctx: ShopContext, req: Request): Promise<Response> {
  const user = currentUser(ctx, req);
  if (!user) throw new HttpError(401, "Sign in to watch products.");
  const fields = await readBrowserForm(ctx, req, user);
  const sku = skuOf(req, 2);
  if (fields.watch !== "on" && fields.watch !== "off") throw new HttpError(400, "Say watch=on or watch=off.");
  ctx.inventory.watch(sku, user.id, fields.watch === "on");
  ctx.log.info("watch", { sku, user: user.id, on: fields.watch === "on" });
  if (!isHtmx(req)) return seeOther("/inventory");
  return htmlResponse(watchList(viewerOf(ctx, req).csrf, ctx.inventory.all(), ctx.inventory.watchedBy(user.id)));
}

/**
 * `POST /api/inventory/:sku` with a publish token and a JSON object: `quantity` (the new count),
 * `delta` (added; negative for sales) and/or `threshold`. Answers the product, whether it is
 * low, what happened to its alert, and the ids of the events sent.
 */
export async function apiInventory(ctx: ShopContext, req: Request): Promise<Response> {
  const principal = await authenticate(ctx, req);
  if (principal.kind !== "token") throw new HttpError(401, "A publish token is required.");
  if (mediaType(req) !== "application/json") throw new HttpError(415, "Send the stock change as application/json.");
  const body = await readJson(req, ctx.config.limits.maxBodyBytes);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'Send a JSON object such as {"quantity": 3}, {"delta": -2} or {"threshold": 5}.');
  }
  const input = body as Record<string, unknown>;
  const unknown = Object.keys(input).filter((key) => !["quantity", "delta", "threshold"].includes(key));
  if (unknown.length)
    throw new HttpError(
      400,
      `Unknown field ${unknown.map((k) => JSON.stringify(k)).join(", ")}: use quantity, delta or threshold.`,
    );
  const change: StockChange = {};
  // JSON numbers only: a string is a client bug worth a clear 400, not a guess.
  const number = (value: unknown) => (typeof value === "number" ? value : Number.NaN);
  if (input.quantity !== undefined) change.quantity = amount(number(input.quantity), "quantity");
  if (input.delta !== undefined) change.delta = amount(number(input.delta), "delta", { signed: true });
  if (input.threshold !== undefined) change.threshold = amount(number(input.threshold), "threshold");
  if (Object.keys(change).length === 0) throw new HttpError(400, "Give quantity, delta or threshold.");
  const sku = skuOf(req, 3);
  ctx.inventory.find(sku);
  checkPublishRate(ctx.rates.publishesPerToken, principal.label);
  const result = await changeStock(ctx, principal, sku, change);
  return jsonResponse(result);
}
