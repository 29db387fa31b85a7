import { afterEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import {
  eventually,
  idsOf,
  openStream,
  postForm,
  seq,
  signIn,
  startTestHerald,
  type SseReader,
  type TestConfig,
} from "./helpers.ts";

let herald: Herald | undefined;
const open: SseReader[] = [];

async function start(config: TestConfig = {}): Promise<Herald> {
  herald = startTestHerald(config);
  return herald;
}

async function stream(
  h: Herald,
  query = "",
  cookie?: string,
  headers: Record<string, string> = {},
): Promise<SseReader> {
  const reader = await openStream(h, query, cookie, headers);
  open.push(reader);
  return reader;
}

async function publishMany(h: Herald, topic: string, from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) await h.hub.publishToTopic(topic, { event: "notification", data: `e${i}` });
}

afterEach(async () => {
  for (const reader of open.splice(0)) reader.close();
  await herald?.stop();
  herald = undefined;
});

describe("resume by id", () => {
  for (const [how, asHeader] of [
    ["Last-Event-ID", true],
    ["?lastEventId=", false],
  ] as const) {
    test(`a client that missed events gets exactly those, in order, then live events (${how})`, async () => {
      const h = await start();
      const first = await stream(h, "?topic=news");
      await publishMany(h, "news", 1, 5);
      await first.event(5);
      const lastSeen = first.events.at(-1)!.id!;
      first.close();
      await publishMany(h, "news", 6, 12);
      await h.hub.publishToTopic("other", { event: "notification", data: "not yours" });

      const back = asHeader
        ? await stream(h, "?topic=news", undefined, { "last-event-id": lastSeen })
        : await stream(h, `?topic=news&lastEventId=${lastSeen}`);
      await back.event(7);
      expect(back.events.map((e) => e.data)).toEqual(["e6", "e7", "e8", "e9", "e10", "e11", "e12"]);
      expect(back.events.map((e) => e.id)).toEqual([6, 7, 8, 9, 10, 11, 12].map(await idsOf(h)));
      expect(back.pageEvents).toEqual([]);
      await publishMany(h, "news", 13, 13);
      expect((await back.event(8)).data).toBe("e13");
      expect(h.hub.stats().replayed).toBe(7);
    });
  }

  test("events published while a long replay is read arrive after it, none twice, none missing", async () => {
    const h = await start({ maxBuffer: 64 * 1024 * 1024, replayMaxAnonymous: 10_000 });
    await publishMany(h, "busy", 1, 1200);
    const back = await stream(h, "?topic=busy", undefined, { "last-event-id": (await idsOf(h))(0) });
    // Publish while the replay is under way (it reads 500 events at a time).
    const live = publishMany(h, "busy", 1201, 1300);
    await live;
    await back.event(1300, 10_000);
    const ids = back.events.map((e) => seq(e.id));
    expect(ids).toEqual(Array.from({ length: 1300 }, (_, i) => i + 1));
  });

  test("an id the log no longer holds gets a snapshot and a history-cut notice instead", async () => {
    const h = await start({ logMaxEvents: 5 });
    await publishMany(h, "t", 1, 20);
    await h.hub.log.prune();
    const id = await idsOf(h);
    const back = await stream(h, "?topic=t", undefined, { "last-event-id": id(3) });
    await back.until(() => back.pageEvents.length >= 2, "snapshot and notice");
    const [snapshot, cut] = back.pageEvents;
    expect(snapshot!.event).toBe("snapshot");
    expect(snapshot!.id).toBe(id(20));
    expect(cut!.event).toBe("history-cut");
    expect(cut!.data).toContain("You were away longer than herald keeps history");
    expect(back.events).toEqual([]);
  });

  for (const unknown of [
    "999",
    "abc",
    "-1",
    "1e3",
    "18446744073709551617",
    "<epoch>-999",
    "<epoch>-18446744073709551617",
    "<epoch>-01",
    "zzzzzzzz-1",
  ]) {
    test(`an unknown id (${unknown}) gets a snapshot and a history-cut notice`, async () => {
      const h = await start();
      await publishMany(h, "t", 1, 3);
      const id = await idsOf(h);
      const back = await stream(h, "?topic=t", undefined, {
        "last-event-id": unknown.replace("<epoch>", await h.hub.log.epoch()),
      });
      await back.until(() => back.pageEvents.length >= 2, "snapshot and notice");
      expect(back.pageEvents.map((e) => e.event)).toEqual(["snapshot", "history-cut"]);
      expect(back.pageEvents[0]!.id).toBe(id(3));
    });
  }
});

describe("snapshot", () => {
  test("a stream without an id starts with the latest notifications of its channels, newest first", async () => {
    const h = await start({ inboxSize: 3 });
    const alice = await signIn(h, "alice");
    await h.hub.publishToUser("alice", { event: "notification", data: "<li>for alice 1</li>" });
    await h.hub.publishToUser("bob", { event: "notification", data: "<li>for bob</li>" });
    await h.hub.publishToTopic("orders", { event: "notification", data: "<li>order</li>" });
    await h.hub.publishToTopic("market", { event: "notification", data: "<li>price</li>" });
    await h.hub.publishToUser("alice", { event: "price", data: "<span>not a notification</span>" });
    await h.hub.publishToEveryone({ event: "notification", data: "<li>all</li>" });
    await h.hub.publishToUser("alice", { event: "notification", data: "<li>for alice 2</li>" });

    const reader = await stream(h, "?topic=orders", alice.cookie);
    await reader.until(() => reader.pageEvents.length >= 1, "the snapshot");
    const snapshot = reader.pageEvents[0]!;
    expect(snapshot.id).toBe((await idsOf(h))(7));
    expect(snapshot.data).toBe(
      '<ul id="notifications" hx-swap-oob="innerHTML"><li>for alice 2</li>\n<li>all</li>\n<li>order</li></ul><span id="unread-count" class="unread-count" hx-swap-oob="true">3</span>',
    );
  });

  test("the page's first paint shows the same items the snapshot brings", async () => {
    const h = await start();
    const alice = await signIn(h, "alice");
    for (const message of ["one", "two <b>three</b>"]) {
      await postForm(h, "/notify", { target: "user:alice", message }, { session: alice });
    }
    const page = await (await fetch(`${h.url}/?topic=orders`, { headers: { cookie: alice.cookie } })).text();
    const painted = /<ul id="notifications"[^>]*>([\s\S]*?)<\/ul>\n/.exec(page)![1]!;
    const reader = await stream(h, "?topic=orders", alice.cookie);
    await reader.until(() => reader.pageEvents.length >= 1, "the snapshot");
    const snapshotItems = /<ul id="notifications" hx-swap-oob="innerHTML">([\s\S]*)<\/ul>/.exec(
      reader.pageEvents[0]!.data,
    )![1]!;
    expect(painted).toBe(snapshotItems);
    expect(painted).toContain("two &lt;b&gt;three&lt;/b&gt;");
    expect(page).toContain('<span id="unread-count" class="unread-count">2</span>');
  });

  test("a reconnect after the snapshot resumes from the snapshot's id", async () => {
    const h = await start();
    await publishMany(h, "t", 1, 2);
    const first = await stream(h, "?topic=t");
    await first.until(() => first.pageEvents.length === 1, "the snapshot");
    first.close();
    await publishMany(h, "t", 3, 4);
    const back = await stream(h, "?topic=t", undefined, { "last-event-id": first.pageEvents[0]!.id! });
    await back.event(2);
    expect(back.events.map((e) => e.data)).toEqual(["e3", "e4"]);
  });
});

describe("acknowledged only when durable", () => {
  test("the publish API answers after the event is in the log", async () => {
    const token = "durable-token-0123456789";
    const h = await start({ publishTokens: [token], eventLog: "sqlite" });
    const res = await fetch(`${h.url}/api/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify([
        { target: "topic:a", message: "x" },
        { target: "topic:b", message: "y" },
      ]),
    });
    const answer = (await res.json()) as Array<{ id: string }>;
    for (const { id } of answer) expect(await h.hub.log.get(seq(id))).toBeDefined();
    expect(await h.hub.log.lastId()).toBe(2);
  });

  test("counts return to zero after streams leave, replayed or not", async () => {
    const h = await start();
    await publishMany(h, "t", 1, 3);
    const readers = [
      await stream(h, "?topic=t"),
      await stream(h, "?topic=t", undefined, { "last-event-id": (await idsOf(h))(1) }),
    ];
    await eventually(() => h.hub.clientCount === 2, "two streams");
    for (const reader of readers) reader.close();
    await eventually(() => h.hub.clientCount === 0, "no streams");
    expect(h.hub.stats().channels).toBe(0);
  });
});
