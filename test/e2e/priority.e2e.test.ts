import { afterAll, beforeAll, describe, expect } from "bun:test";
import type { Browser } from "playwright-core";
import type { Herald } from "../../src/app.ts";
import { HTMX_VERSIONS } from "../../src/server/htmx.ts";
import { startTestHerald } from "../helpers.ts";
import { chromiumAvailable, e2eTest, launchBrowser, live, signedInPage, trackStream, until } from "./browser.ts";

const run = chromiumAvailable();

for (const htmx of HTMX_VERSIONS) {
  describe.if(run)(`in Chromium: an urgent notification's banner on every page (htmx ${htmx})`, () => {
    let herald: Herald;
    let browser: Browser;
    const e2e = e2eTest(() => browser);
    const problems: string[] = [];

    beforeAll(async () => {
      herald = startTestHerald({ htmx });
      browser = await launchBrowser();
    });

    afterAll(async () => {
      await browser?.close();
      await herald?.stop();
      expect(problems).toEqual([]);
    });

    e2e("shows on the inventory page and the inbox, links where it says, and Dismiss clears it", async () => {
      const alice = await signedInPage(browser, herald.url, "alice", problems);
      const bob = await signedInPage(browser, herald.url, "bob", problems);
      const shop = await bob.context().newPage();
      trackStream(shop);
      await shop.goto(`${herald.url}/inventory`);
      await live(herald, bob, "bob");
      await until(shop, `document.querySelector("#urgent-banner") !== null`);

      await alice.fill('#send-form input[name="target"]', "user:bob");
      await alice.fill('#send-form textarea[name="message"]', "Freezer door open <b>now</b>");
      await alice.selectOption('#send-form select[name="priority"]', "urgent");
      await alice.fill('#send-form input[name="url"]', "/inventory");
      await alice.click('#send-form button[type="submit"]');
      await alice.waitForSelector("#send-status >> text=Sent to");

      for (const page of [shop, bob]) {
        await page.waitForSelector("#urgent-banner .urgent-notice", { timeout: 5000 });
        expect(await page.textContent("#urgent-banner .message")).toBe("Freezer door open <b>now</b>");
        expect(await page.getAttribute("#urgent-banner a", "href")).toBe("/inventory");
        expect(await page.isVisible("#urgent-banner")).toBe(true);
      }
      // In the inbox list too, marked urgent, with its link.
      await bob.waitForSelector("#notifications li.priority-urgent");
      expect(await bob.textContent("#notifications li.priority-urgent .priority")).toBe("urgent");
      expect(await bob.getAttribute("#notifications li.priority-urgent .action a", "href")).toBe("/inventory");

      await shop.click("#urgent-banner button.dismiss");
      await until(shop, `document.querySelector("#urgent-banner").children.length === 0`);
      expect(await shop.isVisible("#urgent-banner")).toBe(false);
      // Dismissed means read: the inbox page's count drops to 0.
      await until(bob, `document.querySelector("#unread-count")?.textContent === "0"`);

      // A page opened afterwards does not show it again.
      const again = await bob.context().newPage();
      trackStream(again);
      await again.goto(`${herald.url}/inventory`);
      await Bun.sleep(500);
      expect(await again.$$("#urgent-banner .urgent-notice")).toHaveLength(0);
    });
  });
}
