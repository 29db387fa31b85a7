/**
 * Presence on topics whose members are public (`HERALD_PRESENCE_TOPICS`): who is on a topic, and
 * `join`/`leave` events as signed-in users come and go, as a stream on the topic sees them.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { openStream, signIn, startTestHerald, type SseReader } from "./helpers.ts";

let herald: Herald;
const readers: SseReader[] = [];

afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  await herald.stop();
});

async function stream(query: string, cookie?: string): Promise<SseReader> {
  const reader = await openStream(herald, query, cookie);
  readers.push(reader);
  return reader;
}

async function presence(topic: string, cookie?: string): Promise<Response> {
  return fetch(`${herald.url}/api/presence?topic=${topic}`, { headers: cookie ? { cookie } : {} });
}

describe("presence topics", () => {
  test("join when a user's first stream opens, leave when their last one closes, and who is there", async () => {
    herald = startTestHerald({ presenceTopics: ["room-*"], publishTokens: ["presence-token-0123456789"] });
    const alice = await signIn(herald, "alice");
    const bob = await signIn(herald, "bob");
    const watcher = await stream("?topic=room-1");
    const alicePhone = await stream("?topic=room-1", alice.cookie);
    const aliceLaptop = await stream("?topic=room-1", alice.cookie);
    const bobs = await stream("?topic=room-1", bob.cookie);
    await watcher.until(() => watcher.events.filter((e) => e.event === "join").length === 2, "two joins");
    expect(watcher.events.map((e) => [e.event, e.data])).toEqual([
      ["join", '<li id="member-alice" class="member">alice</li>'],
      ["join", '<li id="member-bob" class="member">bob</li>'],
    ]);
    expect(await (await presence("room-1")).json()).toEqual({ topic: "room-1", streams: 4, users: ["alice", "bob"] });

    bobs.close();
    await watcher.until(() => watcher.events.some((e) => e.event === "leave"), "bob's leave");
    expect(watcher.events.at(-1)).toMatchObject({
      event: "leave",
      data: '<li id="member-bob" hx-swap-oob="delete"></li>',
    });
    // One of alice's two streams goes: she is still there.
    alicePhone.close();
    await Bun.sleep(100);
    expect(watcher.events.filter((e) => e.event === "leave")).toHaveLength(1);
    expect(await (await presence("room-1")).json()).toEqual({ topic: "room-1", streams: 2, users: ["alice"] });
    aliceLaptop.close();
    await watcher.until(() => watcher.events.filter((e) => e.event === "leave").length === 2, "alice's leave");
  });

  test("other topics give a count, not who; private ones only to who may follow them; join and leave are herald's", async () => {
    herald = startTestHerald({
      presenceTopics: ["room-*"],
      privateTopics: ["room-secret"],
      publishTokens: ["presence-token-0123456789"],
    });
    const alice = await signIn(herald, "alice");
    await stream("?topic=orders", alice.cookie);
    expect(await (await presence("orders")).json()).toEqual({ topic: "orders", streams: 1 });
    expect((await presence("room-secret")).status).toBe(401);
    expect((await presence("room-secret", alice.cookie)).status).toBe(403);
    expect((await presence("Bad Topic")).status).toBe(400);
    const spoof = await fetch(`${herald.url}/api/publish`, {
      method: "POST",
      headers: { authorization: "Bearer presence-token-0123456789", "content-type": "application/json" },
      body: JSON.stringify({ target: "topic:room-1", event: "join", html: "<li>mallory</li>" }),
    });
    expect(spoof.status).toBe(400);
  });
});
