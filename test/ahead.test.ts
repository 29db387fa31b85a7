/**
 * Events that go ahead (`HubOptions.ahead`): an urgent notice overtakes what is queued on a
 * stream, and the stream's ids still resume exactly. Read as a browser reads: the frames parsed
 * by the SSE rules, `lastEventId` as EventSource keeps it.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { MemoryEventLog } from "../src/core/eventlog/index.ts";
import { Hub } from "../src/core/hub.ts";

/** Parses SSE text as EventSource does: dispatched events and the last event id after each. */
function parse(text: string): { events: { event: string; data: string; lastEventId: string }[]; lastEventId: string } {
  const events: { event: string; data: string; lastEventId: string }[] = [];
  let lastEventId = "";
  let event = "";
  let data: string[] = [];
  let idBuffer = "";
  for (const line of text.split("\n")) {
    if (line === "") {
      lastEventId = idBuffer;
      if (data.length > 0) events.push({ event: event || "message", data: data.join("\n"), lastEventId });
      event = "";
      data = [];
      continue;
    }
    const colon = line.indexOf(":");
    if (colon === 0) continue;
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") idBuffer = value;
  }
  return { events, lastEventId };
}

/** A sink that keeps what is written, as the client's socket would receive it. */
function sink() {
  const chunks: string[] = [];
  const decoder = new TextDecoder();
  return {
    chunks,
    text: () => chunks.join(""),
    write(bytes: Uint8Array | ArrayBufferView | ArrayBuffer | string) {
      chunks.push(typeof bytes === "string" ? bytes : decoder.decode(bytes as Uint8Array));
      return (bytes as Uint8Array).byteLength ?? 1;
    },
    flush() {},
    end() {},
  };
}

const hubs: Hub[] = [];
afterEach(async () => {
  for (const hub of hubs.splice(0)) await hub.close();
});

function hub(ahead: string[]): Hub {
  const made = new Hub({
    log: new MemoryEventLog({ maxEvents: 100, maxAgeMs: 60_000 }),
    heartbeatMs: 0,
    clientTimeoutMs: 0,
    ahead,
  });
  hubs.push(made);
  return made;
}

describe("events that go ahead", () => {
  test("overtake events queued in the same turn, and the stream's last id is still the newest", async () => {
    const h = hub(["urgent"]);
    const out = sink();
    h.attach(out as never, { channels: ["everyone"], userId: null });
    // Published in one turn: the writer sends them together at its end.
    const published = [
      h.publish("everyone", { event: "notification", data: "one" }),
      h.publish("everyone", { event: "notification", data: "two" }),
      h.publish("everyone", { event: "urgent", data: "fire" }),
    ];
    const ids = (await Promise.all(published)).map((r) => r.id);
    await Bun.sleep(5);
    const { events, lastEventId } = parse(out.text());
    expect(events.map((e) => `${e.event}:${e.data}`)).toEqual(["urgent:fire", "notification:one", "notification:two"]);
    // Sent ahead, the urgent event carried no id: the one before it in the stream did not change.
    expect(events[0]!.lastEventId).toBe("");
    expect(lastEventId).toBe(ids[2]!);
  });

  test("go in order, with their id, when nothing waits", async () => {
    const h = hub(["urgent"]);
    const out = sink();
    h.attach(out as never, { channels: ["everyone"], userId: null });
    const first = await h.publish("everyone", { event: "notification", data: "one" });
    await Bun.sleep(5);
    const urgent = await h.publish("everyone", { event: "urgent", data: "fire" });
    await Bun.sleep(5);
    const { events } = parse(out.text());
    expect(events.map((e) => [e.data, e.lastEventId])).toEqual([
      ["one", first.id],
      ["fire", urgent.id],
    ]);
  });

  test("other names never overtake", async () => {
    const h = hub([]);
    const out = sink();
    h.attach(out as never, { channels: ["everyone"], userId: null });
    await Promise.all([
      h.publish("everyone", { event: "notification", data: "one" }),
      h.publish("everyone", { event: "urgent", data: "fire" }),
    ]);
    await Bun.sleep(5);
    expect(parse(out.text()).events.map((e) => e.data)).toEqual(["one", "fire"]);
  });
});

describe("a stream's start", () => {
  test("is let go once the stream has started: the stream keeps nothing of its start callbacks", async () => {
    const h = hub([]);
    const refs: WeakRef<object>[] = [];
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(req) {
        const start = {
          resumeFrom: null,
          fresh: async () => [{ event: "snapshot", data: "hello" }],
          // Something large the start holds, as a caller's request-scoped state would be.
          held: new Uint8Array(1024 * 1024),
        };
        refs.push(new WeakRef(start), new WeakRef(start.held));
        return new Response(h.open({ channels: ["everyone"], userId: null }, req.signal, start));
      },
    });
    const controller = new AbortController();
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/`, { signal: controller.signal });
      const reader = res.body!.getReader();
      let text = "";
      while (!text.includes("hello")) text += new TextDecoder().decode((await reader.read()).value);
      await h.publish("everyone", { event: "notification", data: "live" });
      while (!text.includes("live")) text += new TextDecoder().decode((await reader.read()).value);
      for (let i = 0; i < 10 && refs.some((ref) => ref.deref() !== undefined); i++) {
        Bun.gc(true);
        await Bun.sleep(10);
      }
      expect(refs.map((ref) => ref.deref() === undefined)).toEqual([true, true]);
      expect(h.clientCount).toBe(1);
    } finally {
      controller.abort();
      server.stop(true);
    }
  });
});
