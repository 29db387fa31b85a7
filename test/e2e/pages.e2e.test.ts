import { afterAll, beforeAll, describe, expect } from "bun:test";
import type { Browser } from "playwright-core";
import type { Herald } from "../../src/app.ts";
import { HTMX_VERSIONS } from "../../src/server/htmx.ts";
import { startTestHerald } from "../helpers.ts";
import { chromiumAvailable, e2eTest, launchBrowser, signedInPage, streamOpen, until } from "./browser.ts";

const run = chromiumAvailable();

for (const htmx of HTMX_VERSIONS) {
  describe.if(run)(`in Chromium: the inventory, orders and live pages (htmx ${htmx})`, () => {
    let herald: Herald;
    let browser: Browser;
    const e2e = e2eTest(() => browser);
    const problems: string[] = [];

    const signedIn = (name: string) => signedInPage(browser, herald.url, name, problems);

    beforeAll(async () => {
      herald = startTestHerald({ orderStepMs: 150, marketMs: 100, metricsMs: 100, htmx });
      browser = await launchBrowser();
    });

    afterAll(async () => {
      await browser?.close();
      await herald?.stop();
    });

    e2e(
      "a sale that drops a product below its threshold shows the alert and the new row on another page; a restock clears it",
      async () => {
        const alice = await signedIn("alice");
        const bob = await signedIn("bob");
        await alice.goto(`${herald.url}/inventory`);
        await bob.goto(`${herald.url}/inventory`);
        await streamOpen(alice);
        await streamOpen(bob);
        expect(await bob.$$("#alerts li")).toHaveLength(1);

        // KB-101: 12 in stock, threshold 5.
        await alice.fill("#product-KB-101 form.stock input[name=amount]", "9");
        await alice.click("#product-KB-101 form.stock button[value=sell]");
        await alice.waitForSelector("#inventory-status >> text=Sold 9: Mechanical keyboard is at 3");
        await bob.waitForSelector("#alert-KB-101");
        expect(await bob.textContent("#alert-KB-101")).toContain(
          "Mechanical keyboard (KB-101) is at 3, below its threshold of 5.",
        );
        expect(await bob.textContent("#product-KB-101 .quantity")).toBe("3");
        // htmx settles attributes of a replaced element after a short delay, so wait for the class.
        await until(bob, `document.querySelector("#product-KB-101")?.classList.contains("low")`);
        // The row swapped in by the stream still works: bob restocks from it.
        await bob.fill("#product-KB-101 form.stock input[name=amount]", "4");
        await bob.click("#product-KB-101 form.stock button[value=restock]");
        await until(alice, `document.querySelector("#product-KB-101 .quantity")?.textContent === "7"`);
        await until(alice, `document.querySelector("#alert-KB-101") === null`);
        await until(alice, `document.querySelector("#product-KB-101")?.classList.contains("ok")`);
        expect(await alice.$$("#alerts li")).toHaveLength(1);
        await alice.context().close();
        await bob.context().close();
      },
    );

    e2e("a watched product running low reaches the watcher's inbox on the home page", async () => {
      const carol = await signedIn("carol");
      const dave = await signedIn("dave");
      await carol.goto(`${herald.url}/inventory`);
      await carol.click("#watch-list li:has-text('Laptop dock') button");
      await carol.waitForSelector("#watch-list li:has-text('Laptop dock') >> text=Watching ✓");
      await carol.goto(`${herald.url}/`);
      await streamOpen(carol);
      await dave.goto(`${herald.url}/inventory`);
      await dave.fill("#product-DK-606 form.stock input[name=amount]", "2");
      await dave.click("#product-DK-606 form.stock button[value=set]");
      await carol.waitForSelector("#notifications li >> text=Low stock: Laptop dock");
      await until(carol, `document.querySelector("#unread-count")?.textContent === "1"`);
      await carol.context().close();
      await dave.context().close();
    });

    e2e("an order's steps arrive as a live timeline, only on the buyer's page", async () => {
      const erin = await signedIn("erin");
      const frank = await signedIn("frank");
      await erin.goto(`${herald.url}/orders`);
      await frank.goto(`${herald.url}/orders`);
      await streamOpen(erin);
      await streamOpen(frank);
      await erin.selectOption("#order-form select[name=sku]", "MS-202");
      await erin.fill("#order-form input[name=quantity]", "2");
      await erin.click("#order-form button");
      await erin.waitForSelector("#order-status >> text=placed: 2 × Wireless mouse");
      await erin.waitForSelector("#orders li.order");
      await erin.waitForSelector("#orders li.order[data-status=delivered]", { timeout: 5000 });
      const steps = await erin.$$eval("#orders li.order .timeline li.done", (items) =>
        items.map((i) => i.textContent?.split(" ")[0]),
      );
      expect(steps).toEqual(["processing", "confirmed", "shipped", "delivered"]);
      expect(await frank.$$("#orders li")).toHaveLength(0);
      await erin.context().close();
      await frank.context().close();
    });

    e2e("the live page swaps prices and figures in place", async () => {
      const page = await signedIn("gina");
      await page.goto(`${herald.url}/live`);
      await streamOpen(page);
      const first = await page.textContent("#market time");
      await until(page, `document.querySelector("#market time")?.textContent !== ${JSON.stringify(first)}`, 5000);
      expect(await page.$$("#market tr[data-symbol]")).toHaveLength(5);
      await until(page, `Number(document.querySelector("#metrics-streams")?.textContent) >= 1`);
      await page.context().close();
    });

    e2e("no page logged an error or opened a dialog", () => {
      expect(problems).toEqual([]);
    });
  });
}
