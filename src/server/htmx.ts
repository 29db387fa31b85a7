/**
 * htmx 2 and htmx 4, side by side.
 *
 * Pages are rendered for one of them: htmx 2 with htmx-ext-sse (the default), or htmx 4 with its
 * built-in `hx-sse` (`HERALD_HTMX=4`, or `?htmx=4` on any page). The hub, the events and their
 * fragments are the same; what differs is how a stream frames them:
 *
 * - htmx-ext-sse swaps named events into the elements whose `sse-swap` names them;
 * - htmx 4 swaps only unnamed messages, into the element that connected (named events become DOM
 *   events). Its stream request carries `HX-Request: true`, which an EventSource never sends.
 *
 * So a stream opened by htmx 4 gets the events its page shows as unnamed messages whose data say
 * where they go: out-of-band fragments as they are, others wrapped in an element that names their
 * region (`<div hx-swap-oob="afterbegin:#notifications">…</div>`; htmx inserts the wrapper's
 * children). Every other event keeps its name. Each publish encodes that variant once per page
 * kind, and only when such a stream is on its channel.
 */
import { HttpError } from "./errors.ts";
import { encodeMessage, type SseMessage } from "../core/sse.ts";
import type { Framing } from "../core/subscriber.ts";

export const HTMX_VERSIONS = [2, 4] as const;
export type HtmxVersion = (typeof HTMX_VERSIONS)[number];

/** The version a page is rendered for: `?htmx=` when given (400 for another value), else the configured one. */
export function htmxVersionOf(url: URL, configured: HtmxVersion): HtmxVersion {
  const asked = url.searchParams.get("htmx");
  if (asked === null || asked === "") return configured;
  if (asked === "2" || asked === "4") return Number(asked) as HtmxVersion;
  throw new HttpError(400, `htmx=${asked} is not a version herald serves pages for: use 2 or 4.`);
}

/** Whether a stream request comes from htmx 4's `hx-sse` (a fetch with `HX-Request: true`). */
export function isHtmx4Stream(req: Request): boolean {
  return req.headers.get("hx-request") === "true";
}

/**
 * Which htmx sent a request: htmx 4 marks each with `HX-Request-Type`, which htmx 2 never sends.
 * For answers whose markup the two swap differently.
 */
export function requestHtmx(req: Request): HtmxVersion {
  return req.headers.has("hx-request-type") ? 4 : 2;
}

/**
 * Where an event goes on a page, for htmx 4: `"oob"` when its data is out-of-band fragments
 * already; `"main"` to swap it into the connecting element as that element's `hx-swap` says;
 * otherwise the `hx-swap-oob` value of a wrapper (`innerHTML:#market`).
 */
export type Placement = "oob" | "main" | `${string}:#${string}`;

/** How a stream for htmx 4 frames the events of one kind of page. */
export class Htmx4Framing implements Framing {
  readonly #placements: ReadonlyMap<string, Placement>;

  constructor(placements: Record<string, Placement>) {
    this.#placements = new Map(Object.entries(placements));
  }

  /** The message as this page's htmx 4 stream gets it. */
  frame(message: SseMessage): SseMessage {
    const placement = message.event === undefined ? undefined : this.#placements.get(message.event);
    if (placement === undefined) return message;
    const data =
      placement === "oob" || placement === "main"
        ? message.data
        : `<div hx-swap-oob="${placement}">${message.data}</div>`;
    return { id: message.id, retry: message.retry, data };
  }

  encode(message: SseMessage): Uint8Array {
    return encodeMessage(this.frame(message));
  }
}
