/**
 * The demo shop's data, as its views and its code both see it: products, orders, quotes and
 * figures. No HTML here, and no storage: `inventory.ts`, `orders.ts` and `live.ts` keep them.
 */

export interface Product {
  sku: string;
  name: string;
  quantity: number;
  threshold: number;
}

/** A stock-keeping unit: upper-case letters, digits and `-`, at most 32. */
export const SKU = /^[A-Z0-9][A-Z0-9-]{0,31}$/;
/** The largest quantity or threshold herald takes. */
export const MAX_QUANTITY = 1_000_000_000;

export function isLow(product: Product): boolean {
  return product.quantity < product.threshold;
}

export const STEPS = ["processing", "confirmed", "shipped", "delivered"] as const;
export type Step = (typeof STEPS)[number];
/** The most items of one product in one order. */
export const MAX_ORDER_QUANTITY = 100;
export interface Order {
  id: number;
  userId: string;
  sku: string;
  item: string;
  quantity: number;
  /** Index into `STEPS` of the status reached. */
  step: number;
  /** When each step was reached (ms since the epoch), one per step reached. */
  times: number[];
  /** When the next step is due; `null` once delivered. */
  nextAt: number | null;
}

export interface Quote {
  symbol: string;
  name: string;
  price: number;
  /** Change since the previous tick, in percent. */
  change: number;
}

/** One reading of this process's figures. */
export interface Metrics {
  at: number;
  rssBytes: number;
  heapBytes: number;
  /** CPU time used since the previous reading, as a share of one core, in percent. */
  cpuPercent: number;
  streams: number;
  /** Events published per second since the previous reading. */
  eventsPerS: number;
  /** Events written to streams per second since the previous reading. */
  deliveriesPerS: number;
  uptimeS: number;
}
