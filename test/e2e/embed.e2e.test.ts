import { afterAll, beforeAll, describe, expect } from "bun:test";
import type { Browser } from "playwright-core";
import type { Herald } from "../../src/app.ts";
import { HTMX_VERSIONS } from "../../src/server/htmx.ts";
import { embedPage } from "../../examples/embed-page.ts";
import { eventually, startTestHerald } from "../helpers.ts";
import { chromiumAvailable, e2eTest, launchBrowser, until } from "./browser.ts";

const run = chromiumAvailable();

function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

for (const htmx of HTMX_VERSIONS) {
  describe.if(run)(`in Chromium: a page on another origin embeds a live feed (htmx ${htmx})`, () => {
    let browser: Browser;
    const e2e = e2eTest(() => browser);
    let herald: Herald;
    let shop: ReturnType<typeof Bun.serve>;

    beforeAll(async () => {
      browser = await launchBrowser();
      // The shop on 127.0.0.1, herald on localhost: two origins.
      shop = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("") });
      const shopOrigin = `http://127.0.0.1:${shop.port}`;
      // The fragment's stream URL is absolute only with HERALD_PUBLIC_URL, which needs the port first.
      const port = freePort();
      const heraldUrl = `http://localhost:${port}`;
      herald = startTestHerald({
        corsOrigins: [shopOrigin],
        host: "127.0.0.1",
        port,
        publicUrl: new URL(heraldUrl),
        htmx,
      });
      shop.reload({
        fetch: () =>
          new Response(embedPage(heraldUrl, "orders", htmx), {
            headers: { "content-type": "text/html; charset=utf-8" },
          }),
      });
    });

    afterAll(async () => {
      await browser?.close();
      await herald?.stop();
      shop?.stop(true);
    });

    e2e("the fragment loads cross-origin and notifications arrive live", async () => {
      await herald.hub.publishToTopic("orders", { event: "notification", data: '<li class="n">order 1</li>' });
      const page = await (await browser.newContext()).newPage();
      const errors: string[] = [];
      page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
      await page.goto(`http://127.0.0.1:${shop.port}/`);
      await page.waitForSelector(".herald-feed li.n");
      await eventually(() => herald.hub.subscriberCount("topic:orders") === 1, "the embedded stream", 5000);
      await herald.hub.publishToTopic("orders", { event: "notification", data: '<li class="n">order 2</li>' });
      await until(page, `document.querySelectorAll(".herald-feed li.n").length === 2`);
      expect(await page.$$eval(".herald-feed li.n", (items) => items.map((i) => i.textContent))).toEqual([
        "order 2",
        "order 1",
      ]);
      // Among them the "unsafe header" errors htmx causes cross-origin unless HX-* headers are exposed.
      expect(errors).toEqual([]);
    });
  });
}
