import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { openStream, postForm, signIn, startTestHerald, visit, type Session, type SseReader } from "./helpers.ts";

let herald: Herald;
let alice: Session;
let bobStream: SseReader;

beforeEach(async () => {
  herald = startTestHerald();
  alice = await signIn(herald, "alice");
  bobStream = await openStream(herald, "", (await signIn(herald, "bob")).cookie);
});

afterEach(async () => {
  bobStream.close();
  await herald.stop();
});

async function stillDelivering(): Promise<void> {
  const before = bobStream.events.length;
  expect((await postForm(herald, "/notify", { target: "user:bob", message: "legit" }, { session: alice })).status).toBe(
    200,
  );
  expect((await bobStream.event(before + 1)).data).toContain("legit");
}

describe("CSRF", () => {
  test("the page carries the token in a meta tag, in hx-headers and in every posting form", async () => {
    const page = await (await fetch(`${herald.url}/`, { headers: { cookie: alice.cookie } })).text();
    expect(page).toContain(`<meta name="csrf-token" content="${alice.csrf}">`);
    expect(page).toContain(`hx-headers="{&quot;X-CSRF-Token&quot;:&quot;${alice.csrf}&quot;}"`);
    const forms = page.match(/<form[^>]*method="post"[\s\S]*?<\/form>/g)!;
    expect(forms.length).toBe(3);
    for (const form of forms) expect(form).toContain(`<input type="hidden" name="_csrf" value="${alice.csrf}">`);
  });

  test("the first visit sets an HttpOnly SameSite=Lax CSRF cookie", async () => {
    const res = await fetch(`${herald.url}/`);
    const cookie = res.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^herald_csrf=[A-Za-z0-9_-]{22};/);
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Lax");
    const again = await fetch(`${herald.url}/`, { headers: { cookie: cookie.split(";")[0]! } });
    expect(again.headers.get("set-cookie")).toBeNull();
  });

  test("the token in the X-CSRF-Token header works as htmx sends it", async () => {
    const res = await postForm(
      herald,
      "/notify",
      { _csrf: "", target: "user:bob", message: "via header" },
      { session: alice, headers: { "x-csrf-token": alice.csrf } },
    );
    expect(res.status).toBe(403);
    const body = new URLSearchParams({ target: "user:bob", message: "via header" });
    const ok = await fetch(`${herald.url}/notify`, {
      method: "POST",
      body,
      headers: { cookie: alice.cookie, "hx-request": "true", "x-csrf-token": alice.csrf },
    });
    expect(ok.status).toBe(200);
    expect((await bobStream.event(1)).data).toContain("via header");
  });

  const forgeries: Array<
    [
      string,
      (s: Session) => { fields: Record<string, string>; session: Session; headers?: Record<string, string> },
      string,
    ]
  > = [
    ["no token", (s) => ({ fields: { _csrf: "" }, session: s }), "missing its security token"],
    ["a wrong token", (s) => ({ fields: { _csrf: "A".repeat(43) }, session: s }), "wrong or out of date"],
    [
      "another visitor's token",
      (s) => ({ fields: {}, session: { ...s, csrf: "x" + s.csrf.slice(1) } }),
      "wrong or out of date",
    ],
    [
      "no CSRF cookie",
      (s) => ({ fields: {}, session: { ...s, cookie: s.cookie.replace(/(; )?herald_csrf=[^;]+/, "") } }),
      "no security cookie",
    ],
    [
      "Sec-Fetch-Site: cross-site",
      (s) => ({ fields: {}, session: s, headers: { "sec-fetch-site": "cross-site" } }),
      "from another site are refused (Sec-Fetch-Site: cross-site)",
    ],
    [
      "Sec-Fetch-Site: same-site",
      (s) => ({ fields: {}, session: s, headers: { "sec-fetch-site": "same-site" } }),
      "from another site are refused",
    ],
    [
      "a foreign Origin",
      (s) => ({ fields: {}, session: s, headers: { origin: "https://evil.example" } }),
      "from another origin are refused (Origin: https://evil.example)",
    ],
  ];
  for (const [what, make, message] of forgeries) {
    test(`${what}: 403 that says so, nothing sent, others keep receiving`, async () => {
      const { fields, session, headers } = make(alice);
      const res = await postForm(
        herald,
        "/notify",
        { target: "user:bob", message: "forged", ...fields },
        { session, headers },
      );
      expect(res.status).toBe(403);
      expect(await res.text()).toContain(message);
      expect(herald.hub.stats().published).toBe(0);
      await stillDelivering();
    });
  }

  test("a token from before sign-in does not work after it (it is bound to the user)", async () => {
    const anonymous = await visit(herald);
    const res = await postForm(herald, "/login", { name: "carol" }, { session: anonymous, htmx: false });
    const signedIn: Session = {
      cookie: `${anonymous.cookie}; ${res.headers.get("set-cookie")!.split(";")[0]}`,
      csrf: anonymous.csrf,
    };
    const stale = await postForm(herald, "/notify", { target: "user:bob", message: "x" }, { session: signedIn });
    expect(stale.status).toBe(403);
  });

  test("login and logout are protected too", async () => {
    const anonymous = await visit(herald);
    const login = await postForm(
      herald,
      "/login",
      { name: "mallory", _csrf: "nope" },
      { session: anonymous, htmx: false },
    );
    expect(login.status).toBe(403);
    expect(login.headers.get("set-cookie")).toBeNull();
    expect(await login.text()).toContain("<h1>Error 403</h1>");
    const logout = await postForm(
      herald,
      "/logout",
      {},
      { session: alice, headers: { "sec-fetch-site": "cross-site" }, htmx: false },
    );
    expect(logout.status).toBe(403);
    expect(logout.headers.get("set-cookie")).toBeNull();
  });

  test("a same-origin browser post (Origin and Sec-Fetch-Site set) is accepted", async () => {
    const res = await postForm(
      herald,
      "/notify",
      { target: "user:bob", message: "same origin" },
      { session: alice, headers: { origin: herald.url, "sec-fetch-site": "same-origin" } },
    );
    expect(res.status).toBe(200);
  });

  test("HERALD_PUBLIC_URL's origin is accepted behind a proxy", async () => {
    await herald.stop();
    herald = startTestHerald({ publicUrl: new URL("https://notify.example.com/") });
    alice = await signIn(herald, "alice");
    bobStream = await openStream(herald, "", (await signIn(herald, "bob")).cookie);
    const res = await postForm(
      herald,
      "/notify",
      { target: "user:bob", message: "x" },
      { session: alice, headers: { origin: "https://notify.example.com" } },
    );
    expect(res.status).toBe(200);
  });
});
