import { afterAll, beforeAll, describe, expect } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import type { Herald } from "../../src/app.ts";
import { HTMX_VERSIONS } from "../../src/server/htmx.ts";
import { eventually, postForm, signIn, startTestHerald } from "../helpers.ts";
import { chromiumAvailable, e2eTest, launchBrowser, streamOpen, trackStream, until } from "./browser.ts";

const run = chromiumAvailable();

for (const htmx of HTMX_VERSIONS) {
  describe.if(run)(`in Chromium: a server restart while the page is open (htmx ${htmx})`, () => {
    let browser: Browser;
    const e2e = e2eTest(() => browser);
    let herald: Herald | undefined;
    const dataDir = mkdtempSync(join(tmpdir(), "herald-restart-e2e-"));

    beforeAll(async () => {
      browser = await launchBrowser();
    });

    afterAll(async () => {
      await browser?.close();
      await herald?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    e2e(
      "notifications sent around the restart all appear, none twice",
      async () => {
        const config = { eventLog: "sqlite" as const, dataDir, retryMs: 300, htmx };
        herald = startTestHerald(config);
        const port = Number(new URL(herald.url).port);
        const sender = await signIn(herald, "sender");

        const context = await browser.newContext();
        const page = await context.newPage();
        trackStream(page);
        await page.goto(herald.url);
        await page.fill('input[name="name"]', "alice");
        await page.click('#sign-in button[type="submit"]');
        await page.waitForSelector("text=Signed in as alice");
        await streamOpen(page);

        await postForm(herald, "/notify", { target: "user:alice", message: "before" }, { session: sender });
        await until(page, `document.querySelectorAll("#notifications li").length === 1`);

        await herald.stop();
        herald = startTestHerald({ ...config, port });
        // The session and its CSRF token survive: the secret is kept in the data directory.
        await postForm(
          herald,
          "/notify",
          { target: "user:alice", message: "right after the restart" },
          { session: sender },
        );
        await eventually(() => herald!.hub.isConnected("alice"), "alice's page to reconnect", 10_000);
        await postForm(herald, "/notify", { target: "user:alice", message: "once back" }, { session: sender });

        await until(page, `document.querySelectorAll("#notifications li").length === 3`, 10_000);
        await Bun.sleep(300);
        const messages = await page.$$eval("#notifications li .message", (items) =>
          items.map((item) => item.textContent),
        );
        expect(messages).toEqual(["once back", "right after the restart", "before"]);
      },
      30_000,
    );
  });
}
