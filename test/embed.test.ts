import { afterEach, describe, expect, test } from "bun:test";
import type { Herald } from "../src/app.ts";
import { embedPage } from "../examples/embed-page.ts";
import { openStream, startTestHerald } from "./helpers.ts";

const SHOP = "http://shop.example:3001";
let herald: Herald;

afterEach(async () => {
  await herald.stop();
});

describe("embedding", () => {
  test("GET /embed/:topic is a self-contained live feed with the latest notifications", async () => {
    herald = startTestHerald({ publicUrl: new URL("https://notify.example") });
    await herald.hub.publishToTopic("orders", { event: "notification", data: "<li>order 1</li>" });
    await herald.hub.publishToTopic("other", { event: "notification", data: "<li>not this one</li>" });
    const res = await fetch(`${herald.url}/embed/orders`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(
      '<div class="herald-embed" data-topic="orders" hx-ext="sse" sse-connect="https://notify.example/sse?page=embed&amp;topic=orders">\n<ul class="herald-feed" sse-swap="notification" hx-swap="afterbegin"><li>order 1</li></ul>\n</div>',
    );
  });

  test("a private topic is refused, and a bad name is a 400", async () => {
    herald = startTestHerald({ privateTopics: ["secret*"] });
    expect((await fetch(`${herald.url}/embed/secret-plans`)).status).toBe(401);
    const bad = await fetch(`${herald.url}/embed/Not%20A%20Topic`);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("is not a valid topic name");
  });

  test("CORS with credentials for allowed origins only, on streams and fragments", async () => {
    herald = startTestHerald({ corsOrigins: [SHOP] });
    const embed = await fetch(`${herald.url}/embed/orders`, { headers: { origin: SHOP } });
    expect(embed.headers.get("access-control-allow-origin")).toBe(SHOP);
    expect(embed.headers.get("access-control-allow-credentials")).toBe("true");
    expect(embed.headers.get("vary")).toBe("Origin");
    const stream = await openStream(herald, "?topic=orders", undefined, { origin: SHOP });
    expect(stream.response.headers.get("access-control-allow-origin")).toBe(SHOP);
    stream.close();

    const other = await fetch(`${herald.url}/embed/orders`, { headers: { origin: "https://evil.example" } });
    expect(other.status).toBe(200);
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    const otherStream = await openStream(herald, "?topic=orders", undefined, { origin: "https://evil.example" });
    expect(otherStream.response.headers.get("access-control-allow-origin")).toBeNull();
    otherStream.close();
    // Pages are never shared cross-origin.
    expect(
      (await fetch(`${herald.url}/`, { headers: { origin: SHOP } })).headers.get("access-control-allow-origin"),
    ).toBeNull();
  });

  test("the preflight htmx needs is answered for allowed origins, with htmx's headers only", async () => {
    herald = startTestHerald({ corsOrigins: [SHOP] });
    const ok = await fetch(`${herald.url}/embed/orders`, {
      method: "OPTIONS",
      headers: {
        origin: SHOP,
        "access-control-request-method": "GET",
        "access-control-request-headers": "hx-request, hx-current-url, x-evil",
      },
    });
    expect(ok.status).toBe(204);
    expect(ok.headers.get("access-control-allow-origin")).toBe(SHOP);
    expect(ok.headers.get("access-control-allow-methods")).toBe("GET");
    expect(ok.headers.get("access-control-allow-headers")).toBe("hx-request, hx-current-url");
    const refused = await fetch(`${herald.url}/embed/orders`, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example" },
    });
    expect(refused.status).toBe(204);
    expect(refused.headers.get("access-control-allow-origin")).toBeNull();
  });

  test("the example page loads htmx from herald and the feed from /embed", () => {
    const page = embedPage("http://localhost:3000");
    expect(page).toContain('<script src="http://localhost:3000/assets/htmx.js"></script>');
    expect(page).toContain('<script src="http://localhost:3000/assets/htmx-ext-sse.js"></script>');
    expect(page).toContain('hx-get="http://localhost:3000/embed/orders?htmx=2" hx-trigger="load"');
    expect(page).toContain('"selfRequestsOnly":false');
    const four = embedPage("http://localhost:3000", "orders", 4);
    expect(four).toContain(
      '<script src="http://localhost:3000/assets/htmx4.js"></script>\n<script src="http://localhost:3000/assets/htmx4-sse.js"></script>',
    );
    expect(four).toContain('hx-get="http://localhost:3000/embed/orders?htmx=4"');
    expect(four).toContain(`content='{"mode":"cors"}'`);
  });
});
