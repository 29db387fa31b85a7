import { afterAll, beforeAll, describe, expect } from "bun:test";
import type { Browser } from "playwright-core";
import type { Herald } from "../../src/app.ts";
import { HTMX_VERSIONS } from "../../src/server/htmx.ts";
import { startTestHerald } from "../helpers.ts";
import { chromiumAvailable, e2eTest, launchBrowser, live, signedInPage, until } from "./browser.ts";

const run = chromiumAvailable();

for (const htmx of HTMX_VERSIONS) {
  describe.if(run)(`in Chromium: sign in, send, and see it arrive (htmx ${htmx})`, () => {
    let herald: Herald;
    let browser: Browser;
    const e2e = e2eTest(() => browser);
    const problems: string[] = [];

    const signedIn = (name: string, options?: { expectErrors?: boolean }) =>
      signedInPage(browser, herald.url, name, problems, options);

    beforeAll(async () => {
      herald = startTestHerald({ htmx });
      browser = await launchBrowser();
    });

    afterAll(async () => {
      await browser?.close();
      await herald?.stop();
    });

    e2e("alice's message appears at the top of bob's list, rendered by the server and swapped by htmx", async () => {
      const alice = await signedIn("alice");
      const bob = await signedIn("bob");
      await live(herald, bob, "bob");

      await alice.fill('#send-form input[name="target"]', "user:bob");
      await alice.fill('#send-form input[name="title"]', "Hello");
      await alice.fill('#send-form textarea[name="message"]', "First");
      await alice.click('#send-form button[type="submit"]');
      await alice.waitForSelector("#send-status >> text=Sent to 1 connected stream on user:bob.");

      await bob.waitForSelector("#notifications li.notification");
      await alice.fill('#send-form textarea[name="message"]', "Second");
      await alice.click('#send-form button[type="submit"]');
      await until(bob, `document.querySelectorAll("#notifications li").length === 2`);
      const messages = await bob.$$eval("#notifications li .message", (items) => items.map((item) => item.textContent));
      expect(messages).toEqual(["Second", "First"]);
      expect(await bob.textContent("#notifications li:last-child .title")).toBe("Hello");
      expect(await bob.textContent("#notifications li:first-child .from")).toBe("alice");
      // The form came back out of band: message cleared, target kept.
      expect(await alice.inputValue('#send-form textarea[name="message"]')).toBe("");
      expect(await alice.inputValue('#send-form input[name="target"]')).toBe("user:bob");
      expect(await alice.$$("#notifications li")).toHaveLength(0);
    });

    e2e("hostile text shows as text and runs nothing", async () => {
      const alice = await signedIn("alice");
      const bob = await signedIn("bob");
      await live(herald, bob, "bob");
      const hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>";
      await alice.fill('#send-form input[name="target"]', "user:bob");
      await alice.fill('#send-form textarea[name="message"]', hostile);
      await alice.click('#send-form button[type="submit"]');
      await bob.waitForSelector("#notifications li.notification");
      expect(await bob.textContent("#notifications li .message")).toBe(hostile);
      expect(await bob.$$("#notifications img, #notifications script")).toHaveLength(0);
    });

    e2e("a page following topic orders gets orders notifications and not market ones", async () => {
      const olive = await signedIn("olive");
      const pat = await signedIn("pat");
      await pat.goto(`${herald.url}/?topic=orders`);
      await live(herald, pat, "pat");
      for (const [target, message] of [
        ["topic:market", "ACME up 3%"],
        ["topic:orders", "Order 17 shipped"],
      ]) {
        await olive.fill('#send-form input[name="target"]', target!);
        await olive.fill('#send-form textarea[name="message"]', message!);
        await olive.click('#send-form button[type="submit"]');
        await olive.waitForSelector(`#send-status >> text=on ${target}.`);
      }
      // Events arrive in order: had the market one reached pat, it would be there before this one.
      await pat.waitForSelector("#notifications li >> text=Order 17 shipped");
      const messages = await pat.$$eval("#notifications li .message", (items) => items.map((item) => item.textContent));
      expect(messages).toEqual(["Order 17 shipped"]);
      expect(await pat.textContent("#notifications li .channel")).toBe("topic:orders");
    });

    e2e("a bad target shows the server's message next to the form", async () => {
      // Chromium logs every 4xx answer to the console; this one is the point of the test.
      const alice = await signedIn("alice", { expectErrors: true });
      await alice.fill('#send-form input[name="target"]', "room:1");
      await alice.fill('#send-form textarea[name="message"]', "x");
      await alice.click('#send-form button[type="submit"]');
      await alice.waitForSelector('#send-status .error >> text=Unknown target "room:1"');
    });

    e2e("no page logged an error or opened a dialog", () => {
      expect(problems).toEqual([]);
    });
  });
}
