import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { openStream, postForm, signIn, startTestHerald, type SseReader } from "./helpers.ts";

let herald: Herald;
let alice: string;
let bob: string;
let bobStream: SseReader;

beforeEach(async () => {
  herald = startTestHerald();
  alice = await signIn(herald, "alice");
  bob = await signIn(herald, "bob");
  bobStream = await openStream(herald, "?topic=orders", bob);
});

afterEach(async () => {
  bobStream.close();
  await herald.stop();
});

describe("POST /notify", () => {
  test("sends a rendered notification to the user as event `notification`", async () => {
    const res = await postForm(herald, "/notify", { target: "user:bob", title: "Hello", message: "Lunch at noon?", level: "success" }, { cookie: alice });
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toContain("Sent to 1 connected stream on <code>user:bob</code>.");
    // The form comes back out of band with the message cleared and the target kept.
    expect(body).toContain('hx-swap-oob="true"');
    expect(body).toContain('value="user:bob"');

    const event = await bobStream.event(1);
    expect(event.event).toBe("notification");
    expect(event.data).toStartWith('<li class="notification level-success" data-channel="user:bob">');
    expect(event.data).toContain('<strong class="from">alice</strong>');
    expect(event.data).toContain('<p class="title">Hello</p>');
    expect(event.data).toContain('<p class="message">Lunch at noon?</p>');
  });

  test("user text arrives escaped: <script> becomes &lt;script&gt;", async () => {
    await postForm(herald, "/notify", { target: "topic:orders", title: '"><img src=x onerror=alert(1)>', message: "<script>alert(1)</script>" }, { cookie: alice });
    const { data } = await bobStream.event(1);
    expect(data).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(data).toContain("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
    expect(data).not.toContain("<script>");
    expect(data).not.toContain("<img");
  });

  test("a multi-line message keeps its lines and cannot inject SSE fields", async () => {
    await postForm(herald, "/notify", { target: "user:bob", message: "line one\r\nevent: evil\nid: 666\rdata: x" }, { cookie: alice });
    const event = await bobStream.event(1);
    expect(event.event).toBe("notification");
    expect(event.id).toBeUndefined();
    expect(event.data).toContain('<p class="message">line one\nevent: evil\nid: 666\ndata: x</p>');
    expect(bobStream.events).toHaveLength(1);
  });

  test("the delivered count says how many streams got it", async () => {
    const second = await openStream(herald, "", bob);
    const anonymous = await openStream(herald, "?topic=orders");
    const everyone = await postForm(herald, "/notify", { target: "everyone", message: "all" }, { cookie: alice });
    expect(await everyone.text()).toContain("Sent to 3 connected streams");
    const topic = await postForm(herald, "/notify", { target: "topic:orders", message: "o" }, { cookie: alice });
    expect(await topic.text()).toContain("Sent to 2 connected streams");
    const nobody = await postForm(herald, "/notify", { target: "user:carol", message: "hi" }, { cookie: alice });
    expect(await nobody.text()).toContain("Sent to 0 connected streams on <code>user:carol</code>");
    second.close();
    anonymous.close();
  });

  test("a plain form post is answered with 303 back to the page", async () => {
    const res = await postForm(herald, "/notify", { target: "user:bob", message: "no js" }, { cookie: alice, htmx: false });
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

  const bad: Array<[string, Record<string, string>, string]> = [
    ["an unknown target", { target: "room:1", message: "x" }, "Unknown target &quot;room:1&quot;"],
    ["an empty target", { target: "", message: "x" }, "Choose a target"],
    ["a bad topic name", { target: "topic:Bad Name", message: "x" }, "is not a valid topic name"],
    ["a bad user", { target: "user:<b>", message: "x" }, "&quot;&lt;b&gt;&quot; is not a valid user"],
    ["an empty message", { target: "everyone", message: "   " }, "The message is empty"],
    ["an over-long message", { target: "everyone", message: "x".repeat(1001) }, "The message is 1001 characters long; the most is 1000."],
    ["an over-long title", { target: "everyone", message: "x", title: "t".repeat(101) }, "The title is 101 characters long; the most is 100."],
    ["an unknown level", { target: "everyone", message: "x", level: "<panic>" }, "Unknown level &quot;&lt;panic&gt;&quot;"],
  ];
  for (const [what, fields, message] of bad) {
    test(`${what}: 400 that says so, and other streams keep receiving`, async () => {
      const res = await postForm(herald, "/notify", fields, { cookie: alice });
      expect(res.status).toBe(400);
      expect(res.headers.get("content-type")).toStartWith("text/html");
      const body = await res.text();
      expect(body).toStartWith('<span class="error" role="alert" data-status="400">');
      expect(body).toContain(message);
      const page = await postForm(herald, "/notify", fields, { cookie: alice, htmx: false });
      expect(page.status).toBe(400);
      expect(await page.text()).toContain("<h1>Error 400</h1>");

      await postForm(herald, "/notify", { target: "topic:orders", message: "after" }, { cookie: alice });
      expect((await bobStream.event(1)).data).toContain("after");
      expect(bobStream.events).toHaveLength(1);
    });
  }

  test("a message of exactly 1000 characters, counted as a person counts them, is accepted", async () => {
    const res = await postForm(herald, "/notify", { target: "user:bob", message: "👋".repeat(1000) }, { cookie: alice });
    expect(res.status).toBe(200);
    expect((await bobStream.event(1)).data).toContain("👋".repeat(1000));
  });

  test("a malformed body is a 400 and a body that is not a form is a 415", async () => {
    const malformed = await fetch(`${herald.url}/notify`, {
      method: "POST",
      headers: { cookie: alice, "hx-request": "true", "content-type": "multipart/form-data; boundary=zzz" },
      body: "--zzz\r\nnot a part header\r\n\r\nbroken",
    });
    expect(malformed.status).toBe(400);
    expect(await malformed.text()).toContain("The form data could not be read");
    const json = await fetch(`${herald.url}/notify`, {
      method: "POST",
      headers: { cookie: alice, "hx-request": "true", "content-type": "application/json" },
      body: JSON.stringify({ target: "everyone", message: "x" }),
    });
    expect(json.status).toBe(415);
    expect(await json.text()).toContain("not application/json");
    expect(herald.hub.stats().published).toBe(0);
  });
});
