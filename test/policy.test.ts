import { afterEach, describe, expect, mock, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import type { Channel } from "../src/core/channel.ts";
import type { HttpError } from "../src/server/errors.ts";
import { Policy, type AuthorizeHook, type Principal } from "../src/server/policy.ts";
import { eventually, openStream, postForm, signIn, startTestHerald } from "./helpers.ts";

const anonymous: Principal = { kind: "anonymous" };
const alice: Principal = { kind: "user", user: { id: "alice", name: "alice", groups: [] } };
const admin: Principal = { kind: "user", user: { id: "root", name: "root", groups: ["admins", "ops"] } };
const token: Principal = { kind: "token", label: "token#1" };

describe("policy defaults", () => {
  const policy = new Policy({ privateTopics: ["private.*", "audit"] });
  const cases: Array<[Principal, "subscribe" | "publish", Channel, boolean]> = [
    [anonymous, "subscribe", "everyone", true],
    [anonymous, "subscribe", "topic:orders", true],
    [anonymous, "subscribe", "topic:private.hr", false],
    [anonymous, "subscribe", "user:alice", false],
    [anonymous, "subscribe", "group:ops", false],
    [anonymous, "publish", "topic:orders", false],
    [alice, "subscribe", "user:alice", true],
    [alice, "subscribe", "user:bob", false],
    [alice, "subscribe", "group:ops", false],
    [alice, "subscribe", "topic:audit", false],
    [alice, "subscribe", "topic:audit2", true],
    [alice, "publish", "user:bob", true],
    [alice, "publish", "topic:orders", true],
    [alice, "publish", "topic:private.x", false],
    [alice, "publish", "everyone", false],
    [alice, "publish", "group:ops", false],
    [admin, "subscribe", "group:ops", true],
    [admin, "subscribe", "topic:private.hr", true],
    [admin, "subscribe", "user:alice", false],
    [admin, "publish", "everyone", true],
    [admin, "publish", "group:anything", true],
    [token, "publish", "everyone", true],
    [token, "publish", "topic:private.x", true],
    [token, "subscribe", "topic:orders", false],
  ];
  for (const [principal, action, channel, allowed] of cases) {
    const who = principal.kind === "user" ? principal.user.id : principal.kind;
    test(`${who} ${allowed ? "may" : "may not"} ${action} ${channel}`, () => {
      expect(policy.allows(principal, action, channel)).toBe(allowed);
    });
  }

  test("HERALD_ANONYMOUS=off closes every channel to anonymous visitors", () => {
    const closed = new Policy({ anonymous: false });
    expect(closed.allows(anonymous, "subscribe", "everyone")).toBe(false);
    expect(closed.allows(anonymous, "subscribe", "topic:orders")).toBe(false);
    expect(closed.allows(alice, "subscribe", "topic:orders")).toBe(true);
  });

  test("check throws 401 for anonymous and 403 for a signed-in user, naming the channel", () => {
    const refused = (fn: () => void) => {
      try {
        fn();
      } catch (error) {
        return error as HttpError;
      }
      throw new Error("did not throw");
    };
    expect(refused(() => policy.check(anonymous, "publish", "topic:a"))).toMatchObject({
      status: 401,
      message: "Sign in to send notifications.",
    });
    expect(refused(() => policy.check(alice, "publish", "everyone"))).toMatchObject({
      status: 403,
      message: "You may not send to everyone.",
    });
    expect(refused(() => policy.check(alice, "subscribe", "topic:audit"))).toMatchObject({
      status: 403,
      message: "You may not follow topic:audit.",
    });
  });
});

describe("the authorize hook", () => {
  let herald: Herald | undefined;
  afterEach(async () => {
    await herald?.stop();
    herald = undefined;
  });

  test("sees every decision with herald's default and has the last word", () => {
    const hook = mock<AuthorizeHook>((principal, _action, channel, byDefault) =>
      channel === "topic:vip" ? principal.kind === "user" : byDefault,
    );
    const policy = new Policy({ authorize: hook });
    expect(policy.allows(anonymous, "subscribe", "topic:vip")).toBe(false);
    expect(policy.allows(alice, "subscribe", "topic:vip")).toBe(true);
    expect(policy.allows(alice, "publish", "everyone")).toBe(false);
    expect(hook).toHaveBeenCalledTimes(3);
    expect(hook.mock.calls[2]).toEqual([alice, "publish", "everyone", false]);
  });

  test("an app's hook governs real streams and sends", async () => {
    // An app where a "support" user may broadcast, and nobody may follow topic:internal.
    herald = startTestHerald(
      {},
      {
        authorize: (principal, action, channel, byDefault) => {
          if (channel === "topic:internal") return false;
          if (action === "publish" && channel === "everyone" && principal.kind === "user")
            return principal.user.id === "support" || byDefault;
          return byDefault;
        },
      },
    );
    const support = await signIn(herald, "support");
    const carol = await signIn(herald, "carol");
    const refused = await fetch(`${herald.url}/sse?topic=internal`, {
      headers: { cookie: carol.cookie, accept: "text/event-stream" },
    });
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("You may not follow topic:internal.");

    const reader = await openStream(herald, "", carol.cookie);
    expect(
      (await postForm(herald, "/notify", { target: "everyone", message: "hello all" }, { session: support })).status,
    ).toBe(200);
    expect((await reader.event(1)).data).toContain("hello all");
    expect(
      (await postForm(herald, "/notify", { target: "everyone", message: "me too" }, { session: carol })).status,
    ).toBe(403);
    reader.close();
  });
});

describe("private channels stay private, by every route", () => {
  let herald: Herald;
  afterEach(async () => {
    await herald.stop();
  });

  test("alice cannot read bob's user channel, a private topic or a group she is not in", async () => {
    herald = startTestHerald({ groups: { ops: ["bob"], admins: ["root"] }, privateTopics: ["secret*"] });
    const alice = await signIn(herald, "alice");
    const bob = await signIn(herald, "bob");
    const root = await signIn(herald, "root");

    // Streams: every way of asking for those channels is refused or ignored.
    for (const query of ["?topic=secret", "?topic=secret-plans", "?topic=orders,secret.x"]) {
      for (const cookie of [alice.cookie, undefined]) {
        const res = await fetch(`${herald.url}/sse${query}`, {
          headers: { accept: "text/event-stream", ...(cookie ? { cookie } : {}) },
        });
        expect([401, 403]).toContain(res.status);
        await res.text();
      }
    }
    for (const query of ["?topic=group:ops", "?topic=user:bob", "?group=ops", "?channel=group:ops", "?user=bob"]) {
      const res = await fetch(`${herald.url}/sse${query}`, {
        headers: { accept: "text/event-stream", cookie: alice.cookie },
      });
      if (res.status === 200) await res.body?.cancel();
      else expect(res.status).toBe(400);
    }
    // The page cannot be made to connect to them either.
    const page = await (await fetch(`${herald.url}/?topic=secret`, { headers: { cookie: alice.cookie } })).text();
    expect(page).toContain("secret");
    expect((await fetch(`${herald.url}/sse?topic=secret`, { headers: { cookie: alice.cookie } })).status).toBe(403);

    const aliceStream = await openStream(herald, "?topic=orders", alice.cookie);
    const bobStream = await openStream(herald, "", bob.cookie);
    const rootStream = await openStream(herald, "?topic=secret", root.cookie);
    await eventually(() => herald.hub.clientCount === 3, "three streams");
    expect(herald.hub.subscriberCount("group:ops")).toBe(1);
    expect(herald.hub.subscriberCount("group:admins")).toBe(1);

    // Sending: alice may not publish to the group or the private topic from the form.
    for (const target of ["group:ops", "topic:secret", "everyone"]) {
      const res = await postForm(herald, "/notify", { target, message: "x" }, { session: alice });
      expect(res.status).toBe(403);
      expect(await res.text()).toContain(`You may not send to ${target}.`);
    }
    // What goes to those channels reaches their members only.
    herald.hub.publish("group:ops", { event: "notification", data: "ops" });
    herald.hub.publish("topic:secret", { event: "notification", data: "secret" });
    herald.hub.publishToUser("bob", { event: "notification", data: "bob" });
    herald.hub.publishToEveryone({ event: "notification", data: "marker" });
    await aliceStream.event(1);
    expect(aliceStream.events.map((e) => e.data)).toEqual(["marker"]);
    await bobStream.event(3);
    expect(bobStream.events.map((e) => e.data)).toEqual(["ops", "bob", "marker"]);
    await rootStream.event(2);
    expect(rootStream.events.map((e) => e.data)).toEqual(["secret", "marker"]);
    for (const reader of [aliceStream, bobStream, rootStream]) reader.close();
  });

  test("an admin sends to a group in one publish", async () => {
    herald = startTestHerald({ groups: { admins: ["root"], ops: ["bob", "carol"] } });
    const root = await signIn(herald, "root");
    const streams = await Promise.all(
      ["bob", "carol", "dave"].map(async (name) => openStream(herald, "", (await signIn(herald, name)).cookie)),
    );
    const res = await postForm(herald, "/notify", { target: "group:ops", message: "standup in 5" }, { session: root });
    expect(await res.text()).toContain("Sent to 2 connected streams on <code>group:ops</code>.");
    expect((await streams[0]!.event(1)).data).toContain("standup in 5");
    expect((await streams[1]!.event(1)).data).toContain("standup in 5");
    expect(streams[2]!.events).toEqual([]);
    for (const reader of streams) reader.close();
  });

  test("HERALD_ANONYMOUS=off: streams need a session, and the page does not connect", async () => {
    herald = startTestHerald({ anonymous: false });
    const res = await fetch(`${herald.url}/sse`, { headers: { accept: "text/event-stream" } });
    expect(res.status).toBe(401);
    expect(await res.text()).toContain("Sign in to open a stream.");
    const page = await (await fetch(`${herald.url}/`)).text();
    expect(page).not.toContain("sse-connect");
    expect(page).toContain("Sign in to see live notifications.");
    const reader = await openStream(herald, "", (await signIn(herald, "alice")).cookie);
    reader.close();
  });
});
