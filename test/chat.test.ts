/**
 * The demo chat (`/chat/<room>`) on a real server with real streams: messages, the member list
 * from presence, the typing indicator, read receipts, history on reconnect, and what an attacker
 * cannot do (post as someone else, read a private room, name a user to the typing or receipt
 * endpoints).
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { installChat } from "../src/chat/index.ts";
import {
  openStream,
  postForm,
  seq,
  signIn,
  startTestHerald,
  visit,
  type SseReader,
  type TestConfig,
} from "./helpers.ts";

let herald: Herald | undefined;
const readers: SseReader[] = [];

afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  await herald?.stop();
  herald = undefined;
});

function start(overrides: TestConfig = {}): Herald {
  herald = startTestHerald(overrides);
  return herald;
}

/** A herald without the demo, with the chat installed by hand (a short typing indicator). */
function startWithChat(typingMs: number): Herald {
  herald = startTestHerald({ demo: false, presenceTopics: ["chat.*"] });
  installChat(herald.app, { typingMs });
  return herald;
}

/** A chat page's stream on `room`, as `cookie`. */
async function roomStream(room: string, cookie?: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const reader = await openStream(herald!, `?page=chat&topic=chat.${room}`, cookie, headers);
  readers.push(reader);
  await reader.until(() => reader.pageEvents.some((e) => e.event === "snapshot"), "the snapshot");
  return reader;
}

const named = (reader: SseReader, event: string) => reader.events.filter((e) => e.event === event);
const last = (reader: SseReader, event: string) => named(reader, event).at(-1)?.data;

/** The text of the element a fragment is (tags dropped, entities kept as sent). */
function textOf(fragment: string | undefined): string {
  return (fragment ?? "").replace(/<[^>]*>/g, "").trim();
}

describe("messages", () => {
  test("a message reaches the room's readers, escaped, written by the session's user whatever the form says", async () => {
    start();
    const alice = await signIn(herald!, "alice");
    const bob = await signIn(herald!, "bob");
    const bobs = await roomStream("lobby", bob.cookie);
    const res = await postForm(
      herald!,
      "/chat/lobby",
      { text: "<img src=x onerror=alert(1)> hi", author: "bob", user: "bob", name: "bob" },
      { session: alice },
    );
    expect(res.status).toBe(200);
    // The answer is a fresh, empty form for the sender.
    expect(await res.text()).toContain('<form id="chat-form"');
    await bobs.until(() => named(bobs, "chat-message").length === 1, "alice's message");
    const message = named(bobs, "chat-message")[0]!;
    expect(message.data).toContain('data-author="alice"');
    expect(message.data).toContain('<strong class="author">alice</strong>');
    expect(message.data).toContain("&lt;img src=x onerror=alert(1)&gt; hi");
    expect(message.data).not.toContain("<img");
    expect(message.id).toBeDefined();
  });

  test("room names are lower-cased and checked", async () => {
    start();
    const alice = await signIn(herald!, "alice");
    const readers = await roomStream("lobby", alice.cookie);
    const page = await (await fetch(`${herald!.url}/chat/LoBBy`, { headers: { cookie: alice.cookie } })).text();
    expect(page).toContain('sse-connect="/sse?page=chat&amp;topic=chat.lobby"');
    expect((await postForm(herald!, "/chat/LOBBY", { text: "shout" }, { session: alice })).status).toBe(200);
    await readers.until(() => named(readers, "chat-message").length === 1, "the message in chat.lobby");
    const bad = await fetch(`${herald!.url}/chat/no%20spaces`, { headers: { cookie: alice.cookie } });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("is not a room name");
    const go = await fetch(`${herald!.url}/chat?room=Kitchen`, { redirect: "manual" });
    expect(go.status).toBe(303);
    expect(go.headers.get("location")).toBe("/chat/kitchen");
  });

  test("an empty message is a 400 and one too long a 413, each a fragment that says so; nothing is sent", async () => {
    start();
    const alice = await signIn(herald!, "alice");
    const empty = await postForm(herald!, "/chat/lobby", { text: "   " }, { session: alice });
    expect(empty.status).toBe(400);
    expect(await empty.text()).toContain("Write something before sending.");
    const long = await postForm(herald!, "/chat/lobby", { text: "é".repeat(501) }, { session: alice });
    expect(long.status).toBe(413);
    const body = await long.text();
    expect(body).toContain("501 characters long; the most a message may have is 500");
    expect(body).not.toContain("<html");
    expect((await postForm(herald!, "/chat/lobby", { text: "é".repeat(500) }, { session: alice })).status).toBe(200);
    expect(herald!.hub.stats().published).toBe(1);
  });

  test("anonymous visitors may read a public room but not write, type or mark it seen", async () => {
    start();
    const anonymous = await visit(herald!);
    const page = await fetch(`${herald!.url}/chat/lobby`, { headers: { cookie: anonymous.cookie } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("to write in this room; you can read it without.");
    expect(html).not.toContain('id="chat-form"');
    await roomStream("lobby", anonymous.cookie);
    for (const path of ["/chat/lobby", "/chat/lobby/typing", "/chat/lobby/seen"]) {
      const res = await postForm(herald!, path, { text: "hi" }, { session: anonymous });
      expect(res.status).toBe(401);
    }
    expect(herald!.hub.stats().published).toBe(0);
  });

  test("posts without the CSRF token, or from another site, are refused", async () => {
    start();
    const alice = await signIn(herald!, "alice");
    for (const path of ["/chat/lobby", "/chat/lobby/typing", "/chat/lobby/seen"]) {
      const noToken = await postForm(herald!, path, { text: "hi", _csrf: "" }, { session: alice });
      expect(noToken.status).toBe(403);
      const crossSite = await postForm(
        herald!,
        path,
        { text: "hi" },
        { session: alice, headers: { "sec-fetch-site": "cross-site" } },
      );
      expect(crossSite.status).toBe(403);
    }
    expect(herald!.hub.stats().published).toBe(0);
  });

  test("only herald sends the chat's events: the publish API refuses their names", async () => {
    const token = "chat-token-0123456789";
    start({ publishTokens: [token] });
    for (const event of ["chat-message", "chat-members", "chat-typing", "chat-seen"]) {
      const res = await fetch(`${herald!.url}/api/publish`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ target: "topic:chat.lobby", event, html: '<li data-author="bob">forged</li>' }),
      });
      expect(res.status).toBe(400);
    }
  });
});

describe("who is here", () => {
  test("the member list comes from presence: each reader gets it as people come and go", async () => {
    start();
    const alice = await signIn(herald!, "alice");
    const bob = await signIn(herald!, "bob");
    const alices = await roomStream("lobby", alice.cookie);
    const bobs = await roomStream("lobby", bob.cookie);
    const both = '<li id="member-alice" class="member">alice</li><li id="member-bob" class="member">bob</li>';
    await alices.until(() => (last(alices, "chat-members") ?? "").includes(both), "bob in alice's member list");
    const presence = await fetch(`${herald!.url}/api/presence?topic=chat.lobby`, { headers: { cookie: bob.cookie } });
    expect(((await presence.json()) as { users: string[] }).users).toEqual(["alice", "bob"]);
    bobs.close();
    await alices.until(
      () =>
        last(alices, "chat-members") ===
        '<ul id="chat-members" class="members" hx-swap-oob="true"><li id="member-alice" class="member">alice</li></ul>',
      "bob gone from the list",
    );
  });
});

describe("the typing indicator", () => {
  test("the others see who is typing; the typist never sees themselves; it clears by itself", async () => {
    startWithChat(300);
    const alice = await signIn(herald!, "alice");
    const bob = await signIn(herald!, "bob");
    const alices = await roomStream("lobby", alice.cookie);
    const bobs = await roomStream("lobby", bob.cookie);
    // A user named in the form is ignored: the typist is the session's.
    expect((await postForm(herald!, "/chat/lobby/typing", { user: "bob" }, { session: alice })).status).toBe(204);
    await bobs.until(() => textOf(last(bobs, "chat-typing")) === "alice is typing…", "alice typing, at bob's");
    await alices.until(() => named(alices, "chat-typing").length === 1, "alice's own typing line");
    expect(textOf(last(alices, "chat-typing"))).toBe("");
    await bobs.until(() => textOf(last(bobs, "chat-typing")) === "", "the indicator cleared");
    for (const event of named(alices, "chat-typing")) expect(event.data).not.toContain("alice");
  });

  test("two typists each see only the other, a third sees both, and sending a message clears its writer", async () => {
    startWithChat(60_000);
    const [alice, bob, carol] = await Promise.all(["alice", "bob", "carol"].map((name) => signIn(herald!, name)));
    const alices = await roomStream("lobby", alice!.cookie);
    const bobs = await roomStream("lobby", bob!.cookie);
    const carols = await roomStream("lobby", carol!.cookie);
    await postForm(herald!, "/chat/lobby/typing", {}, { session: alice });
    await postForm(herald!, "/chat/lobby/typing", {}, { session: bob });
    await carols.until(() => textOf(last(carols, "chat-typing")) === "alice and bob are typing…", "both, at carol's");
    await alices.until(() => textOf(last(alices, "chat-typing")) === "bob is typing…", "bob, at alice's");
    await bobs.until(() => textOf(last(bobs, "chat-typing")) === "alice is typing…", "alice, at bob's");
    await postForm(herald!, "/chat/lobby", { text: "done" }, { session: alice });
    await carols.until(() => textOf(last(carols, "chat-typing")) === "bob is typing…", "alice cleared at carol's");
    // A page opened now shows who is typing in its snapshot, without the reader.
    const late = await roomStream("lobby", alice!.cookie);
    expect(late.pageEvents.find((e) => e.event === "snapshot")!.data).toContain(">bob is typing…</p>");
  });
});

describe("read receipts", () => {
  test("'Seen by' names who has seen the last message, never its author, and starts afresh with each message", async () => {
    start();
    const [alice, bob, carol] = await Promise.all(["alice", "bob", "carol"].map((name) => signIn(herald!, name)));
    const alices = await roomStream("lobby", alice!.cookie);
    await postForm(herald!, "/chat/lobby", { text: "first" }, { session: alice });
    await alices.until(() => named(alices, "chat-message").length === 1, "the message");
    const id = seq(named(alices, "chat-message")[0]!.id);
    // A user named in the form is ignored: carol marks what she has seen, not bob.
    expect(
      (await postForm(herald!, "/chat/lobby/seen", { upTo: String(id), user: "bob" }, { session: carol })).status,
    ).toBe(204);
    await alices.until(() => textOf(last(alices, "chat-seen")) === "Seen by carol", "seen by carol");
    // Without an id: up to the newest. Seeing it again changes nothing.
    expect((await postForm(herald!, "/chat/lobby/seen", {}, { session: bob })).status).toBe(204);
    await alices.until(() => textOf(last(alices, "chat-seen")) === "Seen by bob and carol", "seen by both");
    const receipts = named(alices, "chat-seen").length;
    await postForm(herald!, "/chat/lobby/seen", { upTo: String(id) }, { session: bob });
    await postForm(herald!, "/chat/lobby/seen", {}, { session: alice });
    expect(named(alices, "chat-seen").length).toBe(receipts);
    await postForm(herald!, "/chat/lobby", { text: "second" }, { session: bob });
    await alices.until(() => named(alices, "chat-message").length === 2, "the second message");
    await alices.until(() => textOf(last(alices, "chat-seen")) === "", "the receipts emptied for the new message");
    // An id that is not a number is refused; one before every message of the room marks nothing.
    expect((await postForm(herald!, "/chat/lobby/seen", { upTo: "x" }, { session: carol })).status).toBe(400);
    expect((await postForm(herald!, "/chat/other/seen", { upTo: String(id) }, { session: carol })).status).toBe(204);
    // The snapshot carries the receipts.
    await postForm(herald!, "/chat/lobby/seen", {}, { session: carol });
    const late = await roomStream("lobby", carol!.cookie);
    expect(late.pageEvents.find((e) => e.event === "snapshot")!.data).toContain(">Seen by carol</p>");
  });
});

describe("history", () => {
  test("a reader resuming with Last-Event-ID gets the messages it missed; one starting afresh, the latest in order", async () => {
    start();
    const alice = await signIn(herald!, "alice");
    const bob = await signIn(herald!, "bob");
    const bobs = await roomStream("lobby", bob.cookie);
    await postForm(herald!, "/chat/lobby", { text: "one" }, { session: alice });
    await bobs.until(() => named(bobs, "chat-message").length === 1, "message one");
    const lastSeen = named(bobs, "chat-message")[0]!.id!;
    bobs.close();
    for (const text of ["two", "three"]) await postForm(herald!, "/chat/lobby", { text }, { session: alice });
    const resumed = await openStream(herald!, "?page=chat&topic=chat.lobby", bob.cookie, { "last-event-id": lastSeen });
    readers.push(resumed);
    await resumed.until(() => named(resumed, "chat-message").length === 2, "the two missed messages");
    expect(named(resumed, "chat-message").map((e) => textOf(e.data).split("\n").at(-1))).toEqual(["two", "three"]);
    expect(resumed.pageEvents.some((e) => e.event === "snapshot")).toBe(false);
    const fresh = await roomStream("lobby", bob.cookie);
    const snapshot = fresh.pageEvents.find((e) => e.event === "snapshot")!.data;
    const texts = [...snapshot.matchAll(/<p class="text">([^<]*)<\/p>/g)].map((m) => m[1]);
    expect(texts).toEqual(["one", "two", "three"]);
    // The first paint shows the same.
    const page = await (await fetch(`${herald!.url}/chat/lobby`, { headers: { cookie: bob.cookie } })).text();
    expect([...page.matchAll(/<p class="text">([^<]*)<\/p>/g)].map((m) => m[1])).toEqual(["one", "two", "three"]);
  });
});

describe("a private room", () => {
  test("cannot be read, joined, written in, typed in or marked seen by a non-member", async () => {
    start({ privateTopics: ["chat.staff"], groups: { admins: ["alice"] } });
    const alice = await signIn(herald!, "alice");
    const bob = await signIn(herald!, "bob");
    const anonymous = await visit(herald!);
    const alices = await roomStream("staff", alice.cookie);
    await postForm(herald!, "/chat/staff", { text: "staff only" }, { session: alice });
    await alices.until(() => named(alices, "chat-message").length === 1, "alice's message");
    for (const [who, status] of [
      [bob, 403],
      [anonymous, 401],
    ] as const) {
      const page = await fetch(`${herald!.url}/chat/staff`, { headers: { cookie: who.cookie } });
      expect(page.status).toBe(status);
      expect(await page.text()).not.toContain("staff only");
      const stream = await fetch(`${herald!.url}/sse?page=chat&topic=chat.staff`, { headers: { cookie: who.cookie } });
      expect(stream.status).toBe(status);
      expect(await stream.text()).not.toContain("staff only");
      const resume = await fetch(
        `${herald!.url}/sse?page=chat&topic=chat.staff&lastEventId=${encodeURIComponent(alices.pageEvents[0]!.id!.replace(/-\d+$/, "-0"))}`,
        { headers: { cookie: who.cookie } },
      );
      expect(resume.status).toBe(status);
      const presence = await fetch(`${herald!.url}/api/presence?topic=chat.staff`, { headers: { cookie: who.cookie } });
      expect(presence.status).toBe(status);
      for (const path of ["/chat/staff", "/chat/staff/typing", "/chat/staff/seen"]) {
        expect((await postForm(herald!, path, { text: "let me in" }, { session: who })).status).toBe(status);
      }
    }
    expect(named(alices, "chat-message")).toHaveLength(1);
    expect(named(alices, "chat-typing")).toHaveLength(0);
    expect(named(alices, "chat-seen").map((e) => textOf(e.data))).toEqual([""]);
  });
});

describe("htmx 4", () => {
  test("the page connects with hx-sse, and its stream sends messages out of band into the list", async () => {
    start();
    const alice = await signIn(herald!, "alice");
    const page = await (await fetch(`${herald!.url}/chat/lobby?htmx=4`, { headers: { cookie: alice.cookie } })).text();
    expect(page).toContain('hx-sse:connect="/sse?page=chat&amp;topic=chat.lobby"');
    const stream = await openStream(herald!, "?page=chat&topic=chat.lobby", alice.cookie, { "hx-request": "true" });
    readers.push(stream);
    await postForm(herald!, "/chat/lobby", { text: "four" }, { session: alice });
    await stream.until(() => stream.events.some((e) => e.data.includes("four")), "the message");
    const message = stream.events.find((e) => e.data.includes("four"))!;
    expect(message.event).toBe("message");
    expect(message.data.startsWith('<div hx-swap-oob="beforeend:#chat-messages"><li id="chat-msg-')).toBe(true);
  });
});

test("installing the chat without its rooms' presence is refused with the fix", () => {
  herald = startTestHerald({ demo: false });
  expect(() => installChat(herald!.app)).toThrow("add chat.* to HERALD_PRESENCE_TOPICS");
});
