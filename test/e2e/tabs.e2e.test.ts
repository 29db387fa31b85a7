import { afterAll, afterEach, beforeAll, describe, expect } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import type { Herald } from "../../src/app.ts";
import { userChannel } from "../../src/core/channel.ts";
import { HTMX_VERSIONS } from "../../src/server/htmx.ts";
import { eventually, postForm, signIn, startTestHerald } from "../helpers.ts";
import { chromiumAvailable, e2eTest, launchBrowser, streamOpen, until } from "./browser.ts";

const run = chromiumAvailable();

/** Signs `name` in through the form in a new tab of `context`; the other tabs of the context share the sign-in. */
async function signInTab(context: BrowserContext, url: string, name: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(url);
  await page.fill('input[name="name"]', name);
  await page.click('#sign-in button[type="submit"]');
  await page.waitForSelector(`text=Signed in as ${name}`);
  return page;
}

/** A new tab of `context` on `url`. Plain HTTP/1.1 allows six connections per host: a seventh waits. */
async function openTab(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(url, { timeout: 10_000 });
  return page;
}

const messagesOf = (page: Page) =>
  page.$$eval("#notifications li .message", (items) => items.map((item) => item.textContent));

/** What the page's `#connection` shows. */
const connection = (page: Page): Promise<{ state: string; text: string; live: string; hidden: boolean }> =>
  page.evaluate(`(() => {
    const element = document.getElementById("connection");
    return { state: element.dataset.state, text: element.textContent, live: element.getAttribute("aria-live"), hidden: element.hidden };
  })()`);

for (const htmx of HTMX_VERSIONS) {
  describe.if(run)(`in Chromium: many tabs of one person share one stream (htmx ${htmx}, plain HTTP)`, () => {
    let browser: Browser;
    let herald: Herald;
    const e2e = e2eTest(() => browser);
    const contexts: BrowserContext[] = [];
    const newContext = async () => {
      const context = await browser.newContext();
      contexts.push(context);
      return context;
    };

    beforeAll(async () => {
      browser = await launchBrowser();
    });
    afterEach(async () => {
      for (const context of contexts.splice(0)) await context.close();
      await herald?.stop();
    });
    afterAll(async () => {
      await browser?.close();
    });

    const send = async (to: string, message: string) => {
      const sender = await signIn(herald, "sender");
      const response = await postForm(herald, "/notify", { target: to, message }, { session: sender });
      expect(response.status).toBe(200);
    };

    e2e(
      "ten tabs all load, hold one stream between them, and all receive a notification",
      async () => {
        herald = startTestHerald({ htmx });
        expect(herald.url).toStartWith("http://");
        const context = await newContext();
        const tabs = [await signInTab(context, herald.url, "alice")];
        for (let i = 1; i < 10; i++) tabs.push(await openTab(context, herald.url));
        for (const tab of tabs) await streamOpen(tab);
        expect(herald.hub.subscriberCount(userChannel("alice"))).toBe(1);

        await send("user:alice", "to every tab");
        for (const tab of tabs) {
          await until(tab, `document.querySelectorAll("#notifications li").length === 1`);
          expect(await messagesOf(tab)).toEqual(["to every tab"]);
          expect(await tab.textContent("#unread-count")).toBe("1");
        }
      },
      90_000,
    );

    e2e(
      "closing the tab that opened the stream keeps the others receiving, with nothing missed or twice",
      async () => {
        herald = startTestHerald({ htmx });
        const context = await newContext();
        const first = await signInTab(context, herald.url, "alice");
        await streamOpen(first);
        const others = [await openTab(context, herald.url), await openTab(context, herald.url)];
        for (const tab of others) await streamOpen(tab);
        await send("user:alice", "one");
        for (const tab of [first, ...others])
          await until(tab, `document.querySelectorAll("#notifications li").length === 1`);

        await first.close();
        await send("user:alice", "two");
        await send("user:alice", "three");
        for (const tab of others) await until(tab, `document.querySelectorAll("#notifications li").length === 3`);

        // A tab that joins the stream now starts from the state the others reached, not twice over.
        const late = await openTab(context, herald.url);
        await streamOpen(late);
        await send("user:alice", "four");
        for (const tab of [...others, late])
          await until(tab, `document.querySelectorAll("#notifications li").length === 4`);
        await Bun.sleep(300);
        for (const tab of [...others, late]) {
          expect(await messagesOf(tab)).toEqual(["four", "three", "two", "one"]);
          expect(await tab.textContent("#unread-count")).toBe("4");
        }
        expect(herald.hub.subscriberCount(userChannel("alice"))).toBe(1);

        // The last tab gone, the stream goes too.
        for (const tab of [...others, late]) await tab.close();
        await eventually(() => !herald.hub.isConnected("alice"), "alice's stream to close", 5000);
      },
      60_000,
    );

    // htmx 4's scripts are not deferred: holding one back would hold back the page itself.
    if (htmx === 2) {
      e2e("a tab that joins the shared stream gets what was sent while it loaded, once", async () => {
        herald = startTestHerald({ htmx });
        const context = await newContext();
        const first = await signInTab(context, herald.url, "alice");
        await streamOpen(first);
        await send("user:alice", "before");
        await until(first, `document.querySelectorAll("#notifications li").length === 1`);

        // The page is rendered, but its stream is held back until a notification has gone by.
        const late = await context.newPage();
        let release = () => {};
        const held = new Promise<void>((resolve) => (release = resolve));
        await late.route("**/assets/htmx-ext-sse.js", async (route) => {
          await held;
          await route.continue();
        });
        await late.goto(herald.url, { waitUntil: "commit" });
        await until(late, `document.querySelectorAll("#notifications li").length === 1`);
        await send("user:alice", "while it loaded");
        await until(first, `document.querySelectorAll("#notifications li").length === 2`);
        release();

        await streamOpen(late);
        await until(late, `document.querySelectorAll("#notifications li").length === 2`);
        await Bun.sleep(300);
        expect(await messagesOf(late)).toEqual(["while it loaded", "before"]);
        expect(await late.textContent("#unread-count")).toBe("2");
      });
    }

    e2e(
      "past 500 events kept, the stream starts again from a fresh snapshot that every tab applies",
      async () => {
        herald = startTestHerald({ htmx, inboxSize: 5 });
        const context = await newContext();
        const first = await signInTab(context, herald.url, "alice");
        await streamOpen(first);
        const sender = await signIn(herald, "sender");
        for (let i = 1; i <= 510; i++)
          await postForm(herald, "/notify", { target: "user:alice", message: `n${i}` }, { session: sender });
        // The fresh snapshot holds the latest five; what came after it is added on top.
        await until(first, `document.querySelector("#notifications li .message")?.textContent === "n510"`, 15_000);
        await eventually(() => herald.hub.subscriberCount(userChannel("alice")) === 1, "one stream again", 5000);

        const late = await openTab(context, herald.url);
        await streamOpen(late);
        await postForm(herald, "/notify", { target: "user:alice", message: "n511" }, { session: sender });
        for (const tab of [first, late])
          await until(tab, `document.querySelector("#notifications li .message")?.textContent === "n511"`);
        await Bun.sleep(300);
        const shown = await messagesOf(first);
        expect(shown.length).toBeLessThan(20);
        expect(shown.slice(0, 6)).toEqual(["n511", "n510", "n509", "n508", "n507", "n506"]);
        expect(new Set(shown).size).toBe(shown.length);
        expect(await messagesOf(late)).toEqual(shown);
        expect(await late.textContent("#unread-count")).toBe("511");
        expect(await first.textContent("#unread-count")).toBe("511");
      },
      60_000,
    );

    e2e("tabs of two sign-ins in one browser never share a stream", async () => {
      herald = startTestHerald({ htmx });
      const context = await newContext();
      const alice = await signInTab(context, herald.url, "alice");
      await streamOpen(alice);
      // Bob signs in from another tab of the same browser while alice's page is still open.
      const bob = await openTab(context, herald.url);
      await bob.evaluate(`fetch("/login", {
        method: "POST",
        body: new URLSearchParams({ name: "bob", _csrf: document.querySelector('meta[name="csrf-token"]').content }),
      })`);
      await bob.reload();
      await bob.waitForSelector("text=Signed in as bob");
      await streamOpen(bob);
      expect(herald.hub.isConnected("bob")).toBe(true);
      await send("user:alice", "for alice");
      await until(alice, `document.querySelectorAll("#notifications li").length === 1`);
      await send("user:bob", "for bob");
      await until(bob, `document.querySelectorAll("#notifications li").length === 1`);
      await Bun.sleep(300);
      expect(await messagesOf(alice)).toEqual(["for alice"]);
      expect(await messagesOf(bob)).toEqual(["for bob"]);
    });

    /** Two tabs of alice's, in a browser context that `prepare` has set up to break the worker. */
    const eachOnItsOwn = async (prepare: (context: BrowserContext) => Promise<unknown>) => {
      herald = startTestHerald({ htmx });
      const context = await newContext();
      await prepare(context);
      const tabs = [await signInTab(context, herald.url, "alice"), await openTab(context, herald.url)];
      // A silent worker is given up after 5 s, and htmx 4 reconnects after half a second or so.
      for (const tab of tabs) await streamOpen(tab, 15_000);
      expect(herald.hub.subscriberCount(userChannel("alice"))).toBe(2);
      await send("user:alice", "each on its own");
      for (const tab of tabs) await until(tab, `document.querySelectorAll("#notifications li").length === 1`);
      await Bun.sleep(300);
      for (const tab of tabs) expect(await messagesOf(tab)).toEqual(["each on its own"]);
    };

    e2e(
      "when the worker cannot start, each tab keeps a stream of its own",
      () =>
        eachOnItsOwn((context) =>
          context.addInitScript({
            content: `window.SharedWorker = class extends SharedWorker {
              constructor(url, options) { super("/assets/no-such-worker.js", options); }
            };`,
          }),
        ),
      45_000,
    );

    e2e(
      "when the worker starts but never answers, each tab keeps a stream of its own",
      () =>
        eachOnItsOwn((context) =>
          context.route("**/assets/herald-worker.js", (route) =>
            route.fulfill({ body: "self.onconnect = () => {};", contentType: "text/javascript" }),
          ),
        ),
      45_000,
    );

    e2e("a browser without SharedWorker keeps one stream per tab", async () => {
      herald = startTestHerald({ htmx });
      const context = await newContext();
      await context.addInitScript({ content: "delete window.SharedWorker;" });
      const tabs = [await signInTab(context, herald.url, "alice"), await openTab(context, herald.url)];
      for (const tab of tabs) await streamOpen(tab);
      expect(herald.hub.subscriberCount(userChannel("alice"))).toBe(2);
      await send("user:alice", "each on its own");
      for (const tab of tabs) await until(tab, `document.querySelectorAll("#notifications li").length === 1`);
    });
  });
}

/** Tells the page it went to the background (or came back), as switching tabs does. */
const setHidden = (page: Page, hidden: boolean) =>
  page.evaluate(`(() => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => ${hidden} });
    document.dispatchEvent(new Event("visibilitychange"));
  })()`);

describe.if(run)("in Chromium: without SharedWorker, htmx 4 tabs in the background let go of their streams", () => {
  let browser: Browser;
  let herald: Herald | undefined;
  const e2e = e2eTest(() => browser);

  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await herald?.stop();
  });

  e2e(
    "ten tabs load when all but one are in the background, and a tab shown again catches up",
    async () => {
      herald = startTestHerald({ htmx: 4 });
      const context = await browser.newContext();
      // Without SharedWorker, each tab's own stream; with it, the tabs share one whether shown or not.
      await context.addInitScript({ content: "delete window.SharedWorker;" });
      const tabs = [await signInTab(context, herald.url, "alice")];
      await streamOpen(tabs[0]!);
      await setHidden(tabs[0]!, true);
      for (let i = 1; i < 10; i++) {
        const tab = await openTab(context, herald.url);
        await streamOpen(tab);
        tabs.push(tab);
        if (i < 9) await setHidden(tab, true);
      }
      await eventually(() => herald!.hub.subscriberCount(userChannel("alice")) === 1, "one stream, the shown tab's");

      const sender = await signIn(herald, "sender");
      await postForm(herald, "/notify", { target: "user:alice", message: "while hidden" }, { session: sender });
      await until(tabs[9]!, `document.querySelectorAll("#notifications li").length === 1`);
      await setHidden(tabs[0]!, false);
      await until(tabs[0]!, `document.querySelectorAll("#notifications li").length === 1`, 10_000);
      expect(await messagesOf(tabs[0]!)).toEqual(["while hidden"]);
    },
    90_000,
  );
});

for (const htmx of HTMX_VERSIONS) {
  describe.if(run)(`in Chromium: #connection says whether the stream is live (htmx ${htmx})`, () => {
    let browser: Browser;
    const e2e = e2eTest(() => browser);
    let herald: Herald | undefined;
    const dataDir = mkdtempSync(join(tmpdir(), "herald-tabs-e2e-"));

    beforeAll(async () => {
      browser = await launchBrowser();
    });
    afterAll(async () => {
      await browser?.close();
      await herald?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    e2e(
      "Live while open, Reconnecting… with its wait while the server is away, Live again after",
      async () => {
        const config = { eventLog: "sqlite" as const, dataDir, retryMs: 300, htmx };
        herald = startTestHerald(config);
        const port = Number(new URL(herald.url).port);
        const page = await signInTab(await browser.newContext(), herald.url, "alice");
        await streamOpen(page);
        expect(await connection(page)).toEqual({ state: "live", text: "Live", live: "polite", hidden: false });

        await herald.stop();
        await until(page, `document.getElementById("connection").dataset.state === "reconnecting"`, 5000);
        expect((await connection(page)).text).toMatch(/^Reconnecting… \(next try in (under a second|\d+ s)\)$/);

        herald = startTestHerald({ ...config, port });
        await until(page, `document.getElementById("connection").dataset.state === "live"`, 10_000);
        expect((await connection(page)).text).toBe("Live");
        await eventually(() => herald!.hub.isConnected("alice"), "alice's page to reconnect", 5000);
        const sender = await signIn(herald, "sender");
        await postForm(herald, "/notify", { target: "user:alice", message: "back" }, { session: sender });
        await until(page, `document.querySelectorAll("#notifications li").length === 1`);
      },
      30_000,
    );
  });
}
