import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { eventually, idsOf, openStream, signIn, startTestHerald, type SseReader } from "./helpers.ts";

const TOKEN = "publisher-token-0123456789";
const OTHER = "second-token-abcdefghijkl";

let herald: Herald;
let orders: SseReader;
let bob: SseReader;
/** Event ids of the herald's epoch. */
let id: (n: number) => string;

function publish(
  body: unknown,
  { token = TOKEN, type = "application/json" }: { token?: string | null; type?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = { "content-type": type };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  return fetch(`${herald.url}/api/publish`, {
    method: "POST",
    headers,
    body: typeof body === "string" || body instanceof URLSearchParams ? body : JSON.stringify(body),
  });
}

beforeEach(async () => {
  herald = startTestHerald({ publishTokens: [TOKEN, OTHER], groups: { ops: ["bob"] } });
  id = await idsOf(herald);
  orders = await openStream(herald, "?topic=orders");
  bob = await openStream(herald, "", (await signIn(herald, "bob")).cookie);
  await eventually(() => herald.hub.clientCount === 2, "two streams");
});

afterEach(async () => {
  orders.close();
  bob.close();
  await herald.stop();
});

describe("POST /api/publish", () => {
  test("a message is rendered, escaped, and answered with {id, delivered}", async () => {
    const res = await publish({
      target: "topic:orders",
      message: "<b>Order 17</b> shipped",
      title: "Orders",
      level: "success",
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: id(1), delivered: 1 });
    const event = await orders.event(1);
    expect(event).toMatchObject({ event: "notification", id: id(1) });
    expect(event.data).toContain('<li id="n-1" class="notification level-success unread" data-channel="topic:orders">');
    expect(event.data).toContain("&lt;b&gt;Order 17&lt;/b&gt; shipped");
    expect(event.data).toContain('<p class="title">Orders</p>');
  });

  test("html is sent as the token holder wrote it, under the event name given", async () => {
    const res = await publish({
      target: "user:bob",
      event: "price-tick",
      html: '<span id="price" hx-swap-oob="true">42.10</span>',
    });
    expect(await res.json()).toEqual({ id: id(1), delivered: 1 });
    expect(await bob.event(1)).toEqual({
      event: "price-tick",
      data: '<span id="price" hx-swap-oob="true">42.10</span>',
      id: id(1),
    });
  });

  test("targets: one event to several channels, once per stream", async () => {
    const res = await publish({ targets: ["topic:orders", "user:bob", "everyone"], message: "all of you" });
    expect(await res.json()).toEqual({ id: id(1), delivered: 2 });
    expect((await orders.event(1)).data).toContain("all of you");
    expect((await bob.event(1)).data).toContain("all of you");
    expect((await orders.event(1)).data).toContain('data-channel="topic:orders, user:bob, everyone"');
  });

  test("a batch publishes each event in order and answers a list", async () => {
    const res = await publish({
      events: [
        { target: "topic:orders", message: "first" },
        { target: "group:ops", html: "<p>ops only</p>", event: "ops" },
        { target: "topic:orders", message: "third" },
      ],
    });
    expect(await res.json()).toEqual([
      { id: id(1), delivered: 1 },
      { id: id(2), delivered: 1 },
      { id: id(3), delivered: 1 },
    ]);
    await orders.event(2);
    expect(orders.events.map((e) => e.id)).toEqual([id(1), id(3)]);
    expect(await bob.event(1)).toEqual({ event: "ops", data: "<p>ops only</p>", id: id(2) });
    const array = await publish([{ target: "user:bob", message: "a" }]);
    expect(await array.json()).toEqual([{ id: id(4), delivered: 1 }]);
  });

  test("a form body works for a single event, with target repeated for several", async () => {
    const form = new URLSearchParams([
      ["target", "topic:orders"],
      ["target", "user:bob"],
      ["message", "from a form"],
      ["level", "warning"],
    ]);
    const res = await publish(form, { type: "application/x-www-form-urlencoded" });
    expect(await res.json()).toEqual({ id: id(1), delivered: 2 });
    expect((await bob.event(1)).data).toContain("level-warning");
  });

  test("a token may publish to everyone, groups and private topics", async () => {
    await herald.stop();
    herald = startTestHerald({ publishTokens: [TOKEN], privateTopics: ["audit*"] });
    for (const target of ["everyone", "group:admins", "topic:audit-log"]) {
      const res = await publish({ target, message: "x" });
      expect(res.status).toBe(200);
    }
  });

  const refusals: Array<[string, unknown, number, string, { token?: string | null; type?: string }?]> = [
    [
      "no token",
      { target: "everyone", message: "x" },
      401,
      "Send a publish token as Authorization: Bearer <token>.",
      { token: null },
    ],
    [
      "a wrong token",
      { target: "everyone", message: "x" },
      401,
      "That publish token is not valid.",
      { token: "not-the-token-0123456789" },
    ],
    ["a text body", "target=everyone", 415, "Send application/json or a form, not text/plain.", { type: "text/plain" }],
    ["malformed JSON", "{target:", 400, "The body is not valid JSON (in UTF-8)."],
    ["JSON of the wrong shape", "42", 400, "An event must be a JSON object."],
    ["a list where an event goes", { events: [[1, 2]] }, 400, "events[0]: An event must be a JSON object."],
    ["events that is not a list", { events: "x" }, 400, "events must be a list of events."],
    ["an empty batch", [], 400, "The batch is empty"],
    ["no target", { message: "x" }, 400, "Give a target (or targets)"],
    ["a target that is not a string", { target: 7, message: "x" }, 400, "Each target must be a string"],
    ["targets that is not a list", { targets: "topic:a", message: "x" }, 400, "targets must be a list of channels."],
    ["an unknown target", { target: "room:1", message: "x" }, 400, 'Unknown target "room:1"'],
    [
      "a bad event name",
      { target: "everyone", event: "Bad Name", message: "x" },
      400,
      "event must be a name: a letter, then letters, digits",
    ],
    [
      "an event name with a line break",
      { target: "everyone", event: "x\ndata: y", message: "x" },
      400,
      "event must be a name: a letter, then letters, digits",
    ],
    [
      "both message and html",
      { target: "everyone", message: "x", html: "<p>x</p>" },
      400,
      "Give one of message, html or data, not several.",
    ],
    ["neither message nor html", { target: "everyone" }, 400, "Give a message (or html, or data) to send."],
    ["both data and html", { target: "everyone", data: 1, html: "<p>x</p>" }, 400, "Give one of message, html or data"],
    [
      "an unknown field",
      { target: "everyone", message: "x", prority: "high" },
      400,
      'Unknown field "prority": an event takes target, targets, event, message',
    ],
    ["too much data", { target: "everyone", data: "x".repeat(16 * 1024) }, 413, "data is 16386 bytes as JSON"],
    ["an event name starting with a digit", { target: "everyone", event: "1x", data: 1 }, 400, "event must be a name"],
    ["empty html", { target: "everyone", html: " " }, 400, "html must be a non-empty string of markup."],
    ["a message of the wrong type", { target: "everyone", message: { x: 1 } }, 400, "The message is empty"],
    [
      "an over-long message",
      { target: "everyone", message: "x".repeat(1001) },
      413,
      "The message is 1001 characters long",
    ],
    [
      "too much html",
      { target: "everyone", html: "x".repeat(16 * 1024 + 1) },
      413,
      "html is 16385 bytes; the most is 16384.",
    ],
    [
      "too many targets",
      { targets: Array.from({ length: 101 }, (_, i) => `topic:t${i}`), message: "x" },
      413,
      "at most 100 targets",
    ],
    [
      "too many events",
      Array.from({ length: 101 }, () => ({ target: "everyone", message: "x" })),
      413,
      "at most 100 events; this one has 101",
    ],
    [
      "one bad event in a batch",
      [
        { target: "topic:orders", message: "ok" },
        { target: "topic:orders", level: "loud", message: "x" },
      ],
      400,
      'events[1]: Unknown level "loud"',
    ],
  ];
  for (const [what, body, status, message, options] of refusals) {
    test(`${what}: ${status} with a JSON message, nothing published, streams unharmed`, async () => {
      const res = await publish(body, options);
      expect(res.status).toBe(status);
      expect(res.headers.get("content-type")).toStartWith("application/json");
      const answer = (await res.json()) as { error: string; status: number };
      expect(answer.status).toBe(status);
      expect(answer.error).toContain(message);
      if (status === 401) expect(res.headers.get("www-authenticate")).toStartWith("Bearer");
      expect(herald.hub.stats().published).toBe(0);

      expect(await (await publish({ target: "topic:orders", message: "after" })).json()).toEqual({
        id: id(1),
        delivered: 1,
      });
      expect((await orders.event(1)).data).toContain("after");
    });
  }

  test("a body that is not UTF-8 is refused with 400; the next body's text arrives whole", async () => {
    // A cut-off multi-byte sequence, then bytes no UTF-8 text has: one decoder serves every request, so a
    // bad body must leave nothing behind for the next one.
    const bad = Buffer.concat([Buffer.from('{"target":"topic:orders","message":"caf'), Buffer.from([0xc3])]);
    for (const body of [bad, Buffer.from([0xff, 0xfe, 0x7b, 0x7d])]) {
      const res = await fetch(`${herald.url}/api/publish`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
        body,
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toBe("The body is not valid JSON (in UTF-8).");
    }
    expect((await publish({ target: "topic:orders", message: "café ünïcode ✓" })).status).toBe(200);
    expect((await orders.event(1)).data).toContain("café ünïcode ✓");
  });

  test("a body larger than the limit is refused with 413 before it is read", async () => {
    const res = await publish({ target: "everyone", html: "x".repeat(300 * 1024) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toMatch(
      /^The request body is \d+ bytes; the most this server takes is 262144 bytes\.$/,
    );
  });

  test("a chunked body without a declared length is cut off at the limit with 413", async () => {
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 8) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await fetch(`${herald.url}/api/publish`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body,
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: string }).error).toBe(
      "The request body is more than 262144 bytes; the most this server takes is 262144 bytes.",
    );
    expect(herald.hub.stats().published).toBe(0);
  });

  test("with no tokens configured the API is off, and says so", async () => {
    await herald.stop();
    herald = startTestHerald();
    const res = await publish({ target: "everyone", message: "x" });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toBe(
      "The publish API is off: the server has no HERALD_PUBLISH_TOKENS.",
    );
  });

  test("a session cookie is not a publish token", async () => {
    const { cookie } = await signIn(herald, "bob");
    const res = await fetch(`${herald.url}/api/publish`, {
      method: "POST",
      headers: { cookie, "content-type": "application/json" },
      body: JSON.stringify({ target: "everyone", message: "x" }),
    });
    expect(res.status).toBe(401);
  });
});

describe("JSON data and event names for clients that are not htmx", () => {
  test("data is sent as compact JSON text; without an event name it is an unnamed message", async () => {
    const body = { target: "topic:orders", data: { order: 17, items: ["kb", "mouse"], note: "line one\nline two" } };
    expect((await publish(body)).status).toBe(200);
    const unnamed = await orders.event(1);
    expect(unnamed.event).toBe("message");
    expect(JSON.parse(unnamed.data)).toEqual(body.data);
    expect(unnamed.data).toBe(JSON.stringify(body.data));
    // The frame has no event line: EventSource.onmessage receives it.
    expect(orders.raw).toContain(`id: ${unnamed.id}\ndata: {"order":17`);
    expect(orders.raw).not.toContain("event: message");
  });

  test("camelCase and dotted names are taken, and a named data event keeps its name", async () => {
    for (const event of ["stockUpdate", "order.shipped", "chat:typing", "a_b-c"]) {
      expect((await publish({ target: "topic:orders", event, data: [1, 2] })).status).toBe(200);
    }
    await orders.event(4);
    expect(orders.events.map((e) => [e.event, e.data])).toEqual([
      ["stockUpdate", "[1,2]"],
      ["order.shipped", "[1,2]"],
      ["chat:typing", "[1,2]"],
      ["a_b-c", "[1,2]"],
    ]);
  });

  test("reserved names stay refused for data events too", async () => {
    const res = await publish({ target: "topic:orders", event: "snapshot", data: 1 });
    expect(res.status).toBe(400);
    expect(herald.hub.stats().published).toBe(0);
  });
});

describe("Idempotency-Key", () => {
  test("a repeat answers with the first publish's ids and publishes nothing", async () => {
    const send = () => publish({ target: "topic:orders", message: "once" }, {});
    const first = await fetch(`${herald.url}/api/publish`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${TOKEN}`,
        "content-type": "application/json",
        "idempotency-key": "order-17-shipped",
      },
      body: JSON.stringify({ target: "topic:orders", message: "once" }),
    });
    expect(first.status).toBe(200);
    const firstBody = await first.json();
    const again = await fetch(`${herald.url}/api/publish`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${TOKEN}`,
        "content-type": "application/json",
        "idempotency-key": "order-17-shipped",
      },
      body: JSON.stringify({ target: "topic:orders", message: "once" }),
    });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await again.json()).toEqual(firstBody);
    // The field works as the header does.
    const field = await publish({ target: "topic:orders", message: "once", idempotency_key: "order-17-shipped" });
    expect(await field.json()).toEqual(firstBody);
    expect(herald.hub.stats().published).toBe(1);
    // Without a key, the same body publishes again.
    expect((await send()).status).toBe(200);
    await orders.event(2);
    expect(orders.events.map((e) => e.id)).toEqual([id(1), id(2)]);
  });

  test("keys are per caller: another token's same key publishes", async () => {
    const body = { target: "topic:orders", message: "x", idempotency_key: "k1" };
    const mine = (await (await publish(body)).json()) as { id: string };
    const theirs = (await (await publish(body, { token: OTHER })).json()) as { id: string };
    expect(theirs.id).not.toBe(mine.id);
    expect(herald.hub.stats().published).toBe(2);
  });

  test("a bad key is a 400 and nothing is published", async () => {
    for (const key of ["", "has space", "x".repeat(256), 42]) {
      const res = await publish({ target: "topic:orders", message: "x", idempotency_key: key });
      expect(res.status).toBe(400);
    }
    expect(herald.hub.stats().published).toBe(0);
  });
});

test("an Idempotency-Key holds across a restart of a herald on sqlite", async () => {
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dataDir = mkdtempSync(join(tmpdir(), "herald-idem-"));
  try {
    const send = (url: string) =>
      fetch(`${url}/api/publish`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${TOKEN}`,
          "content-type": "application/json",
          "idempotency-key": "retry-me",
        },
        body: JSON.stringify({ target: "everyone", message: "once" }),
      }).then((res) => res.json());
    const first = startTestHerald({ publishTokens: [TOKEN], eventLog: "sqlite", dataDir });
    const answer = await send(first.url);
    await first.stop();
    const second = startTestHerald({ publishTokens: [TOKEN], eventLog: "sqlite", dataDir });
    try {
      expect(await send(second.url)).toEqual(answer);
      expect(second.hub.stats().published).toBe(0);
    } finally {
      await second.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
