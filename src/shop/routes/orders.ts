/** `GET /orders` and `POST /orders`: demo orders whose status steps reach only the buyer. */
import { currentUser, pageViewer } from "../../server/context.ts";
import type { ShopContext } from "../context.ts";
import { HttpError } from "../../server/errors.ts";
import { readBrowserForm } from "../../server/form.ts";
import { placeOrder } from "../actions.ts";
import { pageStreamUrl } from "../../server/pages.ts";
import { checkPublishRate } from "../../server/publish.ts";
import { htmlResponse, isHtmx, seeOther } from "../../server/respond.ts";
import { ORDERS_PAGE, orderPlaced, ordersPage } from "../views/orders.ts";

export function orders(ctx: ShopContext, req: Request): Response {
  const viewer = pageViewer(ctx, req);
  const mine = viewer.user ? ctx.orders.of(viewer.user.id) : [];
  const page = ordersPage(viewer, pageStreamUrl(ORDERS_PAGE), ctx.inventory.all(), mine);
  return htmlResponse(page, { headers: viewer.setCookie ? { "set-cookie": viewer.setCookie } : {} });
}

/** `POST /orders`: `sku` and `quantity`. */
export async function order(ctx: ShopContext, req: Request): Promise<Response> {
  const user = currentUser(ctx, req);
  if (!user) throw new HttpError(401, "Sign in to place an order.");
  const fields = await readBrowserForm(ctx, req, user);
  const quantityText = fields.quantity?.trim() ?? "";
  const quantity = /^\d{1,9}$/.test(quantityText) ? Number(quantityText) : NaN;
  if (Number.isNaN(quantity)) throw new HttpError(400, "The quantity must be a whole number.");
  const sku = (fields.sku ?? "").trim().toUpperCase();
  ctx.inventory.find(sku);
  checkPublishRate(ctx.rates.publishesPerUser, user.id);
  const placed = await placeOrder(ctx, user, sku, quantity);
  return isHtmx(req) ? htmlResponse(orderPlaced(placed)) : seeOther("/orders");
}
