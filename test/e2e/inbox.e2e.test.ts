import { afterAll, beforeAll, describe, expect } from "bun:test";
import type { Browser, Page } from "playwright-core";
import type { Herald } from "../../src/app.ts";
import { HTMX_VERSIONS } from "../../src/server/htmx.ts";
import { startTestHerald } from "../helpers.ts";
import { chromiumAvailable, e2eTest, launchBrowser, live, signedInPage, until } from "./browser.ts";

const run = chromiumAvailable();

for (const htmx of HTMX_VERSIONS) {
  describe.if(run)(`in Chromium: the inbox (htmx ${htmx})`, () => {
    let herald: Herald;
    let browser: Browser;
    const e2e = e2eTest(() => browser);
    const problems: string[] = [];

    const signedIn = (name: string) => signedInPage(browser, herald.url, name, problems);

    async function send(page: Page, target: string, message: string): Promise<void> {
      await page.fill('#send-form input[name="target"]', target);
      await page.fill('#send-form textarea[name="message"]', message);
      await page.click('#send-form button[type="submit"]');
      await page.waitForSelector("#send-status .ok");
      await page.evaluate(`document.querySelector("#send-status").textContent = ""`);
    }

    beforeAll(async () => {
      herald = startTestHerald({ eventLog: "sqlite", htmx });
      browser = await launchBrowser();
    });

    afterAll(async () => {
      await browser?.close();
      await herald?.stop();
    });

    e2e("what was sent while carol was away is there when she signs in, counted as unread", async () => {
      const dave = await signedIn("dave");
      await send(dave, "user:carol", "sent while you were away");
      await send(dave, "user:carol", "and another");
      const carol = await signedIn("carol");
      await live(herald, carol, "carol");
      expect(await carol.textContent("#unread-count")).toBe("2");
      const messages = await carol.$$eval("#notifications li .message", (items) =>
        items.map((item) => item.textContent),
      );
      expect(messages).toEqual(["and another", "sent while you were away"]);
    });

    e2e("a live notification raises the count; Mark read lowers it and greys the item", async () => {
      const erin = await signedIn("erin");
      const frank = await signedIn("frank");
      await live(herald, frank, "frank");
      await send(erin, "user:frank", "hello frank");
      await frank.waitForSelector("#notifications li.unread");
      await until(frank, `document.querySelector("#unread-count")?.textContent === "1"`);
      await frank.click("#notifications li .mark-read");
      await until(frank, `document.querySelector("#unread-count")?.textContent === "0"`);
      await frank.waitForSelector("#notifications li.read");
      expect(await frank.$$("#notifications .mark-read")).toHaveLength(0);
      // The read state is kept: a reload shows it read.
      await frank.reload();
      await frank.waitForSelector("#notifications li.read");
      expect(await frank.textContent("#unread-count")).toBe("0");
    });

    e2e("Mark all read clears the count and every item", async () => {
      const gina = await signedIn("gina");
      const hank = await signedIn("hank");
      await send(gina, "user:hank", "one");
      await send(gina, "user:hank", "two");
      await hank.reload();
      await live(herald, hank, "hank");
      expect(await hank.textContent("#unread-count")).toBe("2");
      await hank.click(".inbox-bar button[type=submit]");
      await until(hank, `document.querySelector("#unread-count")?.textContent === "0"`);
      await until(hank, `document.querySelectorAll("#notifications li.read").length === 2`);
    });

    e2e("no page logged an error", () => {
      expect(problems).toEqual([]);
    });
  });
}
