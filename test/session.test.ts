import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Herald } from "../src/app.ts";
import { loadSecret, SessionSigner } from "../src/server/session.ts";
import { eventually, openStream, postForm, signIn, startTestHerald, visit } from "./helpers.ts";

const SECRET = "test-secret-0123456789abcdef";

describe("session cookies", () => {
  const signer = new SessionSigner(SECRET, 3600);
  const alice = { id: "alice", name: "Alice" };

  test("a cookie it issued verifies to the same session, and each sign-in is a new session", () => {
    const { session, cookie } = signer.issue(alice);
    expect(signer.verify(cookie)).toEqual(session);
    expect(session).toMatchObject(alice);
    expect(signer.issue(alice).session.sid).not.toBe(session.sid);
  });

  test("a tampered payload, signature or format is anonymous", () => {
    const value = signer.issue(alice).cookie;
    const [version, payload, signature] = value.split(".") as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ id: "bob", name: "bob", exp: 9999999999 })).toString("base64url");
    expect(signer.verify(`${version}.${forged}.${signature}`)).toBeNull();
    const flipped = signature.slice(0, -2) + (signature.endsWith("AA") ? "AB" : "AA");
    expect(signer.verify(`${version}.${payload}.${flipped}`)).toBeNull();
    expect(signer.verify(`v1.${payload}.${signature}`)).toBeNull();
    expect(signer.verify(`v3.${payload}.${signature}`)).toBeNull();
    expect(signer.verify(`${value}.extra`)).toBeNull();
    // The signature's last character has spare bits: a variant that decodes to the same bytes is still refused.
    const last = signature.at(-1)!;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const sibling = alphabet[alphabet.indexOf(last) ^ 1]!;
    expect(Buffer.from(signature.slice(0, -1) + sibling, "base64url")).toEqual(Buffer.from(signature, "base64url"));
    expect(signer.verify(`${version}.${payload}.${signature.slice(0, -1)}${sibling}`)).toBeNull();
    expect(signer.verify(payload)).toBeNull();
    expect(signer.verify("")).toBeNull();
    expect(signer.verify(null)).toBeNull();
  });

  test("a cookie signed with another secret is anonymous", () => {
    const other = new SessionSigner("another-secret-0123456789", 3600);
    expect(signer.verify(other.issue(alice).cookie)).toBeNull();
  });

  test("an expired cookie is anonymous", () => {
    const issuedAt = Date.now() - 2 * 3600 * 1000;
    const { session, cookie: value } = signer.issue(alice, issuedAt);
    expect(signer.verify(value, issuedAt + 1000)).toEqual(session);
    expect(signer.verify(value)).toBeNull();
  });

  test("the generated secret is kept in the data directory and reused", () => {
    const dir = mkdtempSync(join(tmpdir(), "herald-secret-"));
    try {
      const first = loadSecret(undefined, dir);
      expect(first).toMatch(/^[0-9a-f]{64}$/);
      expect(readFileSync(join(dir, "secret"), "utf8").trim()).toBe(first);
      expect(statSync(join(dir, "secret")).mode & 0o777).toBe(0o600);
      expect(loadSecret(undefined, dir)).toBe(first);
      expect(loadSecret(SECRET, dir)).toBe(SECRET);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("sign-in routes", () => {
  let herald: Herald | undefined;
  afterEach(async () => {
    await herald?.stop();
    herald = undefined;
  });

  test("POST /login sets a signed HttpOnly SameSite=Lax cookie and goes back home", async () => {
    herald = startTestHerald();
    const res = await postForm(herald, "/login", { name: "Alice_1" }, { session: await visit(herald), htmx: false });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/");
    const cookie = res.headers.get("set-cookie")!;
    expect(cookie).toStartWith("herald_session=v2.");
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Lax");
    expect(cookie).toContain("Path=/");
    const page = await (await fetch(`${herald.url}/`, { headers: { cookie: cookie.split(";")[0]! } })).text();
    expect(page).toContain("Signed in as <strong>Alice_1</strong>");
    expect(cookie).not.toContain("Secure");
    expect(page).toContain("user:alice_1");
  });

  test("POST /login refuses a bad name with a 400 that says what a name is", async () => {
    herald = startTestHerald();
    const session = await visit(herald);
    for (const name of ["", "a b", "x".repeat(33), "<script>", "ümlaut"]) {
      const res = await postForm(herald, "/login", { name }, { session });
      expect(res.status).toBe(400);
      expect(res.headers.get("set-cookie")).toBeNull();
      expect(await res.text()).toContain("A name is 1–32 letters, digits");
    }
    const page = await postForm(herald, "/login", { name: "<b>x</b>" }, { session, htmx: false });
    expect(page.status).toBe(400);
    const body = await page.text();
    expect(body).toContain("<!doctype html>");
    expect(body).not.toContain("<b>x</b>");
  });

  test("POST /logout clears the cookie", async () => {
    herald = startTestHerald();
    const res = await postForm(herald, "/logout", {}, { session: await signIn(herald, "alice"), htmx: false });
    expect(res.status).toBe(303);
    expect(res.headers.get("set-cookie")).toMatch(/^herald_session=; .*Max-Age=0/);
  });

  test("a session survives a restart on the same data directory", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "herald-restart-"));
    try {
      herald = startTestHerald({ dataDir, secret: undefined });
      const { cookie } = await signIn(herald, "alice");
      await herald.stop();
      herald = startTestHerald({ dataDir, secret: undefined });
      const page = await (await fetch(`${herald.url}/`, { headers: { cookie } })).text();
      expect(page).toContain("Signed in as <strong>alice</strong>");
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("a tampered cookie gets the anonymous page and an anonymous stream", async () => {
    herald = startTestHerald();
    const { cookie } = await signIn(herald, "alice");
    const tampered = cookie.replace(
      /(herald_session=[^;]+)(.)/,
      (_, head: string, c: string) => head + (c === "E" ? "F" : "E"),
    );
    expect(tampered).not.toBe(cookie);
    const page = await (await fetch(`${herald.url}/`, { headers: { cookie: tampered } })).text();
    expect(page).toContain("Not signed in");
    const reader = await openStream(herald, "", tampered);
    await eventually(() => herald!.hub.clientCount === 1, "one stream");
    expect(herald.hub.isConnected("alice")).toBe(false);
    reader.close();
  });
});

describe("private user channels", () => {
  let herald: Herald | undefined;
  afterEach(async () => {
    await herald?.stop();
    herald = undefined;
  });

  test("alice cannot receive bob's notifications through any query or header", async () => {
    herald = startTestHerald();
    const aliceCookie = (await signIn(herald, "alice")).cookie;
    const bobCookie = (await signIn(herald, "bob")).cookie;
    const bob = await openStream(herald, "", bobCookie);

    const attempts = [
      "?user=bob",
      "?channel=user:bob",
      "?userId=bob&id=bob",
      "?topic=bob",
      "?topic=user-bob",
      "?topic=user.bob",
    ];
    const readers = [];
    for (const query of attempts) {
      readers.push(await openStream(herald, query, aliceCookie));
      readers.push(await openStream(herald, query));
    }
    const headerTries: Record<string, string>[] = [
      { "x-user": "bob" },
      { "x-user-id": "bob" },
      { authorization: "Bearer bob" },
      { cookie: `${aliceCookie}; herald_session=${bobCookie.split("herald_session=")[1]!.slice(0, 10)}` },
    ];
    for (const headers of headerTries) {
      const controller = new AbortController();
      const res = await fetch(`${herald.url}/sse?topic=user`, {
        headers: { cookie: aliceCookie, ...headers },
        signal: controller.signal,
      });
      expect(res.status).toBe(200);
      controller.abort();
    }
    for (const query of ["?topic=user:bob", "?topic=user%3Abob", "?topic=orders,user:bob"]) {
      const res = await fetch(`${herald.url}/sse${query}`, {
        headers: { cookie: aliceCookie, accept: "text/event-stream" },
      });
      expect(res.status).toBe(400);
    }

    await eventually(() => herald!.hub.subscriberCount("user:alice") === attempts.length, "alice's streams");
    expect(herald.hub.subscriberCount("user:bob")).toBe(1);
    expect((await herald.hub.publishToUser("bob", { event: "notification", data: "secret for bob" })).delivered).toBe(
      1,
    );
    expect((await bob.event(1)).data).toBe("secret for bob");
    herald.hub.publishToEveryone({ event: "notification", data: "marker" });
    for (const reader of readers) {
      await reader.event(1);
      expect(reader.events.map((e) => e.data)).toEqual(["marker"]);
      reader.close();
    }
    bob.close();
  });
});
