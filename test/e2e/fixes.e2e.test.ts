import { afterAll, beforeAll, describe, expect } from "bun:test";
import type { Browser, Page } from "playwright-core";
import type { Herald } from "../../src/app.ts";
import { HTMX_VERSIONS } from "../../src/server/htmx.ts";
import { startTestHerald } from "../helpers.ts";
import {
  chromiumAvailable,
  e2eTest,
  launchBrowser,
  live,
  signedInPage,
  streamOpen,
  trackStream,
  until,
} from "./browser.ts";

const run = chromiumAvailable();

/** Sends a notification from the home page's form and waits for its status line. */
async function send(page: Page, target: string, message: string): Promise<string> {
  await page.fill('#send-form input[name="target"]', target);
  await page.fill('#send-form textarea[name="message"]', message);
  await page.click('#send-form button[type="submit"]');
  await page.waitForSelector("#send-status .ok");
  const status = (await page.textContent("#send-status")) ?? "";
  await page.evaluate(`document.querySelector("#send-status").textContent = ""`);
  return status;
}

for (const htmx of HTMX_VERSIONS) {
  describe.if(run)(`in Chromium: fixes of #20 (htmx ${htmx})`, () => {
    let herald: Herald;
    let browser: Browser;
    const e2e = e2eTest(() => browser);
    const problems: string[] = [];
    async function signedIn(name: string): Promise<Page> {
      const page = await signedInPage(browser, herald.url, name, problems);
      page.setDefaultTimeout(5000);
      return page;
    }

    async function anonymousPage(path: string): Promise<Page> {
      const page = await (await browser.newContext()).newPage();
      trackStream(page);
      page.setDefaultTimeout(5000);
      page.on("console", (m) => m.type() === "error" && problems.push(`anonymous: ${m.text()} at ${page.url()}`));
      await page.goto(`${herald.url}${path}`);
      return page;
    }

    beforeAll(async () => {
      herald = startTestHerald({
        eventLog: "sqlite",
        htmx,
        anonymous: true,
        groups: { admins: ["root"], ops: ["olga"] },
      });
      browser = await launchBrowser();
    });

    afterAll(async () => {
      await browser?.close();
      await herald?.stop();
    });

    e2e("after a sale the status line is one sentence and the row is replaced in the table", async () => {
      const alice = await signedIn("alice");
      await alice.goto(`${herald.url}/inventory`);
      await streamOpen(alice);
      const rows = (await alice.$$("#products tr")).length;
      for (const action of ["sell", "restock", "set"]) {
        await alice.fill("#product-MS-202 form.stock input[name=amount]", "1");
        await alice.click(`#product-MS-202 form.stock button[value=${action}]`);
        await alice.waitForSelector("#inventory-status .ok");
        expect(await alice.$$("#inventory-status form, #inventory-status td, #inventory-status input")).toHaveLength(0);
        expect((await alice.textContent("#inventory-status"))?.trim()).toMatch(/^(Sold|Restocked|Set to) 1: .*\.$/);
        expect(await alice.$$("#products tr")).toHaveLength(rows);
        await alice.evaluate(`document.querySelector("#inventory-status").textContent = ""`);
      }
      await alice.fill("#product-MS-202 form.threshold input[name=amount]", "2");
      await alice.click("#product-MS-202 form.threshold button");
      await alice.waitForSelector("#inventory-status .ok");
      expect(await alice.$$("#inventory-status form")).toHaveLength(0);
      expect(await alice.$$("#products tr")).toHaveLength(rows);
      expect(await alice.$$("#product-MS-202 form")).toHaveLength(2);
      expect(await alice.inputValue("#product-MS-202 form.threshold input[name=amount]")).toBe("2");
      await alice.context().close();
    });

    e2e("the answer alone replaces the row, with no stream to bring it", async () => {
      // No stream: the page's own answer is all it gets. (Its stream's retries are not errors of this test's.)
      const page = await (await browser.newContext()).newPage();
      page.setDefaultTimeout(5000);
      await page.route(/\/sse/, (route) => route.abort());
      await page.goto(herald.url);
      await page.fill('input[name="name"]', "lena");
      await page.click('#sign-in button[type="submit"]');
      await page.waitForSelector("text=Signed in as lena");
      await page.goto(`${herald.url}/inventory`);
      const before = Number(await page.textContent("#product-KB-101 .quantity"));
      await page.fill("#product-KB-101 form.stock input[name=amount]", "1");
      await page.click("#product-KB-101 form.stock button[value=sell]");
      await until(page, `document.querySelector("#product-KB-101 .quantity")?.textContent === "${before - 1}"`);
      expect(await page.$$("#product-KB-101 form")).toHaveLength(2);
      expect(await page.$$("#inventory-status form, #inventory-status template")).toHaveLength(0);
      await page.context().close();
    });

    e2e("Mark read works on /live, and shows nowhere it cannot work", async () => {
      const bob = await signedIn("bob");
      const carl = await signedIn("carl");
      await send(carl, "user:bob", "for bob on live");
      await bob.goto(`${herald.url}/live`);
      await live(herald, bob, "bob");
      expect(await bob.textContent("#unread-count")).toBe("1");
      await bob.click("#notifications li .mark-read");
      await until(bob, `document.querySelector("#unread-count")?.textContent === "0"`);
      await bob.waitForSelector("#notifications li.read");
      // A live one, arriving while the page is open, can be marked read too.
      await send(carl, "user:bob", "second for bob");
      await until(bob, `document.querySelector("#unread-count")?.textContent === "1"`);
      await bob.click("#notifications li.unread .mark-read");
      await until(bob, `document.querySelector("#unread-count")?.textContent === "0"`);

      // Anonymous visitors see no button, on the first paint or live.
      const root = await signedIn("root");
      await send(root, "everyone", "for all");
      for (const path of ["/", "/live"]) {
        const anonymous = await anonymousPage(path);
        await streamOpen(anonymous);
        await anonymous.waitForSelector("#notifications li");
        await send(root, "everyone", `live for all on ${path}`);
        await anonymous.waitForSelector(`#notifications li >> text=live for all on ${path}`);
        expect(await anonymous.$$("#notifications .mark-read:visible")).toHaveLength(0);
        await anonymous.context().close();
      }

      // An embedded feed (signed in or not) shows none: its requests would go to the embedding site.
      await send(carl, "topic:news", "news item");
      await bob.goto(`${herald.url}/`);
      await bob.evaluate(
        `(() => { const d = document.createElement("div"); d.id = "embed-here"; d.setAttribute("hx-get", "/embed/news${htmx === 4 ? "?htmx=4" : ""}"); d.setAttribute("hx-trigger", "load"); document.querySelector("main").append(d); htmx.process(d); })()`,
      );
      await bob.waitForSelector("#embed-here .herald-feed li");
      expect(await bob.$$("#embed-here .mark-read:visible")).toHaveLength(0);
      await bob.context().close();
      await carl.context().close();
      await root.context().close();
    });

    e2e("a broadcast to everyone or to a group raises the unread count", async () => {
      const olga = await signedIn("olga");
      const root = await signedIn("root");
      await live(herald, olga, "olga");
      const before = Number(await olga.textContent("#unread-count"));
      await send(root, "everyone", "to everyone");
      await until(olga, `document.querySelector("#unread-count")?.textContent === "${before + 1}"`);
      await send(root, "group:ops", "to ops");
      await until(olga, `document.querySelector("#unread-count")?.textContent === "${before + 2}"`);
      await send(root, "user:olga", "to olga");
      await until(olga, `document.querySelector("#unread-count")?.textContent === "${before + 3}"`);
      await olga.click(".inbox-bar button[type=submit]");
      await until(olga, `document.querySelector("#unread-count")?.textContent === "0"`);
      await send(root, "everyone", "after mark all");
      await until(olga, `document.querySelector("#unread-count")?.textContent === "1"`);
      await olga.context().close();
      await root.context().close();
    });

    e2e("the ?htmx= choice survives signing in and the Follow form", async () => {
      const other = htmx === 4 ? 2 : 4;
      const page = await (await browser.newContext()).newPage();
      await page.goto(`${herald.url}/?htmx=${other}`);
      await page.fill('input[name="name"]', "dina");
      await page.click('#sign-in button[type="submit"]');
      await page.waitForSelector("text=Signed in as dina");
      expect(await page.getAttribute("body", "data-htmx")).toBe(String(other));
      await page.fill('#topics input[name="topic"]', "orders");
      await page.click('#topics button[type="submit"]');
      await page.waitForSelector("#topics >> text=topic:orders");
      expect(await page.getAttribute("body", "data-htmx")).toBe(String(other));
      await page.context().close();
    });

    e2e("followed topics are kept for the signed-in user when the top bar's links are used", async () => {
      const erik = await signedIn("erik");
      await erik.fill('#topics input[name="topic"]', "orders, market");
      await erik.click('#topics button[type="submit"]');
      await erik.waitForSelector("#topics >> text=topic:market");
      await erik.goto(`${herald.url}/inventory`);
      await erik.click(".bar nav a:text('Notifications')");
      await erik.waitForSelector("#topics >> text=topic:orders");
      expect(await erik.inputValue('#topics input[name="topic"]')).toBe("orders, market");
      // The page's stream follows them too.
      const connect = await erik.evaluate(
        `document.querySelector("#inbox").getAttribute("${htmx === 4 ? "hx-sse:connect" : "sse-connect"}")`,
      );
      expect(connect).toContain("orders");
      // Following nothing is kept as well.
      await erik.fill('#topics input[name="topic"]', "");
      await erik.click('#topics button[type="submit"]');
      await erik.waitForSelector("#topics >> text=Following no topics.");
      await erik.goto(`${herald.url}/`);
      await erik.waitForSelector("#topics >> text=Following no topics.");
      await erik.context().close();
    });

    e2e("a user who may not send to everyone is not offered it", async () => {
      const fay = await signedIn("fay");
      expect(await fay.inputValue('#send-form input[name="target"]')).not.toBe("everyone");
      expect(await fay.$$('#targets option[value="everyone"]')).toHaveLength(0);
      const root = await signedIn("root");
      expect(await root.inputValue('#send-form input[name="target"]')).toBe("everyone");
      await fay.context().close();
      await root.context().close();
    });

    e2e("a topic name in capitals is followed and sent to in lower case", async () => {
      const gus = await signedIn("gus");
      await gus.fill('#topics input[name="topic"]', "Orders");
      await gus.click('#topics button[type="submit"]');
      await gus.waitForSelector("#topics >> text=topic:orders");
      await live(herald, gus, "gus");
      const status = await send(gus, "topic:Orders", "capital");
      expect(status).toContain("topic:orders");
      await gus.waitForSelector("#notifications li >> text=capital");
      await gus.context().close();
    });

    e2e("a message nobody is connected for says it was stored", async () => {
      const hal = await signedIn("hal");
      const status = await send(hal, "user:nobody-here", "later");
      expect(status).toContain("0 connected streams");
      expect(status.toLowerCase()).toContain("stored");
      await hal.context().close();
    });

    e2e("notification times carry their zone", async () => {
      const ivy = await signedIn("ivy");
      await live(herald, ivy, "ivy");
      await send(ivy, "user:ivy", "what time is it");
      await ivy.waitForSelector("#notifications li time");
      const [datetime, label] = await ivy.$eval("#notifications li time", (t) => [
        t.getAttribute("datetime"),
        t.textContent,
      ]);
      expect(datetime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(label).toMatch(/UTC/);
      await ivy.context().close();
    });

    e2e("a watch alert is labelled with the channel it arrives on", async () => {
      const jo = await signedIn("jo");
      await jo.goto(`${herald.url}/inventory`);
      await jo.click("#watch-list li:has-text('USB-C cable') button");
      await jo.waitForSelector("#watch-list li:has-text('USB-C cable') >> text=Watching ✓");
      await jo.goto(`${herald.url}/`);
      await live(herald, jo, "jo");
      const kim = await signedIn("kim");
      await kim.goto(`${herald.url}/inventory`);
      await kim.fill("#product-CB-404 form.stock input[name=amount]", "0");
      await kim.click("#product-CB-404 form.stock button[value=set]");
      await jo.waitForSelector("#notifications li >> text=Low stock: USB-C cable");
      const label = await jo.textContent("#notifications li:has-text('Low stock: USB-C cable') .channel");
      expect(label).toBe("user:jo");
      await jo.context().close();
      await kim.context().close();
    });

    e2e("no page logged an error", () => {
      expect(problems).toEqual([]);
    });
  });
}
