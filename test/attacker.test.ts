/**
 * herald tried as an attacker would: alice is the victim, bob a second signed-in user, and an
 * anonymous client with no cookie. Each route that takes an id, a channel, a topic, a user, a
 * header or a cookie from the request is tried with alice's, and what bob and the anonymous client
 * see (status, body, stream, page) must hold nothing of hers and change nothing of hers.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Herald } from "../src/app.ts";
import { redisAvailable, startRedis } from "./redis.ts";
import {
  openStream,
  postForm,
  seq,
  signIn,
  startTestHerald,
  visit,
  type Session,
  type SseReader,
  type TestConfig,
} from "./helpers.ts";

const TOKEN = "attacker-suite-token-0123456789";
const SECRET = "attacker-suite-secret-0123456789";
/** What only alice, her group or admins may read. */
const ALICE_SECRET = "alice-private-4711";
const GROUP_SECRET = "ops-private-4712";
const PRIVATE_TOPIC_SECRET = "audit-private-4713";

let herald: Herald;
let alice: Session;
let bob: Session;
const readers: SseReader[] = [];

function boot(overrides: TestConfig = {}): Herald {
  return startTestHerald({
    eventLog: "sqlite",
    secret: SECRET,
    publishTokens: [TOKEN],
    privateTopics: ["audit*"],
    groups: { admins: ["alice"], ops: ["alice"] },
    orderStepMs: 60_000,
    ...overrides,
  });
}

async function publish(target: string, message: string): Promise<number> {
  const res = await fetch(`${herald.url}/api/publish`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ target, message }),
  });
  expect(res.status).toBe(200);
  // The number within the log's epoch: what the page's mark-read button sends.
  return seq(((await res.json()) as { id: string }).id);
}

async function stream(query: string, cookie?: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const reader = await openStream(herald, query, cookie, headers);
  readers.push(reader);
  return reader;
}

function page(path: string, session?: Session): Promise<string> {
  return fetch(`${herald.url}${path}`, { headers: session ? { cookie: session.cookie } : {} }).then((res) =>
    res.text(),
  );
}

function unreadOf(html: string): number {
  return Number(/<span id="unread-count" class="unread-count">(\d+)<\/span>/.exec(html)![1]);
}

const SECRETS = [ALICE_SECRET, GROUP_SECRET, PRIVATE_TOPIC_SECRET];

function expectNoSecret(text: string): void {
  for (const secret of SECRETS) expect(text).not.toContain(secret);
}

let ids: { user: number; group: number; audit: number; order: number };

beforeEach(async () => {
  herald = boot();
  alice = await signIn(herald, "alice");
  bob = await signIn(herald, "bob");
  ids = {
    user: await publish("user:alice", ALICE_SECRET),
    group: await publish("group:ops", GROUP_SECRET),
    audit: await publish("topic:audit", PRIVATE_TOPIC_SECRET),
    order: 0,
  };
});

afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  await herald.stop();
});

describe("POST /notifications/read with someone else's id", () => {
  test("is a 404 exactly like an id that does not exist, renders nothing, and marks nothing", async () => {
    const missing = await postForm(herald, "/notifications/read", { id: "999999" }, { session: bob });
    expect(missing.status).toBe(404);
    const missingBody = await missing.text();
    for (const [what, id] of Object.entries({ user: ids.user, group: ids.group, audit: ids.audit })) {
      for (const htmx of [true, false]) {
        const res = await postForm(herald, "/notifications/read", { id: String(id) }, { session: bob, htmx });
        expect(res.status, `${what} id, htmx ${htmx}`).toBe(404);
        const body = await res.text();
        expectNoSecret(body);
        if (htmx) expect(body.replace(String(id), "N")).toBe(missingBody.replace("999999", "N"));
      }
    }
    // Alice still has all three unread: bob's attempts touched none of her marks.
    expect(unreadOf(await page("/", alice))).toBe(2);
    const aliceStream = await stream("?topic=audit", alice.cookie);
    await aliceStream.until(() => aliceStream.pageEvents.length > 0, "alice's snapshot");
    expect(aliceStream.pageEvents[0]!.data.match(/notification level-info unread/g)).toHaveLength(3);
  });

  test("anonymous is 401 and sees nothing", async () => {
    const anonymous = await visit(herald);
    const res = await postForm(herald, "/notifications/read", { id: String(ids.user) }, { session: anonymous });
    expect(res.status).toBe(401);
    expectNoSecret(await res.text());
  });

  test("the owner, a member of the group and an admin reading a private topic can mark theirs", async () => {
    for (const id of [ids.user, ids.group, ids.audit]) {
      const res = await postForm(herald, "/notifications/read", { id: String(id) }, { session: alice });
      expect(res.status).toBe(200);
      expect(await res.text()).toContain(`id="n-${id}"`);
    }
  });

  test("mark all read touches only bob's own marks", async () => {
    expect(
      (
        await postForm(
          herald,
          "/notifications/read",
          { all: "1" },
          { session: bob, headers: { "hx-current-url": `${herald.url}/?topic=audit` } },
        )
      ).status,
    ).toBe(200);
    expect(unreadOf(await page("/", alice))).toBe(2);
  });
});

describe("every route, tried by bob and by an anonymous client", () => {
  test("pages: no page shows alice's notifications to anyone else", async () => {
    for (const who of [bob, undefined]) {
      for (const path of [
        "/",
        "/?topic=audit",
        "/live",
        "/inventory",
        "/orders",
        "/monitor",
        "/embed/audit",
        "/?user=alice",
        "/?topic=user:alice",
      ]) {
        expectNoSecret(await page(path, who));
      }
    }
  });

  test("GET / and GET /sse with a private topic or the monitor page: 403 for bob, 401 anonymous", async () => {
    expect((await fetch(`${herald.url}/?topic=audit`, { headers: { cookie: bob.cookie } })).status).toBe(403);
    for (const query of ["?topic=audit", "?topic=audit-2", "?page=monitor"]) {
      expect((await fetch(`${herald.url}/sse${query}`, { headers: { cookie: bob.cookie } })).status).toBe(403);
      expect((await fetch(`${herald.url}/sse${query}`)).status).toBe(401);
    }
    expect((await fetch(`${herald.url}/embed/audit`, { headers: { cookie: bob.cookie } })).status).toBe(403);
  });

  test("GET /sse: a resume from 0 replays only the asker's own channels", async () => {
    for (const who of [bob.cookie, undefined]) {
      const reader = await stream("?topic=orders", who, { "last-event-id": "0" });
      await publish("everyone", "marker");
      await reader.until(() => reader.events.some((e) => e.data.includes("marker")), "the marker");
      expectNoSecret(reader.raw);
    }
    const theirs = await stream("?topic=audit", alice.cookie, { "last-event-id": "0" });
    await theirs.until(() => SECRETS.every((secret) => theirs.raw.includes(secret)), "alice's three");
  });

  test("GET /sse: no header, query or cookie puts bob on alice's channels", async () => {
    const tries: Array<[string, Record<string, string>]> = [
      ["?user=alice", {}],
      ["?channel=user:alice&channel=group:ops", {}],
      ["?topic=ops", { "x-user": "alice", "x-forwarded-user": "alice", "x-remote-user": "alice" }],
      ["", { authorization: "Bearer alice" }],
      [
        "",
        {
          cookie: `${bob.cookie}; herald_session=${alice.cookie.split("herald_session=")[1]!.split(";")[0]!.slice(0, 40)}`,
        },
      ],
    ];
    const bobs = [];
    for (const [query, headers] of tries) bobs.push(await stream(query, headers.cookie ?? bob.cookie, headers));
    await publish("user:alice", `${ALICE_SECRET}-live`);
    await publish("group:ops", `${GROUP_SECRET}-live`);
    await publish("everyone", "marker");
    for (const reader of bobs) {
      await reader.until(() => reader.events.some((e) => e.data.includes("marker")), "the marker");
      expectNoSecret(reader.raw);
    }
  });

  test("POST /notify: bob may not send to everyone, a group or a private topic; anonymous not at all", async () => {
    for (const target of ["everyone", "group:ops", "group:admins", "topic:audit"]) {
      expect((await postForm(herald, "/notify", { target, message: "x" }, { session: bob })).status).toBe(403);
    }
    const anonymous = await visit(herald);
    expect(
      (await postForm(herald, "/notify", { target: "user:alice", message: "x" }, { session: anonymous })).status,
    ).toBe(401);
    expect(herald.hub.stats().published).toBe(3);
  });

  test("GET /api/clients and /monitor: bob 403, anonymous 401, a forged bearer 401", async () => {
    for (const path of ["/api/clients", "/api/clients?user=alice", "/monitor"]) {
      expect((await fetch(`${herald.url}${path}`, { headers: { cookie: bob.cookie } })).status).toBe(403);
      expect((await fetch(`${herald.url}${path}`)).status).toBe(401);
    }
    expect((await fetch(`${herald.url}/api/clients`, { headers: { authorization: "Bearer alice" } })).status).toBe(401);
  });

  test("POST /api/publish and /api/inventory: no token, a wrong token or a session cookie is 401", async () => {
    for (const path of ["/api/publish", "/api/inventory/KB-101"]) {
      for (const headers of [
        {},
        { authorization: "Bearer wrong-token-0123456789" },
        { cookie: alice.cookie },
      ] as Record<string, string>[]) {
        const res = await fetch(`${herald.url}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json", ...headers },
          body: '{"target":"everyone","message":"x","quantity":1}',
        });
        expect(res.status).toBe(401);
      }
    }
  });

  test("POST /inventory/:sku/watch changes only the asker's own watch list, whatever the form says", async () => {
    expect((await postForm(herald, "/inventory/KB-101/watch", { watch: "on" }, { session: alice })).status).toBe(200);
    const res = await postForm(
      herald,
      "/inventory/KB-101/watch",
      { watch: "off", user: "alice", userId: "alice" },
      { session: bob },
    );
    expect(res.status).toBe(200);
    expect(herald.shop!.inventory.watchedBy("alice").has("KB-101")).toBe(true);
    const anonymous = await visit(herald);
    expect((await postForm(herald, "/inventory/KB-101/watch", { watch: "off" }, { session: anonymous })).status).toBe(
      401,
    );
  });

  test("orders: bob's page, stream and snapshot never hold alice's order", async () => {
    const placed = await postForm(herald, "/orders", { sku: "KB-101", quantity: "1" }, { session: alice });
    expect(await placed.text()).toContain("Order #1 placed");
    const bobs = await stream("?page=orders", bob.cookie);
    const anyone = await stream("?page=orders");
    await bobs.until(() => bobs.pageEvents.length > 0, "bob's snapshot");
    for (const text of [await page("/orders", bob), bobs.raw, anyone.raw]) expect(text).not.toContain("order-1");
    const alices = await stream("?page=orders", alice.cookie);
    await alices.until(() => alices.pageEvents.length > 0, "alice's snapshot");
    expect(alices.raw).toContain("order-1");
  });

  test("the error path echoes no user text unescaped into HTML", async () => {
    const evil = "<script>alert(1)</script>";
    const paths = [
      `/embed/${encodeURIComponent(evil)}`,
      `/${encodeURIComponent(evil)}`,
      `/?topic=${encodeURIComponent(evil)}`,
      `/?htmx=${encodeURIComponent(evil)}`,
    ];
    for (const path of paths) {
      for (const headers of [{ cookie: bob.cookie }, { cookie: bob.cookie, "hx-request": "true" }] as Record<
        string,
        string
      >[]) {
        const res = await fetch(`${herald.url}${path}`, { headers });
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.headers.get("content-type")).toStartWith("text/html");
        expect(await res.text()).not.toContain(evil);
      }
    }
  });
});

describe("sessions end when they should", () => {
  test("a cookie replayed after POST /logout is anonymous everywhere, at once", async () => {
    const before = await page("/", alice);
    expect(before).toContain("Signed in as <strong>alice</strong>");
    const out = await postForm(herald, "/logout", {}, { session: alice, htmx: false });
    expect(out.status).toBe(303);
    // The attacker kept the cookie and sends it again.
    const after = await page("/", alice);
    expect(after).toContain("Not signed in");
    expectNoSecret(after);
    expect((await postForm(herald, "/notify", { target: "user:bob", message: "x" }, { session: alice })).status).toBe(
      401,
    );
    const replayed = await stream("", alice.cookie, { "last-event-id": "0" });
    await publish("everyone", "marker");
    await replayed.until(() => replayed.events.some((e) => e.data.includes("marker")), "the marker");
    expectNoSecret(replayed.raw);
    expect(herald.hub.isConnected("alice")).toBe(false);
  });

  test("sign-out holds across a restart of a herald on sqlite", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "herald-revoke-"));
    await herald.stop();
    try {
      herald = boot({ dataDir });
      const carol = await signIn(herald, "carol");
      expect((await postForm(herald, "/logout", {}, { session: carol, htmx: false })).status).toBe(303);
      await herald.stop();
      herald = boot({ dataDir });
      expect(await page("/", carol)).toContain("Not signed in");
      expect(await page("/", await signIn(herald, "carol"))).toContain("Signed in as <strong>carol</strong>");
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test.if(redisAvailable())(
    "sign-out on one process holds on another sharing the Redis log, also while Redis is away",
    async () => {
      const redis = await startRedis();
      const processes: Herald[] = [];
      const home = (h: Herald, who: Session) =>
        fetch(`${h.url}/`, { headers: { cookie: who.cookie } }).then((res) => res.text());
      try {
        const [first, second] = [
          boot({ eventLog: "redis", redisUrl: redis.url }),
          boot({ eventLog: "redis", redisUrl: redis.url }),
        ];
        processes.push(first!, second!);
        const carol = await signIn(first!, "carol");
        const dave = await signIn(first!, "dave");
        expect(await home(second!, carol)).toContain("Signed in as <strong>carol</strong>");
        expect((await postForm(first!, "/logout", {}, { session: carol, htmx: false })).status).toBe(303);
        expect(await home(second!, carol)).toContain("Not signed in");
        // A process that has not checked carol's cookie yet learns of her sign-out from its copy of the list.
        const late = boot({ eventLog: "redis", redisUrl: redis.url });
        processes.push(late);
        await Bun.sleep(500);
        // Redis goes away: what was signed out stays signed out, and other sessions keep working.
        await redis.stop();
        expect(await home(late, carol)).toContain("Not signed in");
        expect(await home(second!, carol)).toContain("Not signed in");
        expect(await home(second!, dave)).toContain("Signed in as <strong>dave</strong>");
        // A sign-out during the outage takes effect where it was made at once, and everywhere once Redis is back.
        expect((await postForm(first!, "/logout", {}, { session: dave, htmx: false })).status).toBe(303);
        expect(await home(first!, dave)).toContain("Not signed in");
        await redis.start();
        await eventuallyAsync(
          async () =>
            (await home(first!, dave)).includes("Not signed in") &&
            (await home(second!, dave)).includes("Not signed in"),
          "dave's sign-out everywhere",
        );
        // A third process, started after all this, knows both.
        const third = boot({ eventLog: "redis", redisUrl: redis.url });
        processes.push(third);
        expect(await home(third, carol)).toContain("Not signed in");
        expect(await home(third, dave)).toContain("Not signed in");
      } finally {
        for (const process of processes) await process.stop();
        await redis.destroy();
      }
    },
    // Four processes, and Redis stopped and started again: seconds, more than the default 5.
    20_000,
  );

  test("sign-out ends that session's open streams at once; another sign-in's stream stays", async () => {
    const laptop = await signIn(herald, "alice");
    const phone = await stream("", alice.cookie);
    const other = await stream("", laptop.cookie);
    expect((await postForm(herald, "/logout", {}, { session: alice, htmx: false })).status).toBe(303);
    await phone.ended(3000);
    expect(phone.done).toBe(true);
    await publish("user:alice", "after sign-out");
    await other.until(() => other.events.some((e) => e.data.includes("after sign-out")), "the other sign-in's event");
    expect(other.done).toBe(false);
  });

  test("signing out one browser leaves the user's other sign-ins alone", async () => {
    const laptop = await signIn(herald, "alice");
    expect((await postForm(herald, "/logout", {}, { session: alice, htmx: false })).status).toBe(303);
    expect(await page("/", laptop)).toContain("Signed in as <strong>alice</strong>");
  });

  test("a CSRF token dies with its session, and sign-in sets a new CSRF cookie", async () => {
    const anonymous = await visit(herald);
    const res = await postForm(herald, "/login", { name: "dave" }, { session: anonymous, htmx: false });
    const nonces = res.headers.getSetCookie().filter((c) => c.startsWith("herald_csrf="));
    expect(nonces).toHaveLength(1);
    expect(nonces[0]!.split(";")[0]).not.toBe(anonymous.cookie);
    const dave = await signIn(herald, "dave");
    expect((await postForm(herald, "/logout", {}, { session: dave, htmx: false })).status).toBe(303);
    // Signed in again with the same CSRF cookie: the old session's token is refused.
    const again = await postForm(
      herald,
      "/login",
      { name: "dave" },
      { session: { cookie: dave.cookie, csrf: (await visitWith(dave.cookie)).csrf }, htmx: false },
    );
    expect(again.status).toBe(303);
    const session = again.headers
      .getSetCookie()
      .find((c) => c.startsWith("herald_session="))!
      .split(";")[0]!;
    const csrfCookie = dave.cookie.split("; ").find((c) => c.startsWith("herald_csrf="))!;
    const stale = await postForm(
      herald,
      "/notify",
      { target: "user:bob", message: "x" },
      { session: { cookie: `${csrfCookie}; ${session}`, csrf: dave.csrf } },
    );
    expect(stale.status).toBe(403);
    expect(await stale.text()).toContain("wrong or out of date");
  });

  test("a change of HERALD_GROUPS applies to existing sessions on their next request", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "herald-groups-"));
    await herald.stop();
    try {
      herald = boot({ dataDir });
      const carol = await signIn(herald, "carol");
      expect((await fetch(`${herald.url}/monitor`, { headers: { cookie: carol.cookie } })).status).toBe(403);
      await herald.stop();
      herald = boot({ dataDir, groups: { admins: ["carol"], ops: ["alice"] } });
      expect((await fetch(`${herald.url}/monitor`, { headers: { cookie: carol.cookie } })).status).toBe(200);
      const admin = await signIn(herald, "alice");
      await herald.stop();
      herald = boot({ dataDir, groups: { ops: ["alice"] } });
      expect((await fetch(`${herald.url}/monitor`, { headers: { cookie: admin.cookie } })).status).toBe(403);
      expect((await postForm(herald, "/notify", { target: "everyone", message: "x" }, { session: admin })).status).toBe(
        403,
      );
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

/** Waits until an asynchronous check holds, polling. */
async function eventuallyAsync(check: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

async function visitWith(cookie: string): Promise<{ csrf: string }> {
  const text = await (await fetch(`${herald.url}/`, { headers: { cookie } })).text();
  return { csrf: /<meta name="csrf-token" content="([^"]+)">/.exec(text)![1]! };
}

describe("one answer to 'which channels are this user's'", () => {
  test("the page's unread count, the live count and the stream agree after a group is taken away", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "herald-unread-"));
    await herald.stop();
    try {
      herald = boot({ dataDir, groups: { ops: ["carol"] } });
      const carol = await signIn(herald, "carol");
      await publish("group:ops", "for ops");
      expect(unreadOf(await page("/", carol))).toBe(1);
      await herald.stop();
      // Carol left ops: neither her page nor her live count may count its notifications.
      herald = boot({ dataDir, groups: {} });
      expect(unreadOf(await page("/", carol))).toBe(0);
      const reader = await stream("", carol.cookie);
      await publish("user:carol", "direct");
      await reader.until(() => reader.pageEvents.some((e) => e.event === "unread"), "the live count");
      expect(reader.pageEvents.find((e) => e.event === "unread")!.data).toContain(">1</span>");
      expect(reader.raw).not.toContain("for ops");
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
