/** The demo shop's topics. */

/** Every inventory page follows it: product rows and low-stock alerts. */
export const INVENTORY_TOPIC = "inventory";
/** Simulated prices on the live page. */
export const MARKET_TOPIC = "market";
/** This process's figures on the live page. */
export const METRICS_TOPIC = "metrics";
/** Notifications on the live page. */
export const NOTIFICATIONS_TOPIC = "notifications";
