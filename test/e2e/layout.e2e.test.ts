/**
 * In Chromium: every page fits a phone (390 px) and a desktop (1280 px) window. The document does
 * not scroll sideways, nothing in the main column sticks out of it or overflows its own box, and
 * the footer sits in the column. Each page's screenshot is saved under test-results/e2e/.
 */
import { afterAll, beforeAll, describe, expect } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import type { Herald } from "../../src/app.ts";
import { startTestHerald } from "../helpers.ts";
import { chromiumAvailable, e2eTest, launchBrowser, SCREENSHOTS, signedInPage, streamOpen } from "./browser.ts";

const run = chromiumAvailable();

const WIDTHS = [390, 1280] as const;
const PAGES = ["/", "/inventory", "/live", "/orders", "/monitor"] as const;

/** What overflows on the page: the document sideways, elements of `main` out of it or out of their own box. */
function overflows(page: Page): Promise<string[]> {
  // A string: the test's TypeScript has no DOM types, and the page runs it as it is.
  return page.evaluate(`(() => {
    const problems = [];
    const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + [...el.classList].map((c) => "." + c).join("");
    if (document.documentElement.scrollWidth > innerWidth)
      problems.push("the document is " + document.documentElement.scrollWidth + " px wide in a " + innerWidth + " px window");
    const main = document.querySelector("main");
    const column = main.getBoundingClientRect();
    for (const el of [main, ...main.querySelectorAll("*")]) {
      if (getComputedStyle(el).display === "none") continue;
      const box = el.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue;
      if (box.left < column.left - 1 || box.right > column.right + 1)
        problems.push(name(el) + " sticks out of main (" + Math.round(box.left) + "-" + Math.round(box.right) + " px)");
      // A text field scrolls its own text; anything else whose content is wider than it overflows.
      if (!el.matches("input, textarea, select") && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1)
        problems.push(name(el) + " overflows its box (" + el.scrollWidth + " px in " + el.clientWidth + " px)");
    }
    const footer = document.querySelector("body > footer");
    if (!footer) return problems;
    const box = footer.getBoundingClientRect();
    const text = box.left + parseFloat(getComputedStyle(footer).paddingLeft);
    const card = main.querySelector(".card");
    const cardText = card.getBoundingClientRect().left + card.clientLeft + parseFloat(getComputedStyle(card).paddingLeft);
    if (box.left < column.left - 1 || box.right > column.right + 1) problems.push("the footer is outside the column");
    if (Math.abs(text - cardText) > 1) problems.push("the footer's text does not line up with the cards' text");
    return problems;
  })()`);
}

describe.if(run)("in Chromium: the layout at 390 px and 1280 px", () => {
  let herald: Herald;
  let browser: Browser;
  const e2e = e2eTest(() => browser);
  const problems: string[] = [];

  beforeAll(async () => {
    herald = startTestHerald({ groups: { admins: ["root"] }, marketMs: 200, metricsMs: 200, monitorMs: 200 });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await herald?.stop();
  });

  e2e(
    "every page fits both widths, and its screenshot is saved",
    async () => {
      mkdirSync(SCREENSHOTS, { recursive: true });
      const root = await signedInPage(browser, herald.url, "root", problems);
      root.setDefaultTimeout(5000);
      // Long words and a long topic list: what a real inbox has.
      await root.fill('#topics input[name="topic"]', "orders, market, inventory, a-rather-long-topic-name-for-a-phone");
      await root.click('#topics button[type="submit"]');
      await root.waitForSelector("#topics >> text=topic:market");
      await root.fill('#send-form input[name="target"]', "everyone");
      await root.fill("#send-form input[name=title]", "Deployment finished for herald-production-eu-west-1");
      await root.fill(
        "#send-form textarea[name=message]",
        `See https://example.com/${"very-long-path/".repeat(8)} for details.`,
      );
      await root.click('#send-form button[type="submit"]');
      await root.waitForSelector("#send-status .ok");
      const found: Record<string, string[]> = {};
      const files: string[] = [];
      for (const width of WIDTHS) {
        await root.setViewportSize({ width, height: 900 });
        for (const path of PAGES) {
          // Prices of five digits, the widest the market shows (its walk is pulled back toward
          // where it opened, so it stays there for a few seconds): a four-digit price once made
          // the quotes table 8 px too wide for a phone.
          if (path === "/live") for (const quote of herald.shop!.live.market.quotes) quote.price = 99_999.99;
          await root.goto(`${herald.url}${path}`);
          await streamOpen(root);
          // An event on the page's stream, so the monitor has a last event to show.
          await herald.hub.publishToEveryone({ event: "notification", data: "<li>ping</li>" });
          // The live regions have had their first update.
          await Bun.sleep(path === "/monitor" || path === "/live" ? 500 : 100);
          const file = join(SCREENSHOTS, `layout-${path === "/" ? "home" : path.slice(1)}-${width}.png`);
          await root.screenshot({ path: file, fullPage: true });
          files.push(file);
          const problems = await overflows(root);
          if (problems.length) found[`${path} at ${width} px`] = problems;
        }
      }
      const visitor = await (await browser.newContext({ viewport: { width: 390, height: 900 } })).newPage();
      await visitor.goto(herald.url);
      const file = join(SCREENSHOTS, "layout-home-anonymous-390.png");
      await visitor.screenshot({ path: file, fullPage: true });
      files.push(file);
      const anonymous = await overflows(visitor);
      if (anonymous.length) found["/ anonymous at 390 px"] = anonymous;
      console.log(`layout screenshots: ${files.join(", ")}`);
      expect(found).toEqual({});
      await root.context().close();
      await visitor.context().close();
    },
    60_000,
  );

  e2e("no page logged an error", () => {
    expect(problems).toEqual([]);
  });
});
