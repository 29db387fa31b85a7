import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { openStream, postForm, signIn, startTestHerald, type Session, type SseReader } from "./helpers.ts";

let herald: Herald;
let alice: Session;
let bob: Session;

beforeEach(async () => {
  herald = startTestHerald({ eventLog: "sqlite", groups: { admins: ["alice"], ops: ["bob"] } });
  alice = await signIn(herald, "alice");
  bob = await signIn(herald, "bob");
});

afterEach(async () => {
  await herald.stop();
});

async function send(target: string, message: string): Promise<void> {
  expect((await postForm(herald, "/notify", { target, message }, { session: alice })).status).toBe(200);
}

function unreadOf(page: string): number {
  return Number(/<span id="unread-count" class="unread-count">(\d+)<\/span>/.exec(page)![1]);
}

async function bobsPage(): Promise<string> {
  return (await fetch(`${herald.url}/`, { headers: { cookie: bob.cookie } })).text();
}

describe("inbox", () => {
  test("notifications sent while bob was offline are waiting when he comes back, unread", async () => {
    await send("user:bob", "while you were out");
    await send("group:ops", "ops meeting");
    await send("everyone", "maintenance");
    await send("user:carol", "not for bob");
    const page = await bobsPage();
    expect(page).toContain("while you were out");
    expect(page).toContain("ops meeting");
    expect(page).toContain("maintenance");
    expect(page).not.toContain("not for bob");
    expect(unreadOf(page)).toBe(3);
    expect(page.match(/class="notification level-info unread"/g)).toHaveLength(3);
  });

  test("a live notification to bob comes with his new unread count", async () => {
    const reader = await openStream(herald, "", bob.cookie);
    await send("user:bob", "one");
    await send("user:bob", "two");
    await reader.until(() => reader.pageEvents.filter((e) => e.event === "unread").length >= 2, "two counts");
    const counts = reader.pageEvents.filter((e) => e.event === "unread").map((e) => e.data);
    expect(counts).toEqual([
      '<span id="unread-count" class="unread-count" hx-swap-oob="true">1</span>',
      '<span id="unread-count" class="unread-count" hx-swap-oob="true">2</span>',
    ]);
    reader.close();
  });

  test("marking one read (htmx) answers the count and the item as read, and it stays read", async () => {
    await send("user:bob", "first");
    await send("user:bob", "second");
    const res = await postForm(herald, "/notifications/read", { id: "1" }, { session: bob });
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toStartWith('<span id="unread-count" class="unread-count">1</span>');
    expect(body).toContain('<li hx-swap-oob="true" id="n-1" class="notification level-info read"');
    expect(body).not.toContain("Mark read");
    const page = await bobsPage();
    expect(unreadOf(page)).toBe(1);
    expect(page).toContain('id="n-1" class="notification level-info read"');
    expect(page).toContain('id="n-2" class="notification level-info unread"');
    // Read state is bob's own.
    await send("user:alice", "x");
    const alicePage = await (await fetch(`${herald.url}/`, { headers: { cookie: alice.cookie } })).text();
    expect(unreadOf(alicePage)).toBe(1);
  });

  test("marking all read, from a plain form, goes back to the page with nothing unread", async () => {
    for (const m of ["a", "b", "c"]) await send("user:bob", m);
    const res = await postForm(herald, "/notifications/read", { all: "1" }, { session: bob, htmx: false });
    expect(res.status).toBe(303);
    const page = await bobsPage();
    expect(unreadOf(page)).toBe(0);
    expect(page).not.toContain("notification level-info unread");
    await send("user:bob", "d");
    expect(unreadOf(await bobsPage())).toBe(1);
  });

  test("marking all read through htmx re-renders the page's list as read", async () => {
    await send("user:bob", "a");
    const res = await postForm(
      herald,
      "/notifications/read",
      { all: "1" },
      { session: bob, headers: { "hx-current-url": `${herald.url}/?topic=orders` } },
    );
    const body = await res.text();
    expect(body).toStartWith(
      '<span id="unread-count" class="unread-count">0</span><ul id="notifications" hx-swap-oob="innerHTML">',
    );
    expect(body).toContain('class="notification level-info read"');
  });

  test("anonymous streams that start at the same point on the same channels share one read of the log; others read their own", async () => {
    await herald.hub.publishToTopic("news", { event: "notification", data: "<li>one</li>" });
    const log = herald.hub.log;
    const latest = log.latest.bind(log);
    let reads = 0;
    // Reads of the list; a signed-in stream also looks for an unread urgent banner.
    log.latest = (...args) => {
      if (args[1] === "notification") reads++;
      return latest(...args);
    };
    const readers: SseReader[] = [];
    const snapshotOf = async (query: string, cookie?: string) => {
      const reader = await openStream(herald, query, cookie);
      readers.push(reader);
      await reader.until(() => reader.pageEvents.length >= 1, "the snapshot");
      return reader.pageEvents[0]!.data;
    };
    try {
      const first = await Promise.all([1, 2, 3].map(() => snapshotOf("?topic=news")));
      for (const snapshot of first) expect(snapshot).toContain("<li>one</li>");
      expect(reads).toBe(1);
      // Another topic reads again, and so does a stream after a new event.
      expect(await snapshotOf("?topic=other")).not.toContain("<li>one</li>");
      expect(reads).toBe(2);
      await herald.hub.publishToTopic("news", { event: "notification", data: "<li>two</li>" });
      const later = await snapshotOf("?topic=news");
      expect(later).toContain("<li>two</li>");
      expect(later).toContain("<li>one</li>");
      expect(reads).toBe(3);
      // A signed-in user's list is their own (read marks): never shared.
      await snapshotOf("?topic=news", bob.cookie);
      await snapshotOf("?topic=news", bob.cookie);
      expect(reads).toBe(5);
    } finally {
      for (const reader of readers) reader.close();
    }
  });

  test("the snapshot after a reconnect shows read items as read", async () => {
    await send("user:bob", "a");
    await send("user:bob", "b");
    await postForm(herald, "/notifications/read", { id: "2" }, { session: bob });
    const reader = await openStream(herald, "", bob.cookie);
    await reader.until(() => reader.pageEvents.length >= 1, "the snapshot");
    const snapshot = reader.pageEvents[0]!.data;
    expect(snapshot).toContain('id="n-2" class="notification level-info read"');
    expect(snapshot).toContain('id="n-1" class="notification level-info unread"');
    expect(snapshot).toContain('<span id="unread-count" class="unread-count" hx-swap-oob="true">1</span>');
    reader.close();
  });

  const refusals: Array<[string, Record<string, string>, number, string]> = [
    ["no id", {}, 400, "Say which notification to mark read (id), or all."],
    ["an id that is not a number", { id: "<b>1</b>" }, 400, "Say which notification"],
    ["an unknown id", { id: "999" }, 404, "There is no notification 999; it may be older than herald keeps."],
  ];
  for (const [what, fields, status, message] of refusals) {
    test(`${what}: ${status} that says so`, async () => {
      await send("user:bob", "x");
      const res = await postForm(herald, "/notifications/read", fields, { session: bob });
      expect(res.status).toBe(status);
      expect(await res.text()).toContain(message);
      expect(unreadOf(await bobsPage())).toBe(1);
    });
  }

  test("anonymous: 401; without the CSRF token: 403", async () => {
    const anonymous = await postForm(herald, "/notifications/read", { all: "1" });
    expect(anonymous.status).toBe(401);
    const forged = await postForm(herald, "/notifications/read", { all: "1", _csrf: "x" }, { session: bob });
    expect(forged.status).toBe(403);
  });
});

describe("unread counts reach everyone a notification reaches, whoever publishes it", () => {
  test("a broadcast to everyone and to a group updates each connected member's count, once per turn", async () => {
    const bobs = await openStream(herald, "", bob.cookie);
    const alices = await openStream(herald, "", alice.cookie);
    const counts = (reader: SseReader) =>
      reader.pageEvents.filter((e) => e.event === "unread").map((e) => />(\d+)</.exec(e.data)?.[1]);
    await send("everyone", "to all");
    await bobs.until(() => counts(bobs).length >= 1, "bob's count after the broadcast");
    await alices.until(() => counts(alices).length >= 1, "alice's count after the broadcast");
    expect(counts(bobs)).toEqual(["1"]);
    // bob is in ops: a group notification reaches his count too; alice is not, hers stays.
    await send("group:ops", "to ops");
    await bobs.until(() => counts(bobs).length >= 2, "bob's count after the group message");
    expect(counts(bobs)).toEqual(["1", "2"]);
    // Three notifications in one turn: one count, the last.
    await Promise.all(
      [1, 2, 3].map((i) => herald.hub.publishToUser("bob", { event: "notification", data: `<li>${i}</li>` })),
    );
    await bobs.until(() => counts(bobs).includes("5"), "bob's count after three at once");
    expect(counts(bobs)).toEqual(["1", "2", "5"]);
    expect(counts(alices)).toEqual(["1"]);
    bobs.close();
    alices.close();
  });

  test("a notification published straight through the hub (as a library would) updates the count", async () => {
    const bobs = await openStream(herald, "", bob.cookie);
    await herald.hub.publishToUser("bob", { event: "notification", data: "<li>from code</li>" });
    await bobs.until(() => bobs.pageEvents.some((e) => e.event === "unread"), "the count");
    expect(bobs.pageEvents.find((e) => e.event === "unread")!.data).toContain(">1</span>");
    bobs.close();
  });
});

test("a group whose name is also an Object property (constructor) is just a group", async () => {
  await herald.stop();
  herald = startTestHerald({ eventLog: "sqlite", groups: { constructor: ["bob"] } });
  const carol = await signIn(herald, "carol");
  bob = await signIn(herald, "bob");
  const bobs = await openStream(herald, "", bob.cookie);
  const res = await fetch(`${herald.url}/api/publish`, { method: "POST" });
  expect(res.status).toBe(401);
  await herald.hub.publish("group:constructor", { event: "notification", data: "<li>to the group</li>" });
  await herald.hub.publish("group:toString", { event: "notification", data: "<li>to nobody</li>" });
  await bobs.until(() => bobs.pageEvents.some((e) => e.event === "unread"), "bob's count");
  expect(bobs.events.map((e) => e.data)).toEqual(["<li>to the group</li>"]);
  expect(
    (await postForm(herald, "/notify", { target: "user:bob", message: "still fine" }, { session: carol })).status,
  ).toBe(200);
  bobs.close();
});

describe("unread counts after broadcasts", () => {
  test("each broadcast to everyone counts no user again: a connected user's count is counted once", async () => {
    const names = Array.from({ length: 8 }, (_, i) => `user${i}`);
    const readers: SseReader[] = [];
    for (const name of names) readers.push(await openStream(herald, "", (await signIn(herald, name)).cookie));
    const counts = (reader: SseReader) =>
      reader.pageEvents.filter((e) => e.event === "unread").map((e) => />(\d+)</.exec(e.data)?.[1]);
    let queries = 0;
    // Each count reads the user's unread ids from the log.
    const log = herald.ctx.hub.log;
    const ids = log.ids.bind(log);
    log.ids = (...args) => {
      queries++;
      return ids(...args);
    };
    for (let i = 1; i <= 5; i++) {
      await send("everyone", `broadcast ${i}`);
      for (const reader of readers) await reader.until(() => counts(reader).length >= i, `count ${i}`);
    }
    for (const reader of readers) expect(counts(reader)).toEqual(["1", "2", "3", "4", "5"]);
    // Counted once for each user, at the first broadcast; the later ones add to it.
    expect(queries).toBe(names.length);
    // A mark read is counted afresh at the next broadcast.
    const first = await signIn(herald, "user0");
    expect((await postForm(herald, "/notifications/read", { all: "1" }, { session: first })).status).toBe(200);
    await send("everyone", "after the mark");
    await readers[0]!.until(() => counts(readers[0]!).length >= 6, "user0's count after the mark");
    expect(counts(readers[0]!).at(-1)).toBe("1");
    await readers[1]!.until(() => counts(readers[1]!).length >= 6, "user1's count");
    expect(counts(readers[1]!).at(-1)).toBe("6");
    for (const reader of readers) reader.close();
  });

  test("a user who was away while a broadcast went out is counted afresh when back", async () => {
    const counts = (reader: SseReader) =>
      reader.pageEvents.filter((e) => e.event === "unread").map((e) => />(\d+)</.exec(e.data)?.[1]);
    let bobs = await openStream(herald, "", bob.cookie);
    await send("everyone", "one");
    await bobs.until(() => counts(bobs).length >= 1, "bob's first count");
    bobs.close();
    await Bun.sleep(50);
    await send("everyone", "while bob is away");
    bobs = await openStream(herald, "", bob.cookie);
    await send("everyone", "three");
    await bobs.until(() => counts(bobs).length >= 1, "bob's count when back");
    expect(counts(bobs)).toEqual(["3"]);
    bobs.close();
  });
});
