/**
 * In Chromium: a person signs in at the example "existing app" with a password, and the app's
 * page shows herald's live notifications for them, herald knowing who they are from the app's JWT.
 */
import { afterAll, beforeAll, describe, expect } from "bun:test";
import type { Browser } from "playwright-core";
import type { Herald } from "../../src/app.ts";
import { startExistingApp } from "../../examples/existing-app.ts";
import { eventually, startTestHerald } from "../helpers.ts";
import { chromiumAvailable, e2eTest, launchBrowser, until } from "./browser.ts";

const run = chromiumAvailable();
const SECRET = "connect-e2e-secret-0123456789";

function freePort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

describe.if(run)("in Chromium: sign in at an existing app, see herald's notifications", () => {
  let browser: Browser;
  const e2e = e2eTest(() => browser);
  let herald: Herald;
  let app: { url: string; stop(): void };

  beforeAll(async () => {
    browser = await launchBrowser();
    // The app and herald on two ports of one host: cookies are shared by host, origins are not.
    const appPort = freePort();
    const appOrigin = `http://127.0.0.1:${appPort}`;
    herald = startTestHerald({ host: "127.0.0.1", jwtSecret: SECRET, demoLogin: false, corsOrigins: [appOrigin] });
    app = await startExistingApp({ mode: "jwt", heraldUrl: herald.url, jwtSecret: SECRET, port: appPort });
  });

  afterAll(async () => {
    await browser?.close();
    app?.stop();
    await herald?.stop();
  });

  e2e("alice signs in with her password and her notifications arrive on the app's page", async () => {
    const page = await (await browser.newContext()).newPage();
    const errors: string[] = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    await page.goto(`${app.url}/`);
    await page.fill('input[name="user"]', "alice");
    await page.fill('input[name="password"]', "wonderland");
    await page.click('button[type="submit"]');
    await page.waitForSelector("#inbox", { state: "attached" });
    await eventually(() => herald.hub.isConnected("alice"), "alice's stream in herald", 5000);
    await herald.hub.publishToUser("alice", { event: "notification", data: '<li class="n">for alice</li>' });
    await herald.hub.publishToUser("bob", { event: "notification", data: '<li class="n">for bob</li>' });
    await herald.hub.publish("group:ops", { event: "notification", data: '<li class="n">for ops</li>' });
    await until(page, `document.querySelectorAll("#inbox li.n").length === 2`);
    expect(await page.$$eval("#inbox li.n", (items) => items.map((i) => i.textContent))).toEqual([
      "for ops",
      "for alice",
    ]);
    expect(errors).toEqual([]);
  });
});
