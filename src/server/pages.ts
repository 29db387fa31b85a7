/**
 * Which page a stream backs (`GET /sse?page=`): the topics that page follows besides those asked
 * for, where each event it shows goes, and its snapshot, the event that brings that page's
 * regions up to date when the stream starts without an id the log covers. Each page's snapshot
 * replaces only elements that page has, so htmx never meets an out-of-band target it cannot find.
 *
 * A page is declared once (`PageSpec`, beside its view): htmx 2's `sse-swap` attributes
 * (`views/page.ts`) and htmx 4's framing (`Htmx4Framing`) both come from its `regions`. The server
 * registers its own pages (inbox, monitor, embed); the demo shop registers its pages the same way.
 */
import type { Channel } from "../core/channel.ts";
import { HeraldError } from "../core/errors.ts";
import { HttpError } from "./errors.ts";
import { Htmx4Framing, type Placement } from "./htmx.ts";
import type { User } from "./session.ts";

/** A live page, as its view declares it. */
export interface PageSpec {
  /** The `?page=` name. */
  name: string;
  /** Topics the page's stream follows besides those asked for. */
  topics: readonly string[];
  /** Each event the page shows, and where it goes (`"oob"`: its data is out-of-band fragments). */
  regions: Readonly<Record<string, Placement>>;
}

/** A page the server can stream for: its declaration, who may follow it, and its snapshot. */
export interface PageDefinition extends PageSpec {
  /** Throws 401/403 when `user` may not follow the page. Defaults to anyone. */
  check?(user: User | null): void;
  /** The `snapshot` event's data for `user` on `channels`, as of event `upTo`. */
  snapshot(user: User | null, channels: readonly Channel[], upTo: number): Promise<string>;
}

/** The pages herald streams for. */
export class Pages {
  readonly #pages = new Map<string, { definition: PageDefinition; framing: Htmx4Framing }>();
  /** The reserved names, made when a page is added rather than for every published event. */
  #reserved: ReadonlySet<string> = new Set();

  /** Registers a page; its name must be new. */
  add(definition: PageDefinition): void {
    if (this.#pages.has(definition.name))
      throw new HeraldError(`a page named "${definition.name}" is already registered`);
    this.#pages.set(definition.name, { definition, framing: new Htmx4Framing(definition.regions) });
    // `join` and `leave` announce members of presence topics; only herald sends them.
    const names = new Set(["close", "join", "leave"]);
    for (const { definition: page } of this.#pages.values())
      for (const event of Object.keys(page.regions)) names.add(event);
    names.delete("notification");
    this.#reserved = names;
  }

  /**
   * The page named by `?page=`: `inbox` when absent, 400 for one herald does not have, 401/403 when `check` refuses.
   */
  parse(text: string | null, user: User | null): PageDefinition {
    const name = text === null || text === "" ? "inbox" : text;
    const page = this.#pages.get(name)?.definition;
    if (!page)
      throw new HttpError(
        400,
        `There is no page "${name}" to stream for; use one of ${[...this.#pages.keys()].join(", ")}.`,
      );
    page.check?.(user);
    return page;
  }

  /** How the page's events are framed for a stream opened by htmx 4. */
  framing(page: PageSpec): Htmx4Framing {
    return this.#pages.get(page.name)!.framing;
  }

  /**
   * Event names that herald's pages act on, which only herald may send: `close` ends an htmx 4
   * page's stream for good, `snapshot` replaces a page's lists, and the others replace regions
   * of a page. `notification` is not among them: sending notifications is what publishing is for.
   */
  reserved(): ReadonlySet<string> {
    return this.#reserved;
  }
}

/** The `sse-connect` URL of a page. */
export function pageStreamUrl(page: PageSpec, topics: readonly string[] = []): string {
  const query = [
    page.name === "inbox" ? "" : `page=${page.name}`,
    topics.length ? `topic=${topics.map(encodeURIComponent).join(",")}` : "",
  ].filter(Boolean);
  return query.length ? `/sse?${query.join("&")}` : "/sse";
}
