import { afterAll, beforeAll, describe, expect } from "bun:test";
import type { Browser, Page } from "playwright-core";
import type { Herald } from "../../src/app.ts";
import { HTMX_VERSIONS } from "../../src/server/htmx.ts";
import { startTestHerald } from "../helpers.ts";
import { chromiumAvailable, e2eTest, launchBrowser, live, signedInPage, until } from "./browser.ts";

const run = chromiumAvailable();

/** The texts of the messages on a page, oldest first. */
const messages = (page: Page) =>
  page.$$eval("#chat-messages .chat-message .text", (items) => items.map((item) => item.textContent));
const text = (page: Page, selector: string) =>
  page.evaluate(`document.querySelector(${JSON.stringify(selector)})?.textContent ?? ""`);

for (const htmx of HTMX_VERSIONS) {
  describe.if(run)(`in Chromium: a chat room (htmx ${htmx})`, () => {
    let herald: Herald;
    let browser: Browser;
    const e2e = e2eTest(() => browser);
    const problems: string[] = [];

    async function inRoom(name: string, room: string, expectErrors = false): Promise<Page> {
      const page = await signedInPage(browser, herald.url, name, problems, { expectErrors });
      await page.goto(`${herald.url}/chat/${room}`);
      await live(herald, page, name);
      return page;
    }

    beforeAll(async () => {
      herald = startTestHerald({ eventLog: "sqlite", htmx, retryMs: 500 });
      browser = await launchBrowser();
    });

    afterAll(async () => {
      await browser?.close();
      await herald?.stop();
    });

    e2e(
      "two people chat: members, typing, messages both ways, a read receipt, and history after a reconnect",
      async () => {
        const alice = await inRoom("alice", "lobby");
        const bob = await inRoom("bob", "lobby");
        const both = `[...document.querySelectorAll("#chat-members li")].map((li) => li.textContent).join(",") === "alice,bob"`;
        await until(alice, both);
        await until(bob, both);

        // Alice types: Bob sees it, Alice never sees herself typing.
        await alice.type('#chat-form input[name="text"]', "hello bob", { delay: 20 });
        await until(bob, `document.querySelector("#chat-typing")?.textContent === "alice is typing…"`);
        expect(await text(alice, "#chat-typing")).toBe("");

        await alice.press('#chat-form input[name="text"]', "Enter");
        await until(bob, `document.querySelectorAll("#chat-messages .chat-message").length === 1`);
        expect(await messages(bob)).toEqual(["hello bob"]);
        await until(alice, `document.querySelectorAll("#chat-messages .chat-message").length === 1`);
        expect(await alice.inputValue('#chat-form input[name="text"]')).toBe("");
        // Sending cleared the indicator at once; Bob's page saw the message while visible.
        await until(bob, `document.querySelector("#chat-typing")?.textContent === ""`);
        await until(alice, `document.querySelector("#chat-receipts")?.textContent === "Seen by bob"`);
        expect(await text(bob, "#chat-receipts")).toBe("Seen by bob");

        // Bob answers; his answer empties the receipts until Alice's page has it.
        await bob.fill('#chat-form input[name="text"]', "hi alice <b>not bold</b>");
        await bob.press('#chat-form input[name="text"]', "Enter");
        await until(alice, `document.querySelectorAll("#chat-messages .chat-message").length === 2`);
        expect(await messages(alice)).toEqual(["hello bob", "hi alice <b>not bold</b>"]);
        expect(await alice.$$("#chat-messages b")).toHaveLength(0);
        await until(bob, `document.querySelector("#chat-receipts")?.textContent === "Seen by alice"`);

        // Bob's stream drops; what Alice writes meanwhile is there once he is back, once each.
        const served = herald.hub.stats().replayed;
        herald.hub.disconnectUser("bob");
        await alice.fill('#chat-form input[name="text"]', "while you were away");
        await alice.press('#chat-form input[name="text"]', "Enter");
        await until(alice, `document.querySelectorAll("#chat-messages .chat-message").length === 3`);
        await until(bob, `document.querySelectorAll("#chat-messages .chat-message").length === 3`);
        expect(await messages(bob)).toEqual(["hello bob", "hi alice <b>not bold</b>", "while you were away"]);
        await until(alice, both);
        if (htmx === 2) expect(herald.hub.stats().replayed).toBeGreaterThan(served);
        // htmx-ext-sse logs the dropped stream (an error event) before the browser reconnects: expected here.
        const drop = problems.findIndex((problem) => problem.startsWith("bob: console error: [object Event]"));
        if (drop >= 0) problems.splice(drop, 1);

        // A reload shows the history too.
        await bob.reload();
        await live(herald, bob, "bob");
        expect(await messages(bob)).toEqual(["hello bob", "hi alice <b>not bold</b>", "while you were away"]);
        await until(alice, `document.querySelector("#chat-receipts")?.textContent === "Seen by bob"`);
      },
    );

    e2e("a refusal is shown in the status line, and the message stays to be fixed", async () => {
      // The browser logs the 413 as a console error: expected here.
      const carol = await inRoom("carol", "kitchen", true);
      await carol.evaluate(`document.querySelector('#chat-form input[name="text"]').removeAttribute("maxlength")`);
      await carol.fill('#chat-form input[name="text"]', "x".repeat(501));
      await carol.press('#chat-form input[name="text"]', "Enter");
      await until(
        carol,
        `(document.querySelector("#chat-status")?.textContent ?? "").includes("the most a message may have is 500")`,
      );
      expect(await carol.inputValue('#chat-form input[name="text"]')).toHaveLength(501);
      expect(await messages(carol)).toEqual([]);
    });

    e2e("no page logged an error", () => {
      expect(problems).toEqual([]);
    });
  });
}
