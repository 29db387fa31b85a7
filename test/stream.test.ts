import { afterEach, describe, expect, test } from "bun:test";
import { heapStats } from "bun:jsc";
import { connect } from "node:net";
import type { Herald } from "../src/app.ts";
import { eventually, idsOf, openStream, seq, startTestHerald } from "./helpers.ts";

let herald: Herald | undefined;

afterEach(async () => {
  await herald?.stop();
  herald = undefined;
});

describe("GET /sse", () => {
  test("answers with event-stream headers and a retry hint as the first chunk", async () => {
    herald = startTestHerald({ retryMs: 2500 });
    const controller = new AbortController();
    const res = await fetch(`${herald.url}/sse`, { signal: controller.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-cache");
    expect(res.headers.get("x-accel-buffering")).toBe("no");
    // Nothing is published: the first chunk is there only because the stream writes it on open.
    const first = await res.body!.getReader().read();
    expect(new TextDecoder().decode(first.value)).toStartWith("retry: 2500\n\n");
    controller.abort();
  });

  test("sends a heartbeat comment at the configured interval", async () => {
    herald = startTestHerald({ heartbeatMs: 40 });
    const reader = await openStream(herald);
    await reader.until(() => reader.comments.length >= 2, "two heartbeats");
    expect(reader.comments.slice(0, 2)).toEqual(["ping", "ping"]);
    expect(reader.events).toEqual([]);
    reader.close();
  });

  test("sends no heartbeat to a stream that events keep busy, and goes on beating on an idle one", async () => {
    herald = startTestHerald({ heartbeatMs: 1000 });
    const busy = await openStream(herald, "?topic=busy");
    const idle = await openStream(herald, "?topic=idle");
    // An event every 40 ms for 1.6 s: three ticks of half an interval and more, none quiet on `busy`.
    for (let i = 0; i < 40; i++) {
      herald.hub.publishToTopic("busy", { event: "notification", data: `event ${i}` });
      await Bun.sleep(40);
    }
    await busy.until(() => busy.events.length === 40, "40 events");
    expect(busy.comments).toEqual([]);
    await idle.until(() => idle.comments.length >= 1, "a heartbeat on the idle stream");
    expect(idle.comments[0]).toBe("ping");
    // Once the events stop, the busy stream is idle too and is beaten on.
    await busy.until(() => busy.comments.length >= 1, "a heartbeat after the events");
    expect(busy.comments[0]).toBe("ping");
    busy.close();
    idle.close();
  });

  test("keeps an idle stream open past Bun's default 10 s idle timeout", async () => {
    herald = startTestHerald();
    const reader = await openStream(herald, "?topic=slow");
    await Bun.sleep(10_500);
    expect(reader.done).toBe(false);
    herald.hub.publishToTopic("slow", { event: "notification", data: "still open" });
    expect((await reader.event(1)).data).toBe("still open");
    reader.close();
  }, 15_000);

  test("a client that aborts leaves every channel at once", async () => {
    herald = startTestHerald();
    const reader = await openStream(herald, "?topic=a,b,c");
    await eventually(() => herald!.hub.clientCount === 1, "one stream");
    expect(herald.hub.subscriberCount("topic:b")).toBe(1);
    reader.close();
    await eventually(() => herald!.hub.clientCount === 0, "stream cleanup");
    for (const channel of ["everyone", "topic:a", "topic:b", "topic:c"] as const) {
      expect(herald.hub.subscriberCount(channel)).toBe(0);
    }
    expect(herald.hub.stats().channels).toBe(0);
  });

  test("after 200 clients leave at once, the stream that stayed and one opened after get the next event", async () => {
    herald = startTestHerald();
    const stays = await openStream(herald, "?topic=crowd");
    const leaving = await Promise.all(Array.from({ length: 200 }, () => openStream(herald!, "?topic=crowd")));
    for (const reader of leaving) reader.close();
    const health = async () => (await (await fetch(`${herald!.url}/healthz`)).json()) as { clients: number };
    const deadline = Date.now() + 3000;
    while ((await health()).clients !== 1) {
      if (Date.now() > deadline) throw new Error("the 200 streams were not let go");
      await Bun.sleep(20);
    }
    const late = await openStream(herald, "?topic=crowd");
    herald.hub.publishToTopic("crowd", { event: "notification", data: "still here" });
    for (const reader of [stays, late]) expect((await reader.event(1)).data).toBe("still here");
    expect((await health()).clients).toBe(2);
    stays.close();
    late.close();
  });

  test("an open stream keeps neither its request nor an AbortSignal, and still ends when its client goes", async () => {
    herald = startTestHerald();
    const port = Number(new URL(herald.url).port);
    const counts = () => {
      Bun.gc(true);
      const types = heapStats().objectTypeCounts as Record<string, number>;
      return { signals: types.AbortSignal ?? 0, requests: types.Request ?? 0 };
    };
    // Raw sockets: a fetch would make objects of its own in this process.
    const open = async (count: number) => {
      const sockets: Array<Awaited<ReturnType<typeof Bun.connect>>> = [];
      let started = 0;
      const { promise, resolve } = Promise.withResolvers<void>();
      for (let i = 0; i < count; i++) {
        const socket = await Bun.connect({
          hostname: "127.0.0.1",
          port,
          socket: {
            data(socket) {
              const seen = socket as unknown as { started?: boolean };
              if (seen.started) return;
              seen.started = true;
              if (++started === count) resolve();
            },
          },
        });
        socket.write(`GET /sse?topic=held HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`);
        sockets.push(socket);
      }
      await promise;
      return sockets;
    };
    // Warm up: the first streams compile the path and fill Bun's pools.
    for (const socket of await open(20)) socket.end();
    await eventually(() => herald!.hub.clientCount === 0, "the warm-up streams to end");
    const before = counts();
    const held = await open(100);
    await eventually(() => herald!.hub.clientCount === 100, "100 streams");
    const during = counts();
    // Each stream that kept its request's signal would add one of each.
    expect(during.signals - before.signals).toBeLessThan(10);
    expect(during.requests - before.requests).toBeLessThan(10);
    for (const socket of held) socket.end();
    await eventually(() => herald!.hub.clientCount === 0, "the streams to end as their clients go");
    expect(herald.hub.stats().channels).toBe(0);
  });

  test("accepts topics repeated or comma-separated", async () => {
    herald = startTestHerald();
    const reader = await openStream(herald, "?topic=a&topic=b,c&topic=a");
    await eventually(() => herald!.hub.clientCount === 1, "one stream");
    expect(herald.hub.stats().channels).toBe(4);
    reader.close();
  });

  test("refuses a bad topic name with a 400 that says why, and other streams keep receiving", async () => {
    herald = startTestHerald();
    const ok = await openStream(herald, "?topic=good");
    for (const bad of ["_orders", "user:bob", "-x", "a/b", "caf%C3%A9", "x".repeat(65), "%3Cscript%3E"]) {
      const res = await fetch(`${herald.url}/sse?topic=${bad}`, { headers: { accept: "text/event-stream" } });
      expect(res.status).toBe(400);
      // A cheap answer with a retry hint, in the stream's own format.
      expect(res.headers.get("content-type")).toStartWith("text/event-stream");
      const body = await res.text();
      expect(body).toStartWith("retry: ");
      expect(body).toContain("is not a valid topic name");
    }
    herald.hub.publishToTopic("good", { event: "notification", data: "still live" });
    expect((await ok.event(1)).data).toBe("still live");
    expect(herald.hub.clientCount).toBe(1);
    ok.close();
  });

  test("refuses more topics than a stream may follow", async () => {
    herald = startTestHerald();
    const topics = Array.from({ length: 33 }, (_, i) => `t${i}`).join(",");
    const res = await fetch(`${herald.url}/sse?topic=${topics}`, { headers: { accept: "text/event-stream" } });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("at most 32 topics; this one asked for 33");
    const exactly = await openStream(herald, `?topic=${topics.split(",").slice(0, 32).join(",")}`);
    exactly.close();
  });
});

/** The `notification` frames of a chunked SSE response: each one's `id` and `data`, in order. */
function framesOf(response: string): Array<{ id: string; data: string }> {
  let body = "";
  let at = response.indexOf("\r\n\r\n") + 4;
  for (;;) {
    const end = response.indexOf("\r\n", at);
    const size = Number.parseInt(response.slice(at, end), 16);
    if (!(size > 0)) break;
    body += response.slice(end + 2, end + 2 + size);
    at = end + 2 + size + 2;
  }
  return body
    .split("\n\n")
    .filter((frame) => frame.includes("event: notification\n"))
    .map((frame) => ({ id: /^id: (.*)$/m.exec(frame)![1]!, data: /^data: (.*)$/m.exec(frame)![1]! }));
}

describe("writes", () => {
  test("frames queued for several streams in one turn reach each stream whole and in order, also while its socket is full", async () => {
    herald = startTestHerald({ maxBuffer: 64 * 1024 * 1024 });
    const a = await openStream(herald, "?topic=a");
    const b = await openStream(herald, "?topic=b");
    // A client that reads nothing until the end: its socket fills, and Bun holds the rest.
    let received = "";
    const paused = connect(Number(new URL(herald.url).port), "127.0.0.1");
    paused.setEncoding("latin1");
    paused.on("data", (text: string) => (received += text));
    paused.write("GET /sse?topic=a,b HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
    await eventually(() => received.includes("retry: "), "the paused stream's retry hint");
    paused.pause();
    await eventually(() => herald!.hub.clientCount === 3, "three streams");

    // 20 turns of 30 events each, alternating topics: each stream's frames of a turn are joined
    // into one write, through the same buffer for every stream. 6 MB in all, past the socket's buffers.
    const payload = (i: number) => `${i}:${String(i % 10).repeat(10_000)}`;
    for (let turn = 0; turn < 20; turn++) {
      const published = [];
      for (let i = turn * 30; i < (turn + 1) * 30; i++)
        published.push(herald.hub.publishToTopic(i % 2 ? "b" : "a", { event: "notification", data: payload(i) }));
      await Promise.all(published);
    }
    const ofTopic = (odd: number) => Array.from({ length: 300 }, (_, k) => 2 * k + odd);
    await a.event(300, 20_000);
    await b.event(300, 20_000);
    expect(a.events.map((e) => e.data)).toEqual(ofTopic(0).map(payload));
    expect(b.events.map((e) => e.data)).toEqual(ofTopic(1).map(payload));
    expect(a.events.map((e) => seq(e.id))).toEqual(ofTopic(0).map((i) => i + 1));

    const all = Array.from({ length: 600 }, (_, i) => i);
    const stalled = herald.hub.stats();
    expect([...herald.hub.subscribers()].some((subscriber) => subscriber.drainingSince !== null)).toBe(true);
    paused.resume();
    await eventually(() => framesOf(received).length === 600, "every frame on the paused stream", 20_000);
    const id = await idsOf(herald);
    expect(framesOf(received)).toEqual(all.map((i) => ({ id: id(i + 1), data: payload(i) })));
    expect(stalled.droppedSlow).toBe(0);
    paused.destroy();
    a.close();
    b.close();
  }, 30_000);
});
