import { afterEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import type { ClientFigures } from "../src/server/monitor.ts";
import { eventually, openStream, signIn, startTestHerald, type SseReader } from "./helpers.ts";

const TOKEN = "clients-token-0123456789";
let herald: Herald;
const readers: SseReader[] = [];

afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  await herald.stop();
});

type Clients = ClientFigures;

describe("GET /api/clients", () => {
  test("matches the streams actually open, for an admin or a token, with filters", async () => {
    herald = startTestHerald({ groups: { admins: ["root"] }, publishTokens: [TOKEN] });
    const root = await signIn(herald, "root");
    const alice = await signIn(herald, "alice");
    readers.push(
      await openStream(herald, "?topic=orders", alice.cookie),
      await openStream(herald, "?topic=orders,market", alice.cookie),
      await openStream(herald, "?topic=market"),
    );
    await eventually(() => herald.hub.clientCount === 3, "three streams");
    await herald.hub.publishToTopic("orders", { event: "notification", data: "x" });
    await readers[0]!.event(1);

    const asAdmin = (await (
      await fetch(`${herald.url}/api/clients`, { headers: { cookie: root.cookie } })
    ).json()) as Clients;
    expect(asAdmin).toMatchObject({
      clients: 3,
      users: { alice: 2 },
      topics: { orders: 2, market: 2 },
      events_sent: 2,
      dropped: { slow: 0, stale: 0 },
    });
    expect(asAdmin.last_event_at).not.toBeNull();
    expect(asAdmin.streams).toHaveLength(3);

    const byToken = await fetch(`${herald.url}/api/clients?topic=market`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(((await byToken.json()) as Clients).clients).toBe(2);
    const byUser = (await (
      await fetch(`${herald.url}/api/clients?user=Alice`, { headers: { cookie: root.cookie } })
    ).json()) as Clients;
    expect(byUser.clients).toBe(2);
    expect(byUser.streams.every((s) => s.user === "alice")).toBe(true);

    // One stream leaves: the figures follow.
    readers.pop()!.close();
    await eventually(() => herald.hub.clientCount === 2, "two streams");
    expect(
      ((await (await fetch(`${herald.url}/api/clients`, { headers: { cookie: root.cookie } })).json()) as Clients)
        .topics,
    ).toEqual({ orders: 2, market: 1 });
  });

  test("refuses anyone else, clearly", async () => {
    herald = startTestHerald({ publishTokens: [TOKEN] });
    const alice = await signIn(herald, "alice");
    const anonymous = await fetch(`${herald.url}/api/clients`);
    expect(anonymous.status).toBe(401);
    const notAdmin = await fetch(`${herald.url}/api/clients`, { headers: { cookie: alice.cookie } });
    expect(notAdmin.status).toBe(403);
    expect(((await notAdmin.json()) as { error: string }).error).toBe(
      "Only members of admins may see who is connected.",
    );
    const badToken = await fetch(`${herald.url}/api/clients`, {
      headers: { authorization: "Bearer wrong-token-0123456789" },
    });
    expect(badToken.status).toBe(401);
    const badFilter = await fetch(`${herald.url}/api/clients?topic=Bad%20Topic`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(badFilter.status).toBe(400);
  });
});

describe("GET /monitor", () => {
  test("admins see the figures, and their stream brings them up to date", async () => {
    herald = startTestHerald({ groups: { admins: ["root"] }, monitorMs: 50 });
    const root = await signIn(herald, "root");
    const page = await (await fetch(`${herald.url}/monitor`, { headers: { cookie: root.cookie } })).text();
    expect(page).toContain('<dd id="monitor-clients">0</dd>');
    expect(page).toContain('sse-swap="monitor"');
    expect(page).toContain('<a href="/monitor">Monitor</a>');

    const adminStream = await openStream(herald, "", root.cookie);
    readers.push(adminStream, await openStream(herald, "?topic=orders"));
    await adminStream.until(
      () =>
        adminStream.pageEvents.some((e) => e.event === "monitor" && e.data.includes('<dd id="monitor-clients">2</dd>')),
      "a monitor update",
    );
    const update = adminStream.pageEvents.findLast((e) => e.event === "monitor")!;
    expect(update.data).toContain("<code>topic:orders</code> <strong>1</strong>");
    expect(update.data).toContain("<code>user:root</code> <strong>1</strong>");
  });

  test("anonymous: 401; signed in but not an admin: 403; no Monitor link for them", async () => {
    herald = startTestHerald({ groups: { admins: ["root"] } });
    expect((await fetch(`${herald.url}/monitor`)).status).toBe(401);
    const alice = await signIn(herald, "alice");
    const res = await fetch(`${herald.url}/monitor`, { headers: { cookie: alice.cookie } });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("Only members of admins may see the monitor.");
    const home = await (await fetch(`${herald.url}/`, { headers: { cookie: alice.cookie } })).text();
    expect(home).not.toContain('href="/monitor"');
  });
});
