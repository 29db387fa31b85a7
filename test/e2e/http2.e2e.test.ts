import { afterAll, beforeAll, describe, expect } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import type { Herald } from "../../src/app.ts";
import { HTMX_VERSIONS } from "../../src/server/htmx.ts";
import { devCertificate } from "../../src/server/tls.ts";
import { eventually, startTestHerald } from "../helpers.ts";
import { chromiumAvailable, e2eTest, launchBrowser, streamOpen, trackStream, until } from "./browser.ts";

const run = chromiumAvailable();
const TABS = 10;

for (const htmx of HTMX_VERSIONS) {
  describe.if(run)(`in Chromium over HTTP/2: one person's ${TABS} tabs (htmx ${htmx})`, () => {
    let herald: Herald;
    let browser: Browser;
    let certDir: string;
    const e2e = e2eTest(() => browser);
    const problems: string[] = [];
    const home = () => `${herald.url}/?htmx=${htmx}`;

    beforeAll(async () => {
      certDir = mkdtempSync(join(tmpdir(), "herald-h2-e2e-"));
      const { cert, key } = await devCertificate(certDir);
      herald = startTestHerald({ tlsCert: cert, tlsKey: key });
      browser = await launchBrowser();
    });

    afterAll(async () => {
      await browser?.close();
      await herald?.stop();
      rmSync(certDir, { recursive: true, force: true });
    });

    /** A tab in `context`, its stream tracked and its errors collected. */
    const tab = async (context: BrowserContext, who: string): Promise<Page> => {
      const page = await context.newPage();
      trackStream(page);
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(`${who}: console error: ${message.text()} at ${page.url()}`);
      });
      page.on("pageerror", (error) => problems.push(`${who}: page error: ${error.message}`));
      return page;
    };

    /** A browser (its own cookies) signed in as `name` through the sign-in form. */
    const signedIn = async (name: string): Promise<{ context: BrowserContext; page: Page }> => {
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      // Without SharedWorker each tab holds a stream of its own (with it they share one, see
      // tabs.e2e.test.ts): HTTP/2 alone must carry them all.
      await context.addInitScript({ content: "delete window.SharedWorker;" });
      const page = await tab(context, name);
      await page.goto(home());
      await page.fill('input[name="name"]', name);
      await page.click('#sign-in button[type="submit"]');
      await page.waitForSelector(`text=Signed in as ${name}`);
      return { context, page };
    };

    e2e(
      `all ${TABS} tabs load over h2, hold their streams, and each receives the notification`,
      async () => {
        const alice = await signedIn("alice");
        await alice.page.close();
        const tabs = await Promise.all(
          Array.from({ length: TABS }, (_, i) => tab(alice.context, `alice's tab ${i + 1}`)),
        );
        await Promise.all(tabs.map((page) => page.goto(home())));
        for (const page of tabs) {
          await page.waitForSelector("text=Signed in as alice");
          await streamOpen(page, 10_000);
          expect(await page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol")).toBe("h2");
          expect(await page.evaluate("String(htmx.version)")).toStartWith(String(htmx));
        }
        expect(herald.hub.usersStreams("user:alice", "alice")).toBe(TABS);

        const bob = await signedIn("bob");
        await bob.page.fill('#send-form input[name="target"]', "user:alice");
        await bob.page.fill('#send-form textarea[name="message"]', "To every tab");
        await bob.page.click('#send-form button[type="submit"]');
        await bob.page.waitForSelector(`#send-status >> text=Sent to ${TABS} connected streams on user:alice.`);
        for (const page of tabs) {
          await until(page, `document.querySelectorAll("#notifications li.notification").length === 1`, 10_000);
          expect(await page.textContent("#notifications li .message")).toBe("To every tab");
        }
      },
      90_000,
    );

    e2e("no page logged an error", () => {
      expect(problems).toEqual([]);
    });
  });
}

describe.if(run)("in Chromium over HTTP/1.1: one person's tabs past six", () => {
  let herald: Herald;
  let browser: Browser;
  const e2e = e2eTest(() => browser);

  beforeAll(async () => {
    herald = startTestHerald();
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await herald?.stop();
  });

  e2e(
    "only six of eight tabs hold a stream, and only six receive the notification",
    async () => {
      const signIn = async (name: string): Promise<{ context: BrowserContext; page: Page }> => {
        const context = await browser.newContext();
        // A stream per tab, as a browser without SharedWorker has: the limit HTTP/2 lifts.
        await context.addInitScript({ content: "delete window.SharedWorker;" });
        const page = await context.newPage();
        await page.goto(herald.url);
        await page.fill('input[name="name"]', name);
        await page.click('#sign-in button[type="submit"]');
        await page.waitForSelector(`text=Signed in as ${name}`);
        return { context, page };
      };
      const alice = await signIn("alice");
      await alice.page.close();
      const tabs = await Promise.all(Array.from({ length: 8 }, () => alice.context.newPage()));
      for (const page of tabs) void page.goto(herald.url).catch(() => {});
      await eventually(() => herald.hub.usersStreams("user:alice", "alice") === 6, "six of alice's streams", 30_000);

      const bob = await signIn("bob");
      await bob.page.fill('#send-form input[name="target"]', "user:alice");
      await bob.page.fill('#send-form textarea[name="message"]', "To every tab");
      await bob.page.click('#send-form button[type="submit"]');
      await bob.page.waitForSelector("#send-status >> text=Sent to 6 connected streams on user:alice.");
      const received = async () => {
        const counts = await Promise.all(
          tabs.map((page) => page.evaluate(`document.querySelectorAll("#notifications li.notification").length`)),
        );
        return counts.filter((n) => n === 1).length;
      };
      const deadline = Date.now() + 10_000;
      while ((await received()) < 6 && Date.now() < deadline) await Bun.sleep(50);
      expect(await received()).toBe(6);
      expect(herald.hub.usersStreams("user:alice", "alice")).toBe(6);
    },
    90_000,
  );
});
