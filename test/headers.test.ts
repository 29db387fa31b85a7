import { afterEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { postForm, startTestHerald, visit } from "./helpers.ts";

let herald: Herald | undefined;
afterEach(async () => {
  await herald?.stop();
  herald = undefined;
});

describe("security headers", () => {
  test("every kind of response carries the CSP and friends", async () => {
    herald = startTestHerald();
    const controller = new AbortController();
    const responses = [
      await fetch(`${herald.url}/`),
      await fetch(`${herald.url}/assets/htmx.js`),
      await fetch(`${herald.url}/healthz`),
      await fetch(`${herald.url}/nope`),
      await fetch(`${herald.url}/sse?topic=BAD`),
      await fetch(`${herald.url}/sse`, { signal: controller.signal }),
    ];
    for (const res of responses) {
      const csp = res.headers.get("content-security-policy")!;
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain("unsafe-inline");
      expect(csp).not.toContain("unsafe-eval");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("referrer-policy")).toBe("same-origin");
    }
    controller.abort();
  });

  test("pages have no inline scripts or styles, and htmx is told not to need them", async () => {
    herald = startTestHerald();
    const page = await (await fetch(`${herald.url}/`)).text();
    expect(page).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(page).not.toMatch(/<style|\sstyle=|\son[a-z]+=/);
    expect(page).toContain("&quot;includeIndicatorStyles&quot;:false");
    expect(page).toContain("&quot;allowEval&quot;:false");
  });

  test("cookies are Secure when HERALD_PUBLIC_URL is https", async () => {
    herald = startTestHerald({ publicUrl: new URL("https://herald.example.com") });
    const first = await fetch(`${herald.url}/`);
    expect(first.headers.get("set-cookie")).toContain("Secure");
    const res = await postForm(herald, "/login", { name: "alice" }, { session: await visit(herald), htmx: false });
    expect(res.headers.get("set-cookie")).toContain("Secure");
  });
});
