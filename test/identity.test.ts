/**
 * The app tells herald who a request is: a JSON Web Token it signed (cookie or bearer), or its
 * answer to an auth request. What a client sees: which channels its stream is on, what pages
 * say, what the API takes, and that nothing forged, expired or malformed gets anything.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { inAnHour, testSigner, unsignedToken, type SigningAlgorithm, type TestSigner } from "./jwt-sign.ts";
import { openStream, startTestHerald, type SseReader, type TestConfig } from "./helpers.ts";

let herald: Herald | undefined;
const readers: SseReader[] = [];
let authApp: ReturnType<typeof Bun.serve> | undefined;

afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  await herald?.stop();
  herald = undefined;
  authApp?.stop(true);
  authApp = undefined;
});

async function withSigner(alg: SigningAlgorithm, overrides: TestConfig = {}): Promise<TestSigner> {
  const signer = await testSigner(alg);
  herald = startTestHerald({
    jwtSecret: signer.secret,
    jwtPublicKey: signer.publicKeyPem,
    demoLogin: false,
    privateTopics: ["audit*"],
    ...overrides,
  });
  await herald.app.ctx.identity.ready;
  return signer;
}

async function stream(query: string, headers: Record<string, string>): Promise<SseReader> {
  const reader = await openStream(herald!, query, undefined, headers);
  readers.push(reader);
  return reader;
}

/** What a stream receives of one event sent to each of `targets`, by its marker. */
async function reached(reader: SseReader, targets: string[]): Promise<string[]> {
  for (const target of targets)
    await herald!.hub.publish(target as never, { event: "notification", data: `to ${target}` });
  await herald!.hub.publishToEveryone({ event: "notification", data: "to everyone" });
  await reader.until(() => reader.events.some((e) => e.data === "to everyone"), "the marker");
  return reader.events.map((e) => e.data).filter((d) => d !== "to everyone");
}

const ALL = ["user:alice", "user:bob", "group:ops", "group:admins", "topic:audit", "topic:audit-2", "topic:orders"];

describe("identity from a JSON Web Token", () => {
  for (const alg of ["HS256", "RS256", "ES256"] as const) {
    test(`${alg}: user channel, groups and private topics follow the claims, in a cookie or a bearer header`, async () => {
      const signer = await withSigner(alg);
      const token = await signer.sign({
        sub: "alice",
        exp: inAnHour(),
        groups: ["ops"],
        herald: { subscribe: ["topic:audit"] },
      });
      const fromCookie = await stream("?topic=orders", { cookie: `herald_jwt=${token}` });
      const fromBearer = await stream("?topic=orders", { authorization: `Bearer ${token}` });
      for (const reader of [fromCookie, fromBearer]) {
        expect(await reached(reader, ALL)).toEqual(["to user:alice", "to group:ops", "to topic:orders"]);
      }
      // The private topic the token grants can be asked for; one it does not grant cannot.
      const audit = await stream("?topic=audit", { cookie: `herald_jwt=${token}` });
      expect(await reached(audit, ["topic:audit"])).toContain("to topic:audit");
      expect(
        (await fetch(`${herald!.url}/sse?topic=audit-2`, { headers: { cookie: `herald_jwt=${token}` } })).status,
      ).toBe(403);
    });
  }

  test("forged, alg none, expired, not yet valid, wrong audience and malformed tokens get nothing of anyone's", async () => {
    const signer = await withSigner("HS256", { jwtAudience: "herald", jwtIssuer: "https://app.example" });
    const other = await testSigner("HS256", "someone-elses-secret-0123456789");
    const good = { sub: "alice", exp: inAnHour(), aud: "herald", iss: "https://app.example", groups: ["admins"] };
    const bad = [
      await other.sign(good),
      unsignedToken(good),
      await signer.sign({ ...good, exp: Math.floor(Date.now() / 1000) - 10 }),
      await signer.sign({ ...good, nbf: inAnHour() }),
      await signer.sign({ ...good, aud: "another-app" }),
      await signer.sign({ ...good, iss: "https://evil.example" }),
      await signer.sign({ ...good, sub: 42 }),
      await signer.sign({ ...good, sub: "Alice Smith" }),
      await signer.sign({ ...good, groups: "admins" }),
      await signer.sign({ ...good, pad: "x".repeat(9000) }),
      "not.a.token",
      `${(await signer.sign(good)).slice(0, -4)}AAAA`,
    ];
    for (const token of bad) {
      const reader = await stream("", { cookie: `herald_jwt=${token}` });
      expect(await reached(reader, ["user:alice", "group:admins"])).toEqual([]);
      const page = await (await fetch(`${herald!.url}/`, { headers: { cookie: `herald_jwt=${token}` } })).text();
      expect(page).toContain("Not signed in");
      expect((await fetch(`${herald!.url}/monitor`, { headers: { cookie: `herald_jwt=${token}` } })).status).toBe(401);
    }
    // The good one, for contrast, is alice in admins.
    expect(
      (await fetch(`${herald!.url}/monitor`, { headers: { cookie: `herald_jwt=${await signer.sign(good)}` } })).status,
    ).toBe(200);
  });

  test("pages say who is signed in from the token, with no sign-in form or sign-out", async () => {
    const signer = await withSigner("HS256");
    const token = await signer.sign({ sub: "carol", exp: inAnHour() });
    const page = await (await fetch(`${herald!.url}/`, { headers: { cookie: `herald_jwt=${token}` } })).text();
    expect(page).toContain("Signed in as <strong>carol</strong>");
    expect(page).not.toContain('action="/logout"');
    expect(page).not.toContain("Demo sign-in");
    const anonymous = await (await fetch(`${herald!.url}/`)).text();
    expect(anonymous).not.toContain('action="/login"');
  });

  test("a publish-only token can call the API for the channels it grants, and no others", async () => {
    const signer = await withSigner("ES256");
    const publisher = await signer.sign({
      sub: "orders-service",
      exp: inAnHour(),
      herald: { publish: ["topic:orders", "user:*"] },
    });
    const reader = await stream("?topic=orders", {});
    const send = (token: string, target: string) =>
      fetch(`${herald!.url}/api/publish`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ target, message: `for ${target}` }),
      });
    expect((await send(publisher, "topic:orders")).status).toBe(200);
    expect((await send(publisher, "user:bob")).status).toBe(200);
    for (const target of ["everyone", "topic:audit", "group:admins", "topic:other"])
      expect((await send(publisher, target)).status).toBe(403);
    const reader2 = await reader.event(1);
    expect(reader2.data).toContain("for topic:orders");
    // A token without publish grants, or one that does not verify, is refused with the right status.
    expect((await send(await signer.sign({ sub: "alice", exp: inAnHour() }), "topic:orders")).status).toBe(403);
    const forged = await (await testSigner("ES256")).sign({ sub: "x", exp: inAnHour(), herald: { publish: ["*"] } });
    const refused = await send(forged, "topic:orders");
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: string }).error).toContain("not valid");
    expect(herald!.hub.stats().published).toBe(2);
  });

  test("with the demo sign-in off, /login and /logout are 404", async () => {
    await withSigner("HS256");
    for (const path of ["/login", "/logout"])
      expect((await fetch(`${herald!.url}${path}`, { method: "POST" })).status).toBe(404);
  });
});

describe("identity from the app's auth request", () => {
  function startApp(answer: (req: Request) => Response | Promise<Response>): URL {
    authApp = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: answer });
    return new URL(`http://127.0.0.1:${authApp.port}/whoami`);
  }

  test("200 with {user, groups} is that user; 401 anonymous; the answer is kept per credential", async () => {
    let asked = 0;
    const url = startApp((req) => {
      asked++;
      const cookie = req.headers.get("cookie") ?? "";
      if (cookie.includes("app_session=alice-s3cret")) return Response.json({ user: "alice", groups: ["ops"] });
      return new Response("who?", { status: 401 });
    });
    herald = startTestHerald({ authUrl: url, demoLogin: false, authCacheS: 30 });
    const alice = await stream("", { cookie: "app_session=alice-s3cret" });
    expect(await reached(alice, ["user:alice", "group:ops", "user:bob"])).toEqual(["to user:alice", "to group:ops"]);
    const stranger = await stream("", { cookie: "app_session=guess" });
    expect(await reached(stranger, ["user:alice", "group:ops"])).toEqual([]);
    const before = asked;
    await (await fetch(`${herald.url}/`, { headers: { cookie: "app_session=alice-s3cret" } })).text();
    expect(asked).toBe(before);
  });

  for (const [what, answer] of [
    ["a 500", () => new Response("oops", { status: 500 })],
    ["a 302 to a login page", () => new Response(null, { status: 302, headers: { location: "/login" } })],
    ["a 200 that is not {user, groups}", () => Response.json({ name: "alice" })],
    ["a 200 with a user outside the user-id syntax", () => Response.json({ user: "../admin", groups: [] })],
    ["no answer in time", () => new Promise<Response>(() => {})],
  ] as Array<[string, () => Response | Promise<Response>]>) {
    test(`${what} is a 503 for that request, never a guess`, async () => {
      const url = startApp(answer);
      herald = startTestHerald({ authUrl: url, demoLogin: false, authTimeoutMs: 300 });
      const page = await fetch(`${herald.url}/`, { headers: { cookie: "app_session=x" } });
      expect(page.status).toBe(503);
      expect(await page.text()).not.toContain("Signed in as");
      const sse = await fetch(`${herald.url}/sse`, { headers: { cookie: "app_session=x" } });
      expect(sse.status).toBe(503);
      await sse.body?.cancel();
      // Requests with no credential at all are anonymous without asking.
      expect((await fetch(`${herald.url}/healthz`)).status).toBe(200);
    });
  }
});

describe("the publish API and the app's auth request", () => {
  test("its caller is its token: the app is never asked, and publishing works while the app is down", async () => {
    let asked = 0;
    // An auth endpoint that never answers: a request that asked it would wait, then be a 503.
    authApp = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: () => {
        asked++;
        return new Promise<Response>(() => {});
      },
    });
    const token = "identity-test-publish-token-0123";
    herald = startTestHerald({
      authUrl: new URL(`http://127.0.0.1:${authApp.port}/whoami`),
      demoLogin: false,
      authTimeoutMs: 300,
      publishTokens: [token],
    });
    const publish = (authorization: string) =>
      fetch(`${herald!.url}/api/publish`, {
        method: "POST",
        headers: { authorization, "content-type": "application/json", cookie: "app_session=alice-s3cret" },
        body: JSON.stringify({ target: "topic:news", message: "hello" }),
      });
    const sent = await publish(`Bearer ${token}`);
    expect(sent.status).toBe(200);
    expect(((await sent.json()) as { delivered: number }).delivered).toBe(0);
    // A wrong token of the same length, and one that is the right one's prefix, are refused as before.
    const wrong = await publish(`Bearer ${token.slice(0, -1)}4`);
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: string }).error).toBe("That publish token is not valid.");
    expect((await publish(`Bearer ${token.slice(0, -1)}`)).status).toBe(401);
    expect(asked).toBe(0);
    // The app's pages still ask it (and, with no answer, are a 503).
    expect((await fetch(`${herald.url}/`, { headers: { cookie: "app_session=alice-s3cret" } })).status).toBe(503);
    expect(asked).toBe(1);
  });
});

describe("the demo sign-in", () => {
  test("is on by default without a JWT key or auth request, and every page says so", async () => {
    herald = startTestHerald({});
    const page = await (await fetch(`${herald.url}/`)).text();
    expect(page).toContain('<p class="demo-notice" role="note"><strong>Demo sign-in:</strong>');
    expect(page).toContain('action="/login"');
  });

  test("start-up warns, and louder when HERALD_GROUPS gives anyone a group", async () => {
    const { createLogger } = await import("../src/server/logger.ts");
    const lines: string[] = [];
    herald = startTestHerald({}, { log: createLogger("debug", (line) => lines.push(line)) });
    expect(lines.some((l) => l.includes('"level":"warn"') && l.includes("demo sign-in is on"))).toBe(true);
    await herald.stop();
    lines.length = 0;
    herald = startTestHerald(
      { groups: { admins: ["alice"] } },
      { log: createLogger("debug", (line) => lines.push(line)) },
    );
    expect(lines.some((l) => l.includes('"level":"error"') && l.includes("anyone who types a member's name"))).toBe(
      true,
    );
  });
});
