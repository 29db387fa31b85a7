/**
 * The README's screenshots, taken by the browser suite from a real herald so that they show the
 * pages as they are: signed in, with notifications of each priority, an urgent banner, orders in
 * flight, a chat between two people. Every run takes them (under test-results/screenshots/);
 * `npm run screenshots` (HERALD_UPDATE_SCREENSHOTS=1) writes them into docs/screenshots/, where
 * the README shows them. A test keeps the README's list and the files equal.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import type { Herald } from "../../src/app.ts";
import { startTestHerald } from "../helpers.ts";
import { chromiumAvailable, e2eTest, launchBrowser, signedInPage, streamOpen, until } from "./browser.ts";

const run = chromiumAvailable();
const ROOT = join(import.meta.dir, "..", "..");
const IN_DOCS = join(ROOT, "docs", "screenshots");
const OUT = process.env.HERALD_UPDATE_SCREENSHOTS === "1" ? IN_DOCS : join(ROOT, "test-results", "screenshots");

/** The screenshots the README shows: file name, page, window width. */
const SHOTS = [
  { file: "home.png", path: "/", width: 1280 },
  { file: "inventory.png", path: "/inventory", width: 1280 },
  { file: "live.png", path: "/live", width: 1280 },
  { file: "orders.png", path: "/orders", width: 1280 },
  { file: "chat.png", path: "/chat/lobby", width: 1280 },
  { file: "monitor.png", path: "/monitor", width: 1280 },
  { file: "home-phone.png", path: "/", width: 390 },
] as const;

test("the README shows every screenshot, and each is in docs/screenshots/", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const shown = [...readme.matchAll(/\(docs\/screenshots\/([a-z-]+\.png)\)/g)].map((m) => m[1]);
  expect(shown.sort()).toEqual(SHOTS.map((s) => s.file).sort());
  for (const { file } of SHOTS) {
    const bytes = readFileSync(join(IN_DOCS, file));
    // A PNG's signature.
    expect([...bytes.subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
  }
});

describe.if(run)("in Chromium: the README's screenshots", () => {
  let herald: Herald;
  let browser: Browser;
  const e2e = e2eTest(() => browser);
  const problems: string[] = [];

  beforeAll(async () => {
    herald = startTestHerald({
      groups: { admins: ["ada"] },
      publishTokens: ["screenshot-token-0123456789"],
      marketMs: 300,
      metricsMs: 300,
      monitorMs: 300,
      orderStepMs: 400,
    });
    browser = await launchBrowser();
    mkdirSync(OUT, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await herald?.stop();
  });

  const publish = (body: unknown) =>
    fetch(`${herald.url}/api/publish`, {
      method: "POST",
      headers: { authorization: "Bearer screenshot-token-0123456789", "content-type": "application/json" },
      body: JSON.stringify(body),
    }).then((res) => expect(res.status).toBe(200));

  async function shoot(page: Page, file: string): Promise<void> {
    await page.screenshot({ path: join(OUT, file), fullPage: false });
    expect(existsSync(join(OUT, file))).toBe(true);
  }

  e2e(
    "takes each page, signed in, with live content",
    async () => {
      const ada = await signedInPage(browser, herald.url, "ada", problems);
      const bob = await signedInPage(browser, herald.url, "bob", problems);
      await ada.setViewportSize({ width: 1280, height: 860 });
      await streamOpen(ada, 10_000);
      await publish({
        target: "user:ada",
        title: "Order 17",
        message: "Shipped today.",
        level: "success",
        url: "/orders",
      });
      await publish({
        target: "everyone",
        message: "Maintenance tonight at 22:00 UTC.",
        level: "warning",
        priority: "high",
      });
      await publish({ target: "topic:orders", message: "New order from bob: 2 × espresso beans.", priority: "low" });
      await publish({
        target: "user:ada",
        title: "Freezer 2",
        message: "Temperature above −15 °C for 10 minutes.",
        level: "error",
        priority: "urgent",
        url: "/inventory",
      });
      await until(ada, `document.querySelectorAll("#notifications li.notification").length >= 3`, 10_000);
      await until(ada, `document.querySelector("#urgent-banner .urgent-notice") !== null`, 10_000);

      for (const { file, path, width } of SHOTS) {
        if (path.startsWith("/chat")) continue;
        if (path === "/orders") {
          await ada.goto(`${herald.url}/orders`);
          await ada.selectOption('#order-form select[name="sku"]', { index: 1 });
          await ada.click("#order-form button");
          await ada.waitForSelector("#orders li", { timeout: 10_000 });
          await Bun.sleep(1500);
        } else {
          await ada.setViewportSize({ width, height: width === 390 ? 844 : 860 });
          await ada.goto(`${herald.url}${path}`);
          await streamOpen(ada, 10_000);
          await Bun.sleep(path === "/live" || path === "/monitor" ? 1200 : 400);
        }
        await shoot(ada, file);
        // The banner shows on every page until dismissed: on the first two, then dismissed.
        if (path === "/inventory") {
          await ada.click("#urgent-banner button.dismiss");
          await until(ada, `document.querySelector("#urgent-banner .urgent-notice") === null`, 10_000);
        }
      }

      // The chat: two people, a message each, one typing.
      await ada.setViewportSize({ width: 1280, height: 860 });
      await ada.goto(`${herald.url}/chat/lobby`);
      await bob.goto(`${herald.url}/chat/lobby`);
      await streamOpen(ada, 10_000);
      await streamOpen(bob, 10_000);
      await bob.fill('.chat-form input[name="text"]', "Morning! Is the espresso restock in?");
      await bob.press('.chat-form input[name="text"]', "Enter");
      await until(ada, `document.querySelectorAll("#chat-messages li").length >= 1`, 10_000);
      await ada.fill('.chat-form input[name="text"]', "Yes, 40 bags arrived at 9.");
      await ada.press('.chat-form input[name="text"]', "Enter");
      await until(bob, `document.querySelectorAll("#chat-messages li").length >= 2`, 10_000);
      await bob.type('.chat-form input[name="text"]', "Great, I'll ");
      await Bun.sleep(1500);
      await shoot(ada, "chat.png");
    },
    120_000,
  );
});
