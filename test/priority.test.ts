/**
 * Priority and action links (#19): `priority` low/normal/high/urgent and `url` on notifications
 * from the API and the send form; urgent ones also bring a banner to every live page of their
 * recipients, which "Dismiss" clears and marks read. Fragments are read as a browser parses them
 * (HTMLRewriter), not as strings.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { eventually, openStream, postForm, signIn, startTestHerald, type Session, type SseReader } from "./helpers.ts";

const TOKEN = "publisher-token-0123456789";

let herald: Herald;
const readers: SseReader[] = [];

beforeEach(() => {
  herald = startTestHerald({ publishTokens: [TOKEN], groups: { admins: ["root"] } });
});
afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  await herald.stop();
});

async function stream(query: string, session?: Session): Promise<SseReader> {
  const reader = await openStream(herald, query, session?.cookie);
  readers.push(reader);
  return reader;
}

function publish(body: unknown): Promise<Response> {
  return fetch(`${herald.url}/api/publish`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
  });
}

interface Element {
  tag: string;
  attrs: Record<string, string>;
  text: string;
}

/** An attribute's value as the DOM has it (HTMLRewriter gives the source text). */
function decode(value: string): string {
  return value.replace(/&(amp|lt|gt|quot|#39);/g, (_, name: string) =>
    name === "amp" ? "&" : name === "lt" ? "<" : name === "gt" ? ">" : name === "quot" ? '"' : "'",
  );
}

/** The elements of `markup` matching `selector`, with their attributes and text, as parsed. */
async function select(markup: string, selector: string): Promise<Element[]> {
  const found: Element[] = [];
  await new HTMLRewriter()
    .on(selector, {
      element(el) {
        const element: Element = {
          tag: el.tagName,
          attrs: Object.fromEntries([...el.attributes].map(([k, v]) => [k, decode(v)])),
          text: "",
        };
        found.push(element);
      },
      text(chunk) {
        const last = found.at(-1);
        if (last) last.text += chunk.text;
      },
    })
    .transform(new Response(markup))
    .text();
  return found;
}

describe("priority and action links from the API", () => {
  test("an urgent notification with a link: the item says so and links; a banner goes to every page's stream", async () => {
    const bob = await signIn(herald, "bob");
    const inbox = await stream("", bob);
    const inventory = await stream("?page=inventory", bob);
    const alice = await stream("", await signIn(herald, "alice"));
    await eventually(() => herald.hub.clientCount === 3, "three streams");

    const res = await publish({
      target: "user:bob",
      message: "Disk almost full",
      priority: "urgent",
      url: "/orders?sort=new&x=<y>",
    });
    expect(res.status).toBe(200);
    await inbox.until(() => inbox.events.some((e) => e.event === "notification"), "the notification");
    const item = inbox.events.find((e) => e.event === "notification")!.data;
    const [li] = await select(item, "li");
    expect(li!.attrs.class).toContain("priority-urgent");
    expect((await select(item, ".priority"))[0]!.text).toBe("urgent");
    const [link] = await select(item, "a");
    expect(link!.attrs.href).toBe("/orders?sort=new&x=<y>");
    expect(item).toContain('href="/orders?sort=new&amp;x=&lt;y&gt;"');

    // The banner reaches the inbox page and a page without the inbox list alike.
    for (const reader of [inbox, inventory]) {
      await reader.until(() => reader.events.some((e) => e.event === "urgent"), "the urgent banner");
      const banner = reader.events.find((e) => e.event === "urgent")!.data;
      const [notice] = await select(banner, ".urgent-notice");
      expect(notice!.text).toContain("Disk almost full");
      expect((await select(banner, "button.dismiss"))[0]!.attrs["hx-post"]).toBe("/notifications/dismiss");
    }
    await Bun.sleep(50);
    expect(alice.events).toEqual([]);
  });

  test("low and high render their class; normal renders as before; no banner for them", async () => {
    const bob = await signIn(herald, "bob");
    const inbox = await stream("", bob);
    for (const priority of ["low", "high", "normal"]) {
      expect((await publish({ target: "user:bob", message: priority, priority })).status).toBe(200);
    }
    await inbox.event(3);
    const classes = await Promise.all(inbox.events.map(async (e) => (await select(e.data, "li"))[0]!.attrs.class));
    expect(classes[0]).toContain("priority-low");
    expect(classes[1]).toContain("priority-high");
    expect(classes[2]).not.toContain("priority-");
    await Bun.sleep(50);
    expect(inbox.events.map((e) => e.event)).toEqual(["notification", "notification", "notification"]);
  });

  test.each([
    ["javascript:alert(1)"],
    ["JaVaScRiPt:alert(1)"],
    ["data:text/html,<script>alert(1)</script>"],
    ["//evil.example/x"],
    ["/\\evil.example/x"],
    ["ftp://example.com/x"],
    [" /leading-space"],
    ["/with space"],
    ["https://exa mple.com"],
    ["vbscript:msgbox"],
    ["relative/path"],
    [42],
  ])("url %p is refused with a 400 naming what a link may be", async (url) => {
    const res = await publish({ target: "topic:x", message: "m", url });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toContain("url must be a path on this site");
  });

  test("an absolute https link is kept, and opens without a referrer", async () => {
    const reader = await stream("?topic=x");
    expect((await publish({ target: "topic:x", message: "m", url: "https://example.com/a?b=1" })).status).toBe(200);
    const [link] = await select((await reader.event(1)).data, "a");
    expect(link!.attrs).toMatchObject({ href: "https://example.com/a?b=1", rel: "noopener noreferrer" });
  });

  test("a bad priority, or priority with html or data, is a 400 that says why", async () => {
    const bad = await publish({ target: "topic:x", message: "m", priority: "critical" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toBe(
      'Unknown priority "critical": use low, normal, high, urgent.',
    );
    const withHtml = await publish({ target: "topic:x", html: "<p>x</p>", priority: "urgent" });
    expect(withHtml.status).toBe(400);
    expect(((await withHtml.json()) as { error: string }).error).toContain("priority go with a message");
    const withData = await publish({ target: "topic:x", data: { a: 1 }, url: "/x" });
    expect(withData.status).toBe(400);
  });

  test("urgent is a reserved event name: only herald sends banners", async () => {
    const res = await publish({ target: "topic:x", event: "urgent", html: "<p>fake</p>" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toContain("reserved");
  });
});

describe("urgent notifications from the send form, and Dismiss", () => {
  async function sendUrgent(from: Session, target: string, message: string): Promise<void> {
    const res = await postForm(
      herald,
      "/notify",
      { target, message, priority: "urgent", url: "/live" },
      { session: from },
    );
    expect(res.status).toBe(200);
  }

  test("a page opened later shows the banner until its recipient dismisses it; Dismiss marks it read", async () => {
    const root = await signIn(herald, "root");
    const bob = await signIn(herald, "bob");
    await sendUrgent(root, "user:bob", "Server on fire");

    const first = await stream("?page=inventory", bob);
    await first.until(() => first.events.some((e) => e.event === "urgent"), "the banner on a fresh stream");
    const banner = first.events.find((e) => e.event === "urgent")!.data;
    const id = (await select(banner, ".urgent-notice"))[0]!.attrs["data-for"]!;

    // Someone else cannot dismiss it (or learn it exists): the same 404 as an unknown id.
    const alice = await signIn(herald, "alice");
    const stranger = await postForm(herald, "/notifications/dismiss", { id }, { session: alice });
    expect(stranger.status).toBe(404);
    expect(await stranger.text()).toBe(
      `<span class="error" role="alert" data-status="404">There is no notification ${id}; it may be older than herald keeps.</span>`,
    );

    const dismissed = await postForm(herald, "/notifications/dismiss", { id }, { session: bob });
    expect(dismissed.status).toBe(200);
    expect(await dismissed.text()).toBe("");
    // Bob's streams hear the new count.
    await first.until(() => first.pageEvents.some((e) => e.event === "unread"), "the unread count");
    expect((await select(first.pageEvents.find((e) => e.event === "unread")!.data, "#unread-count"))[0]!.text).toBe(
      "0",
    );

    const later = await stream("?page=inventory", bob);
    await Bun.sleep(100);
    expect(later.events.filter((e) => e.event === "urgent")).toEqual([]);
  });

  test("anonymous visitors may empty a banner (they keep no marks); a bad id is a 400", async () => {
    const anonymous = await fetch(`${herald.url}/`);
    const cookie = anonymous.headers.getSetCookie()[0]!.split(";")[0]!;
    const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(await anonymous.text())![1]!;
    const session = { cookie, csrf };
    expect((await postForm(herald, "/notifications/dismiss", { id: "1" }, { session })).status).toBe(200);
    const bad = await postForm(herald, "/notifications/dismiss", { id: "0x1" }, { session });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("Say which notification to dismiss");
    // Without the CSRF token: refused.
    expect((await postForm(herald, "/notifications/dismiss", { id: "1", _csrf: "" }, { session })).status).toBe(403);
  });

  test("the send form offers the priorities and a link field", async () => {
    const bob = await signIn(herald, "bob");
    const page = await (await fetch(`${herald.url}/`, { headers: { cookie: bob.cookie } })).text();
    const options = await select(page, "#send-form select[name=priority] option");
    expect(options.map((o) => o.text)).toEqual(["low", "normal", "high", "urgent"]);
    expect(options.find((o) => o.text === "normal")!.attrs).toHaveProperty("selected");
    expect(await select(page, "#send-form input[name=url]")).toHaveLength(1);
    // Every live page has the banner's place, announced as an alert.
    const [place] = await select(page, "#urgent-banner");
    expect(place!.attrs).toMatchObject({ role: "alert", "sse-swap": "urgent", "hx-swap": "innerHTML" });
  });
});
