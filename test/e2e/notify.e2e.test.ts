import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import type { Herald } from "../../src/app.ts";
import { startTestHerald } from "../helpers.ts";
import { chromiumAvailable, launchBrowser, live, signedInPage, until } from "./browser.ts";

const run = chromiumAvailable();

describe.if(run)("in Chromium: sign in, send, and see it arrive", () => {
  let herald: Herald;
  let browser: Browser;
  const problems: string[] = [];

  const signedIn = (name: string, options?: { expectErrors?: boolean }) => signedInPage(browser, herald.url, name, problems, options);

  beforeAll(async () => {
    herald = startTestHerald();
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await herald?.stop();
  });

  test("alice's message appears at the top of bob's list, rendered by the server and swapped by htmx", async () => {
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

  test("hostile text shows as text and runs nothing", async () => {
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

  test("a bad target shows the server's message next to the form", async () => {
    // Chromium logs every 4xx answer to the console; this one is the point of the test.
    const alice = await signedIn("alice", { expectErrors: true });
    await alice.fill('#send-form input[name="target"]', "room:1");
    await alice.fill('#send-form textarea[name="message"]', "x");
    await alice.click('#send-form button[type="submit"]');
    await alice.waitForSelector('#send-status .error >> text=Unknown target "room:1"');
  });

  test("no page logged an error or opened a dialog", () => {
    expect(problems).toEqual([]);
  });
});
