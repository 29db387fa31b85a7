/**
 * Debian's Chromium driven by playwright-core, for end-to-end tests. Never downloads a browser.
 *
 * Without a Chromium the suites are skipped with a loud message, except under `CI=true`, where a
 * missing browser fails the run (`.ci/run` installs it).
 */
import { test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import type { Herald } from "../../src/app.ts";
import { eventually } from "../helpers.ts";

export const CHROMIUM = process.env.HERALD_CHROMIUM ?? "/usr/bin/chromium";

/** Whether the e2e suites can run here. Throws under CI when they cannot. */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  const message = `e2e tests SKIPPED: no Chromium at ${CHROMIUM}. Install it with: apt-get update && apt-get install -y chromium (or set HERALD_CHROMIUM).`;
  if (process.env.CI === "true") throw new Error(message);
  console.warn(`\n*** ${message}\n`);
  return false;
}

/** Starts a headless Chromium with the flags this machine needs (no sandbox as root, no background networking). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/**
 * Waits until a JavaScript expression is true in the page. Polls from the test side with
 * `page.evaluate`, because Playwright's own `waitForFunction` compiles its predicate with eval,
 * which herald's Content-Security-Policy (rightly) forbids.
 */
export async function until(page: Page, expression: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await page.evaluate(expression))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${expression}`);
    await Bun.sleep(25);
  }
}

/**
 * Formerly followed the page's `/sse` responses. A page's stream may now be a SharedWorker's, which
 * the page's own network events never show, so `streamOpen` reads the page's `#connection` instead
 * and this has nothing left to do. Kept for the callers that still make the call.
 */
export function trackStream(_page: Page): void {}

/**
 * Waits until the page's stream is open: its `#connection` reads "Live", which herald.js sets on
 * htmx 2's `htmx:sseOpen` and htmx 4's `htmx:sse:after:connection`, both of which come once herald
 * has answered the stream, and herald answers once the stream is subscribed.
 */
export async function streamOpen(page: Page, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const expression = `document.getElementById("connection")?.dataset.state === "live"`;
  // A document being replaced has no context to evaluate in for a moment; ask the next one.
  while (!(await page.evaluate(expression).catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for the stream of ${page.url()}`);
    await Bun.sleep(20);
  }
}

/** Waits until `user`'s page is live: herald holds their stream and the page's EventSource is open. */
export async function live(herald: Herald, page: Page, user: string): Promise<void> {
  await eventually(() => herald.hub.isConnected(user), `${user}'s stream`, 5000);
  await streamOpen(page);
}

/**
 * A new browser context signed in as `name` through the sign-in form. Console errors, page
 * errors and dialogs are added to `problems`, unless the test provokes errors on purpose.
 */
export async function signedInPage(
  browser: Browser,
  url: string,
  name: string,
  problems: string[],
  { expectErrors = false } = {},
): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  page.on("console", (message) => {
    if (message.type() === "error" && !expectErrors)
      problems.push(`${name}: console error: ${message.text()} at ${page.url()}`);
  });
  page.on("pageerror", (error) => problems.push(`${name}: page error: ${error.message}`));
  page.on("dialog", (dialog) => {
    problems.push(`${name}: a dialog opened: ${dialog.message()}`);
    void dialog.dismiss();
  });
  await page.goto(url);
  await page.fill('input[name="name"]', name);
  await page.click('#sign-in button[type="submit"]');
  await page.waitForSelector(`text=Signed in as ${name}`);
  return page;
}

/** Where failed tests leave their screenshots (ignored by git; CI's log names each file). */
export const SCREENSHOTS = join(import.meta.dir, "..", "..", "test-results", "e2e");

/** Saves a screenshot of every page open in `browser`; returns the files written. */
export async function screenshotAll(browser: Browser, name: string): Promise<string[]> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .slice(0, 80);
  const files: string[] = [];
  const pages = browser.contexts().flatMap((context) => context.pages());
  for (const [i, page] of pages.entries()) {
    const file = join(SCREENSHOTS, `${slug}-${i + 1}.png`);
    try {
      await page.screenshot({ path: file, fullPage: true });
      files.push(file);
    } catch {
      // A page that closed while the test failed has nothing to show.
    }
  }
  return files;
}

/**
 * `test` for browser scenarios: when one fails, a screenshot of every open page is saved under
 * `test-results/e2e/` and the files are printed next to the failure.
 */
export function e2eTest(
  browser: () => Browser,
): (name: string, fn: () => void | Promise<void>, timeoutMs?: number) => void {
  return (name, fn, timeoutMs) =>
    test(
      name,
      async () => {
        try {
          await fn();
        } catch (error) {
          const files = await screenshotAll(browser(), name).catch(() => []);
          console.error(
            `e2e failure "${name}": ${files.length ? `screenshots in ${files.join(", ")}` : "no page was open to screenshot"}`,
          );
          throw error;
        }
      },
      timeoutMs,
    );
}
