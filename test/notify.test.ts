import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { idsOf, openStream, postForm, signIn, startTestHerald, type Session, type SseReader } from "./helpers.ts";
import { notificationItem } from "../views/notification.ts";

let herald: Herald;
let alice: Session;
let bob: Session;
let bobStream: SseReader;

beforeEach(async () => {
  herald = startTestHerald({ groups: { admins: ["alice"] } });
  alice = await signIn(herald, "alice");
  bob = await signIn(herald, "bob");
  bobStream = await openStream(herald, "?topic=orders", bob.cookie);
});

afterEach(async () => {
  bobStream.close();
  await herald.stop();
});

describe("POST /notify", () => {
  test("sends a rendered notification to the user as event `notification`", async () => {
    const res = await postForm(
      herald,
      "/notify",
      { target: "user:bob", title: "Hello", message: "Lunch at noon?", level: "success" },
      { session: alice },
    );
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toContain("Sent to 1 connected stream on <code>user:bob</code>.");
    // The form comes back out of band with the message cleared and the target kept.
    expect(body).toContain('hx-swap-oob="true"');
    expect(body).toContain('value="user:bob"');

    const event = await bobStream.event(1);
    expect(event.event).toBe("notification");
    expect(event.data).toStartWith('<li id="n-1" class="notification level-success unread" data-channel="user:bob">');
    expect(event.data).toContain('<strong class="from">alice</strong>');
    expect(event.data).toContain('<p class="title">Hello</p>');
    expect(event.data).toContain('<p class="message">Lunch at noon?</p>');
  });

  test("user text arrives escaped: <script> becomes &lt;script&gt;", async () => {
    await postForm(
      herald,
      "/notify",
      { target: "topic:orders", title: '"><img src=x onerror=alert(1)>', message: "<script>alert(1)</script>" },
      { session: alice },
    );
    const { data } = await bobStream.event(1);
    expect(data).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(data).toContain("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
    expect(data).not.toContain("<script>");
    expect(data).not.toContain("<img");
  });

  test("a multi-line message keeps its lines and cannot inject SSE fields", async () => {
    await postForm(
      herald,
      "/notify",
      { target: "user:bob", message: "line one\r\nevent: evil\nid: 666\rdata: x" },
      { session: alice },
    );
    const event = await bobStream.event(1);
    expect(event.event).toBe("notification");
    expect(event.id).toBe((await idsOf(herald))(1));
    expect(event.data).toContain('<p class="message">line one\nevent: evil\nid: 666\ndata: x</p>');
    expect(bobStream.events).toHaveLength(1);
  });

  test("the delivered count says how many streams got it", async () => {
    const second = await openStream(herald, "", bob.cookie);
    const anonymous = await openStream(herald, "?topic=orders");
    const everyone = await postForm(herald, "/notify", { target: "everyone", message: "all" }, { session: alice });
    expect(await everyone.text()).toContain("Sent to 3 connected streams");
    const topic = await postForm(herald, "/notify", { target: "topic:orders", message: "o" }, { session: alice });
    expect(await topic.text()).toContain("Sent to 2 connected streams");
    const nobody = await postForm(herald, "/notify", { target: "user:carol", message: "hi" }, { session: alice });
    expect(await nobody.text()).toContain("Sent to 0 connected streams on <code>user:carol</code>");
    second.close();
    anonymous.close();
  });

  test("a plain form post is answered with 303 back to the page", async () => {
    const res = await postForm(
      herald,
      "/notify",
      { target: "user:bob", message: "no js" },
      { session: alice, htmx: false },
    );
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/");
    expect((await bobStream.event(1)).data).toContain("no js");
  });

  test("anonymous: 401 with a sign-in prompt, and nothing is sent", async () => {
    const res = await postForm(herald, "/notify", { target: "user:bob", message: "x" });
    expect(res.status).toBe(401);
    const body = await res.text();
    expect(body).toContain("Sign in to send notifications.");
    expect(body).toContain('<a href="/">Sign in</a>');
    const page = await postForm(herald, "/notify", { target: "user:bob", message: "x" }, { htmx: false });
    expect(page.status).toBe(401);
    expect(await page.text()).toContain("<h1>Error 401</h1>");
    expect(herald.hub.stats().published).toBe(0);
  });

  const bad: Array<[string, Record<string, string>, number, string]> = [
    ["an unknown target", { target: "room:1", message: "x" }, 400, "Unknown target &quot;room:1&quot;"],
    ["an empty target", { target: "", message: "x" }, 400, "Choose a target"],
    ["a bad topic name", { target: "topic:Bad Name", message: "x" }, 400, "is not a valid topic name"],
    ["a bad user", { target: "user:<b>", message: "x" }, 400, "&quot;&lt;b&gt;&quot; is not a valid user"],
    ["a bad group", { target: "group:A B", message: "x" }, 400, "&quot;A B&quot; is not a valid group name"],
    ["an empty message", { target: "user:bob", message: "   " }, 400, "The message is empty"],
    [
      "an over-long message",
      { target: "user:bob", message: "x".repeat(1001) },
      413,
      "The message is 1001 characters long; the most is 1000.",
    ],
    [
      "an over-long title",
      { target: "user:bob", message: "x", title: "t".repeat(101) },
      413,
      "The title is 101 characters long; the most is 100.",
    ],
    [
      "an unknown level",
      { target: "user:bob", message: "x", level: "<panic>" },
      400,
      "Unknown level &quot;&lt;panic&gt;&quot;",
    ],
  ];
  for (const [what, fields, status, message] of bad) {
    test(`${what}: ${status} that says so, and other streams keep receiving`, async () => {
      const res = await postForm(herald, "/notify", fields, { session: alice });
      expect(res.status).toBe(status);
      expect(res.headers.get("content-type")).toStartWith("text/html");
      const body = await res.text();
      expect(body).toStartWith(`<span class="error" role="alert" data-status="${status}">`);
      expect(body).toContain(message);
      const page = await postForm(herald, "/notify", fields, { session: alice, htmx: false });
      expect(page.status).toBe(status);
      expect(await page.text()).toContain(`<h1>Error ${status}</h1>`);

      await postForm(herald, "/notify", { target: "topic:orders", message: "after" }, { session: alice });
      expect((await bobStream.event(1)).data).toContain("after");
      expect(bobStream.events).toHaveLength(1);
    });
  }

  test("a message of exactly 1000 characters, counted as a person counts them, is accepted", async () => {
    const res = await postForm(
      herald,
      "/notify",
      { target: "user:bob", message: "👋".repeat(1000) },
      { session: alice },
    );
    expect(res.status).toBe(200);
    expect((await bobStream.event(1)).data).toContain("👋".repeat(1000));
  });

  test("a malformed body is a 400 and a body that is not a form is a 415", async () => {
    const malformed = await fetch(`${herald.url}/notify`, {
      method: "POST",
      headers: {
        cookie: alice.cookie,
        "x-csrf-token": alice.csrf,
        "hx-request": "true",
        "content-type": "multipart/form-data; boundary=zzz",
      },
      body: "--zzz\r\nnot a part header\r\n\r\nbroken",
    });
    expect(malformed.status).toBe(400);
    expect(await malformed.text()).toContain("The form data could not be read");
    const json = await fetch(`${herald.url}/notify`, {
      method: "POST",
      headers: {
        cookie: alice.cookie,
        "x-csrf-token": alice.csrf,
        "hx-request": "true",
        "content-type": "application/json",
      },
      body: JSON.stringify({ target: "everyone", message: "x" }),
    });
    expect(json.status).toBe(415);
    expect(await json.text()).toContain("not application/json");
    expect(herald.hub.stats().published).toBe(0);
  });
});

describe("the notification fragment", () => {
  test("shows each notification's own time, also when times alternate (the last one rendered is reused only for the same millisecond)", () => {
    const at = (sentAt: number) =>
      notificationItem({ id: 1, message: "m", title: "", level: "info", channel: "topic:t", from: null, sentAt }).value;
    const first = Date.UTC(2026, 10, 23, 12, 3, 4, 5);
    const second = Date.UTC(2026, 10, 23, 18, 30, 0, 0);
    for (const [sentAt, iso] of [
      [first, "2026-11-23T12:03:04.005Z"],
      [second, "2026-11-23T18:30:00.000Z"],
      [first, "2026-11-23T12:03:04.005Z"],
      [first, "2026-11-23T12:03:04.005Z"],
    ] as const) {
      expect(at(sentAt)).toContain(`<time datetime="${iso}" title="${iso}">${iso.slice(11, 19)} UTC</time>`);
    }
  });
});
