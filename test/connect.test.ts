/**
 * The example "existing app" (`examples/existing-app.ts`) against a real herald: its users sign
 * in with their password at the app, and herald knows who they are, by the app's JWT or by its
 * answer to herald's auth request.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { startExistingApp } from "../examples/existing-app.ts";
import { openStream, startTestHerald, type SseReader } from "./helpers.ts";

const SECRET = "existing-app-secret-0123456789";
let herald: Herald | undefined;
let app: { url: string; stop(): void } | undefined;
const readers: SseReader[] = [];

afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  app?.stop();
  app = undefined;
  await herald?.stop();
  herald = undefined;
});

/** Signs in at the app as a browser would; the cookies it sets, as one `Cookie` header. */
async function signInAtApp(user: string, password: string): Promise<{ status: number; cookie: string }> {
  const res = await fetch(`${app!.url}/login`, {
    method: "POST",
    body: new URLSearchParams({ user, password }),
    redirect: "manual",
  });
  return {
    status: res.status,
    cookie: res.headers
      .getSetCookie()
      .map((c) => c.split(";")[0])
      .join("; "),
  };
}

async function reachedBy(cookie: string): Promise<string[]> {
  const reader = await openStream(herald!, "", cookie);
  readers.push(reader);
  for (const target of ["user:alice", "user:bob", "group:ops"] as const) {
    await herald!.hub.publish(target, { event: "notification", data: `to ${target}` });
  }
  await herald!.hub.publishToEveryone({ event: "notification", data: "marker" });
  await reader.until(() => reader.events.some((e) => e.data === "marker"), "the marker");
  return reader.events.map((e) => e.data).filter((d) => d !== "marker");
}

for (const mode of ["jwt", "auth-request"] as const) {
  describe(`an existing app that tells herald who its users are (${mode})`, () => {
    async function start(): Promise<void> {
      if (mode === "jwt") {
        herald = startTestHerald({ jwtSecret: SECRET, demoLogin: false });
        app = await startExistingApp({ mode, heraldUrl: herald.url, jwtSecret: SECRET });
      } else {
        app = await startExistingApp({ mode, heraldUrl: "http://127.0.0.1:1" });
        herald = startTestHerald({ authUrl: new URL(`${app.url}/herald-auth`), demoLogin: false });
      }
    }

    test("a user who signs in at the app gets their own channels and groups in herald", async () => {
      await start();
      const alice = await signInAtApp("alice", "wonderland");
      expect(alice.status).toBe(303);
      expect(await reachedBy(alice.cookie)).toEqual(["to user:alice", "to group:ops"]);
      const page = await (await fetch(`${herald!.url}/`, { headers: { cookie: alice.cookie } })).text();
      expect(page).toContain("Signed in as <strong>alice</strong>");
    });

    test("a wrong password signs nobody in, at the app or in herald", async () => {
      await start();
      const guess = await signInAtApp("alice", "guess");
      expect(guess.status).toBe(401);
      expect(guess.cookie).toBe("");
      expect(await reachedBy("app_session=made-up; herald_jwt=made.up.token")).toEqual([]);
    });
  });
}
