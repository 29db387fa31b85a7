import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { HeraldError } from "../src/core/errors.ts";
import {
  MemoryEventLog,
  type NewEvent,
  type Position,
  type Render,
  type StoredEvent,
} from "../src/core/eventlog/index.ts";
import { Hub } from "../src/core/hub.ts";
import { eventually, idsOf, openStream, signIn, startTestHerald, type Session, type SseReader } from "./helpers.ts";

let herald: Herald;
const open: SseReader[] = [];

async function stream(query = "", session?: Session): Promise<SseReader> {
  const reader = await openStream(herald, query, session?.cookie);
  open.push(reader);
  return reader;
}

beforeEach(() => {
  herald = startTestHerald();
});

afterEach(async () => {
  for (const reader of open.splice(0)) reader.close();
  await herald.stop();
});

describe("hub", () => {
  test("routes a topic event only to that topic's streams", async () => {
    const orders = await stream("?topic=orders");
    const market = await stream("?topic=market");
    await eventually(() => herald.hub.clientCount === 2, "two streams");

    expect((await herald.hub.publishToTopic("orders", { event: "notification", data: "order 1" })).delivered).toBe(1);
    expect((await orders.event(1)).data).toBe("order 1");
    expect((await herald.hub.publishToTopic("market", { event: "notification", data: "price" })).delivered).toBe(1);
    expect((await market.event(1)).data).toBe("price");
    expect(orders.events.map((e) => e.data)).toEqual(["order 1"]);
  });

  test("routes a user event only to that user's streams, on every tab they have open", async () => {
    const bob1 = await stream("", await signIn(herald, "bob"));
    const bob2 = await stream("", await signIn(herald, "Bob"));
    const alice = await stream("", await signIn(herald, "alice"));
    await eventually(() => herald.hub.clientCount === 3, "three streams");

    expect((await herald.hub.publishToUser("bob", { event: "notification", data: "for bob" })).delivered).toBe(2);
    expect((await bob1.event(1)).data).toBe("for bob");
    expect((await bob2.event(1)).data).toBe("for bob");
    herald.hub.publishToEveryone({ event: "notification", data: "all" });
    expect((await alice.event(1)).data).toBe("all");
  });

  test("everyone reaches anonymous and signed-in streams alike", async () => {
    const anonymous = await stream();
    const carol = await stream("?topic=x", await signIn(herald, "carol"));
    await eventually(() => herald.hub.clientCount === 2, "two streams");
    expect((await herald.hub.publishToEveryone({ event: "notification", data: "hello" })).delivered).toBe(2);
    expect((await anonymous.event(1)).data).toBe("hello");
    expect((await carol.event(1)).data).toBe("hello");
  });

  test("signalEach makes one message per user on the channel, and sends nothing where it makes none", async () => {
    const alice1 = await stream("?topic=room", await signIn(herald, "alice"));
    const alice2 = await stream("?topic=room", await signIn(herald, "alice"));
    const bob = await stream("?topic=room", await signIn(herald, "bob"));
    const anonymous = await stream("?topic=room");
    const elsewhere = await stream("?topic=other", await signIn(herald, "carol"));
    await eventually(() => herald.hub.clientCount === 5, "five streams");
    const asked: Array<string | null> = [];
    const written = herald.hub.signalEach("topic:room", (user) => {
      asked.push(user);
      return user === "bob" ? null : { event: "note", data: `for ${user ?? "anonymous"}` };
    });
    expect(written).toBe(3);
    expect(asked.sort()).toEqual(["alice", "bob", null].sort());
    expect((await alice1.event(1)).data).toBe("for alice");
    expect((await alice2.event(1)).data).toBe("for alice");
    expect((await anonymous.event(1)).data).toBe("for anonymous");
    herald.hub.signal("topic:room", { event: "note", data: "marker" });
    await bob.event(1);
    expect(bob.events.map((e) => e.data)).toEqual(["marker"]);
    expect(elsewhere.events).toEqual([]);
  });

  test("a stream on several of the targets gets the event once", async () => {
    const both = await stream("?topic=a,b&topic=a", await signIn(herald, "dave"));
    const onlyB = await stream("?topic=b");
    await eventually(() => herald.hub.clientCount === 2, "two streams");

    const result = await herald.hub.publish(["topic:a", "topic:b", "user:dave", "everyone"], {
      event: "notification",
      data: "once",
    });
    expect(result.delivered).toBe(2);
    herald.hub.publishToTopic("a", { event: "notification", data: "marker" });
    await both.event(2);
    await onlyB.event(1);
    expect(both.events.map((e) => e.data)).toEqual(["once", "marker"]);
    expect(onlyB.events.map((e) => e.data)).toEqual(["once"]);
  });

  test("a publish to a channel nobody is on delivers to no one", async () => {
    expect((await herald.hub.publishToTopic("empty", { event: "notification", data: "x" })).delivered).toBe(0);
    expect(herald.hub.stats().published).toBe(1);
  });

  test("counts go back to zero after every stream disconnects", async () => {
    const cookie = await signIn(herald, "erin");
    const readers = await Promise.all([stream("?topic=a", cookie), stream("?topic=b"), stream("?topic=a,b", cookie)]);
    await eventually(() => herald.hub.clientCount === 3, "three streams");
    expect(herald.hub.stats()).toMatchObject({
      clients: 3,
      channels: 4,
      users: 1,
      byKind: { everyone: 3, topic: 4, user: 2, group: 0 },
    });
    expect(herald.hub.isConnected("erin")).toBe(true);

    for (const reader of readers) reader.close();
    await eventually(() => herald.hub.clientCount === 0, "no streams");
    expect(herald.hub.stats()).toMatchObject({
      clients: 0,
      channels: 0,
      users: 0,
      byKind: { everyone: 0, topic: 0, user: 0, group: 0 },
    });
    expect(herald.hub.isConnected("erin")).toBe(false);
    expect((await herald.hub.publishToEveryone({ event: "notification", data: "x" })).delivered).toBe(0);
  });

  test("disconnecting a user ends their streams after a farewell event, and no one else's", async () => {
    const frank = await stream("", await signIn(herald, "frank"));
    const other = await stream();
    await eventually(() => herald.hub.clientCount === 2, "two streams");

    expect(herald.hub.disconnectUser("frank", { event: "bye", data: "signed out" })).toBe(1);
    await frank.ended();
    // The id is the last one the stream saw: its snapshot's (the log is empty, so 0).
    expect(frank.events).toEqual([{ event: "bye", data: "signed out", id: (await idsOf(herald))(0) }]);
    expect(herald.hub.clientCount).toBe(1);
    expect(herald.hub.isConnected("frank")).toBe(false);
    herald.hub.publishToEveryone({ event: "notification", data: "still here" });
    expect((await other.event(1)).data).toBe("still here");
  });

  test("stats count published events, deliveries and the last event time", async () => {
    await stream("?topic=a");
    await stream("?topic=a");
    await eventually(() => herald.hub.clientCount === 2, "two streams");
    const before = Date.now();
    await herald.hub.publishToTopic("a", { event: "notification", data: "1" });
    await herald.hub.publishToTopic("a", { event: "notification", data: "2" });
    const stats = herald.hub.stats();
    expect(stats.published).toBe(2);
    expect(stats.delivered).toBe(4);
    expect(stats.lastEventAt).toBeGreaterThanOrEqual(before);
  });

  test("an unsafe event name is refused before anything is written", async () => {
    const reader = await stream("?topic=a");
    await eventually(() => herald.hub.clientCount === 1, "one stream");
    expect(() => herald.hub.publishToTopic("a", { event: "x\ndata: evil", data: "x" })).toThrow(HeraldError);
    herald.hub.publishToTopic("a", { event: "ok", data: "fine" });
    expect(await reader.event(1)).toEqual({ event: "ok", data: "fine", id: (await idsOf(herald))(1) });
    expect(reader.raw).not.toContain("evil");
  });
});

/**
 * A stream sink that records what each flush sends (Bun sends a stream's bytes written since the
 * last flush in one system call) and, if asked, takes `busyMs` per write.
 */
function recordingSink(busyMs = 0) {
  let unsent = "";
  const sink = {
    /** What each flush sent. */
    sends: [] as string[],
    write(chunk: Uint8Array) {
      const until = performance.now() + busyMs;
      while (performance.now() < until);
      unsent += new TextDecoder().decode(chunk);
      return chunk.byteLength;
    },
    flush() {
      // The epoch is random: ids are compared by their number.
      sink.sends.push(unsent.replace(/^id: [a-z0-9]+-/gm, "id: "));
      unsent = "";
      return 0;
    },
    end() {
      return 0;
    },
  };
  return sink;
}

const frame = (id: number, data: string) => `event: notification\nid: ${id}\ndata: ${data}\n\n`;

describe("coalesced writes", () => {
  test("events due for one stream in the same turn go out in one send, each frame whole and in order", async () => {
    const sink = recordingSink();
    const hub = new Hub({
      log: new MemoryEventLog({ maxEvents: 100, maxAgeMs: 60_000 }),
      heartbeatMs: 0,
      clientTimeoutMs: 0,
    });
    hub.attach(sink, { channels: ["topic:t"], userId: null });
    // Three publishes at once (one commit): the three frames in one send.
    await Promise.all(["a", "b", "c"].map((data) => hub.publish("topic:t", { event: "notification", data })));
    await Bun.sleep(0);
    expect(sink.sends).toEqual([frame(1, "a") + frame(2, "b") + frame(3, "c")]);
    // A publish on its own is sent on its own, at once.
    await hub.publish("topic:t", { event: "notification", data: "d" });
    await Bun.sleep(0);
    expect(sink.sends).toEqual([frame(1, "a") + frame(2, "b") + frame(3, "c"), frame(4, "d")]);
    hub.close();
  });

  test("events published one after another in one turn of the event loop go out in one send, after the turn", async () => {
    const sink = recordingSink();
    const hub = new Hub({
      log: new MemoryEventLog({ maxEvents: 100, maxAgeMs: 60_000 }),
      heartbeatMs: 0,
      clientTimeoutMs: 0,
    });
    hub.attach(sink, { channels: ["topic:t"], userId: null });
    // The memory log commits at once, so each publish has fanned out when it resolves, as
    // separate requests handled in one turn would have.
    for (const data of ["a", "b", "c"]) await hub.publish("topic:t", { event: "notification", data });
    expect(sink.sends).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(sink.sends).toEqual([frame(1, "a") + frame(2, "b") + frame(3, "c")]);
    hub.close();
  });

  test("a stream whose write throws is closed and the others still get the event", async () => {
    const hub = new Hub({
      log: new MemoryEventLog({ maxEvents: 100, maxAgeMs: 60_000 }),
      heartbeatMs: 0,
      clientTimeoutMs: 0,
    });
    const broken = {
      ...recordingSink(),
      write(): number {
        throw new TypeError("the stream is closed");
      },
    };
    const sinks = [recordingSink(), broken, recordingSink()];
    const subscribers = sinks.map((sink) => hub.attach(sink, { channels: ["topic:t"], userId: null }));
    await hub.publish("topic:t", { event: "notification", data: "a" });
    await Bun.sleep(0);
    expect(sinks[0]!.sends).toEqual([frame(1, "a")]);
    expect(sinks[2]!.sends).toEqual([frame(1, "a")]);
    expect(subscribers[1]!.closeReason).toBe("client");
    expect(hub.clientCount).toBe(2);
    // The writer is not stuck: the next event goes out too.
    await hub.publish("topic:t", { event: "notification", data: "b" });
    await Bun.sleep(0);
    expect(sinks[0]!.sends).toEqual([frame(1, "a"), frame(2, "b")]);
    hub.close();
  });

  test("events published while the writer is still busy with a fan-out reach the streams it has not reached yet in one send", async () => {
    const hub = new Hub({
      log: new MemoryEventLog({ maxEvents: 100, maxAgeMs: 60_000 }),
      heartbeatMs: 0,
      clientTimeoutMs: 0,
    });
    // Each frame's write takes 0.2 ms: a slice (the time is checked every 32 streams) reaches a third of the 100
    // streams.
    const sinks = Array.from({ length: 100 }, () => recordingSink(0.2));
    for (const sink of sinks) hub.attach(sink, { channels: ["topic:t"], userId: null });
    await hub.publish("topic:t", { event: "notification", data: "a" });
    // The writer starts at the end of this turn of the event loop: its first slice runs before
    // this test's next turn, and the event loop takes these publishes before its next slice.
    await new Promise((resolve) => setImmediate(resolve));
    await hub.publish("topic:t", { event: "notification", data: "b" });
    await hub.publish("topic:t", { event: "notification", data: "c" });
    const all = frame(1, "a") + frame(2, "b") + frame(3, "c");
    while (sinks.some((sink) => sink.sends.join("").length < all.length)) await Bun.sleep(1);
    // Every stream has all three events, whole and in order, however they were grouped.
    for (const sink of sinks) expect(sink.sends.join("")).toBe(all);
    // The streams the first slice reached got "a" alone; the last stream got all three in one send.
    expect(sinks[0]!.sends[0]).toBe(frame(1, "a"));
    expect(sinks.at(-1)!.sends).toEqual([all]);
    const sends = sinks.reduce((sum, sink) => sum + sink.sends.length, 0);
    expect(sends).toBeLessThan(150);
    hub.close();
  });
});

describe("with a shared log", () => {
  /** A memory log that, like Redis, others write too: the hub fans out what `follow` hands it, when the test says. */
  class HeldLog extends MemoryEventLog {
    deliver: ((events: StoredEvent[]) => void) | null = null;
    follow(_from: Position, deliver: (events: StoredEvent[], reached: Position) => void): { stop(): void } {
      this.deliver = (events) => deliver(events, { epoch: events[0]!.epoch, id: events.at(-1)!.id });
      return { stop() {} };
    }
  }

  test("a publisher whose event came round before its append resolved gets the count its event reached", async () => {
    // As with Redis, when the follower reads a batch before the script that wrote it has answered.
    class EagerLog extends HeldLog {
      override async append(event: NewEvent, render?: Render): Promise<StoredEvent> {
        const stored = await super.append(event, render);
        this.deliver!([stored]);
        return stored;
      }
    }
    const log = new EagerLog({ maxEvents: 100_000, maxAgeMs: 60_000 });
    const hub = new Hub({ log, heartbeatMs: 0, clientTimeoutMs: 0, followWaitMs: 60_000 });
    await hub.position();
    hub.attach(recordingSink(0), { channels: ["topic:t"], userId: null });
    hub.attach(recordingSink(0), { channels: ["topic:t"], userId: null });
    // More events than the hub keeps counts for, so the kept counts wrap round.
    for (let i = 0; i < 20_000; i += 1_000) {
      const results = await Promise.all(
        Array.from({ length: 1_000 }, (_, j) =>
          hub.publish(j % 2 ? "topic:t" : "topic:u", { event: "notification", data: `${i + j}` }),
        ),
      );
      expect(results.map((r) => r.delivered)).toEqual(Array.from({ length: 1_000 }, (_, j) => (j % 2 ? 2 : 0)));
    }
    hub.close();
  });

  test("a publisher is answered once its event comes round, or after followWaitMs with 0 streams when it does not", async () => {
    const log = new HeldLog({ maxEvents: 100, maxAgeMs: 60_000 });
    const hub = new Hub({ log, heartbeatMs: 0, clientTimeoutMs: 0, followWaitMs: 300 });
    await hub.position();
    const sink = recordingSink(0);
    hub.attach(sink, { channels: ["topic:t"], userId: null });
    const started = performance.now();
    const answers: Array<[string, number, number]> = [];
    const publishes = ["a", "b", "c"].map((data) =>
      hub
        .publish("topic:t", { event: "notification", data })
        .then((r) => void answers.push([data, r.delivered, performance.now() - started])),
    );
    await log.flush();
    await Bun.sleep(20);
    // Only "b" comes round: its publisher is answered at once with the stream it reached.
    log.deliver!([(await log.get(2))!]);
    await eventually(() => answers.length === 1, "b answered");
    expect(answers[0]!.slice(0, 2)).toEqual(["b", 1]);
    await Promise.all(publishes);
    // "a" and "c" are stored but held up: answered with 0 streams once they have waited 300 ms, not before.
    expect(answers.slice(1).map(([data, delivered]) => [data, delivered])).toEqual([
      ["a", 0],
      ["c", 0],
    ]);
    for (const [, , ms] of answers.slice(1)) expect(ms).toBeGreaterThanOrEqual(290);
    hub.close();
  });
});

describe("the hub's end", () => {
  test("a stream that arrives after the hub closed is ended at once, not left open", () => {
    const hub = new Hub({
      log: new MemoryEventLog({ maxEvents: 100, maxAgeMs: 60_000 }),
      heartbeatMs: 0,
      clientTimeoutMs: 0,
    });
    hub.close();
    const late = hub.attach(recordingSink(), { channels: ["topic:t"], userId: null });
    expect(late.closed).toBe(true);
    expect(late.closeReason).toBe("shutdown");
    expect(hub.clientCount).toBe(0);
  });

  test("closing a stream whose socket Bun already tore down does not throw, and the others still close", () => {
    const hub = new Hub({
      log: new MemoryEventLog({ maxEvents: 100, maxAgeMs: 60_000 }),
      heartbeatMs: 0,
      clientTimeoutMs: 0,
    });
    const torn = {
      ...recordingSink(),
      write(): number {
        throw new TypeError("the stream is closed");
      },
    };
    const broken = hub.attach(torn, { channels: ["topic:t"], userId: null });
    const fine = hub.attach(recordingSink(), { channels: ["topic:t"], userId: null });
    broken.write(new TextEncoder().encode(": queued\n\n"));
    expect(() => hub.close(() => new TextEncoder().encode("retry: 1000\n\n"), "shutdown")).not.toThrow();
    expect(broken.closed && fine.closed).toBe(true);
  });

  test("a listener that throws does not fail the publish, and later events still reach listeners", async () => {
    const hub = new Hub({
      log: new MemoryEventLog({ maxEvents: 100, maxAgeMs: 60_000 }),
      heartbeatMs: 0,
      clientTimeoutMs: 0,
    });
    const errors: unknown[] = [];
    const seen: string[] = [];
    hub.onSent(
      () => {
        throw new Error("listener bug");
      },
      (error) => errors.push(error),
    );
    hub.onSent((_channels, event) => seen.push(event));
    await hub.publish("topic:t", { event: "notification", data: "a" });
    await hub.publish("topic:t", { event: "notification", data: "b" });
    expect(seen).toEqual(["notification", "notification"]);
    expect(errors).toHaveLength(2);
    hub.close();
  });
});
