/**
 * Orders for every process of one herald: "end the streams on this channel". With one process
 * they are carried out at once; with Redis they go through a pub/sub channel that every process
 * listens on (on a client of its own, as a subscribed client can run no other command), and each
 * process carries them out for its own streams.
 */
import type { RedisClient } from "bun";
import type { Channel } from "./channel.ts";
import { RedisUnavailableError, redisClient, withinTimeout } from "./eventlog/redis.ts";
import type { Hub } from "./hub.ts";
import type { Log } from "./log.ts";

/** An order for every process. */
export type ControlOrder = { kind: "disconnect"; channel: Channel };

export interface Control {
  /** Carries out `order` here, and sends it to every other process. Resolves with this process's count. */
  send(order: ControlOrder): Promise<number>;
  close(): Promise<void>;
}

/** Carries an order out on `hub`: returns how many streams it ended. */
function carryOut(hub: Hub, order: ControlOrder): number {
  return hub.disconnect({ channel: order.channel });
}

/** How long to wait before subscribing again while Redis is away. */
const RETRY_MS = 2_000;

/** One process: orders are carried out here and go nowhere else. */
export class LocalControl implements Control {
  readonly #hub: Hub;

  constructor(hub: Hub) {
    this.#hub = hub;
  }

  async send(order: ControlOrder): Promise<number> {
    return carryOut(this.#hub, order);
  }

  async close(): Promise<void> {}
}

/** Several processes on one Redis: orders go out on `<prefix>control` and each process carries them out. */
export class RedisControl implements Control {
  readonly #hub: Hub;
  readonly #publisher: RedisClient;
  readonly #subscriber: RedisClient;
  readonly #channel: string;
  /** Marks this process's own orders, which it carries out when sending rather than when they come back. */
  readonly #origin = crypto.randomUUID();
  readonly #subscribed: Promise<void>;
  #closed = false;

  readonly #timeoutMs: number;

  constructor(hub: Hub, options: { url: string; prefix: string; log: Log; timeoutMs: number }) {
    this.#hub = hub;
    this.#timeoutMs = options.timeoutMs;
    this.#publisher = redisClient(options.url);
    this.#subscriber = redisClient(options.url);
    this.#channel = `${options.prefix}control`;
    const listen = async (): Promise<void> => {
      // Orders are not queued while Redis is away: connect first, and try again until it answers.
      try {
        if (!this.#subscriber.connected) await this.#subscriber.connect();
        await this.#subscriber.subscribe(this.#channel, (message) => this.#receive(message, options.log));
      } catch (error) {
        if (this.#closed) return;
        options.log.warn("control channel not subscribed; trying again", { error: String(error) });
        await Bun.sleep(RETRY_MS);
        if (!this.#closed) return listen();
      }
    };
    this.#subscribed = listen();
  }

  async send(order: ControlOrder): Promise<number> {
    const here = carryOut(this.#hub, order);
    const publish = async () => {
      if (!this.#publisher.connected) await this.#publisher.connect();
      await this.#publisher.publish(this.#channel, JSON.stringify({ origin: this.#origin, order }));
    };
    // Redis away: this process's streams are ended; the others' are not, and the caller is told (503).
    await withinTimeout(publish(), this.#timeoutMs).catch(() => {
      throw new RedisUnavailableError();
    });
    return here;
  }

  /** Carries out an order another process sent. */
  #receive(message: string, log: Log): void {
    try {
      const { origin, order } = JSON.parse(message) as { origin: string; order: ControlOrder };
      if (origin !== this.#origin && order?.kind === "disconnect") carryOut(this.#hub, order);
    } catch (error) {
      log.warn("control message skipped", { error: String(error) });
    }
  }

  /** Resolves once this process listens for orders (for tests and start-up checks). */
  get listening(): Promise<void> {
    return this.#subscribed;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#subscriber.close();
    this.#publisher.close();
  }
}
