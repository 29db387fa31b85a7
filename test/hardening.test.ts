/**
 * Requests that used to crash or expose the server, each sent as the attacker sent it: raw bytes
 * on a socket where a fetch would clean them up first.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Herald } from "../src/app.ts";
import { createLogger, type Logger } from "../src/server/logger.ts";
import { SECURITY_HEADERS } from "../src/server/respond.ts";
import { loadSecret } from "../src/server/session.ts";
import { perTestHerald, postForm, signIn } from "./helpers.ts";
import { rawRequest, type RawAnswer } from "./raw.ts";

const TOKEN = "hardening-token-0123456789";
const { start } = perTestHerald();

function expectHeraldsOwnRefusal(answer: RawAnswer, status: number): void {
  expect(answer.status).toBe(status);
  for (const name of Object.keys(SECURITY_HEADERS)) expect(answer.headers.has(name)).toBe(true);
  // Bun's development page shows the working directory and source lines; herald's is small.
  expect(answer.body).not.toContain(process.cwd());
  expect(answer.body).not.toContain(".ts:");
  expect(answer.bytes).toBeLessThan(8_000);
}

describe("malformed Host and request lines", () => {
  const hosts = ["a b", "x:99999", "[zz]", "", "exa mple.com:80", "host:-1", "[::1", "a/b"];
  for (const host of hosts) {
    test(`Host: ${JSON.stringify(host)} is herald's own 400, on a page route and on an unknown path`, async () => {
      const herald = start();
      for (const path of ["/", "/nowhere", "/sse", "/embed/orders"]) {
        const answer = await rawRequest(
          herald.server.port!,
          `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
        );
        expectHeraldsOwnRefusal(answer, 400);
        expect(answer.body).toContain("Host header is missing or malformed");
      }
      expect((await fetch(`${herald.url}/healthz`)).status).toBe(200);
    });
  }

  test("HTTP/1.0 without Host is a 400, not Bun's development page", async () => {
    const logged: string[] = [];
    const herald = start({}, { log: captureLog(logged) });
    for (const path of ["/", "/nowhere", "/healthz"]) {
      expectHeraldsOwnRefusal(await rawRequest(herald.server.port!, `GET ${path} HTTP/1.0\r\n\r\n`), 400);
    }
    expect(logged.filter((line) => line.includes("unhandled error"))).toEqual([]);
  });
});

/** A logger that keeps its lines, to check what the server logged. */
function captureLog(lines: string[]): Logger {
  return createLogger("debug", (line) => lines.push(line));
}

describe("GET /embed/:topic", () => {
  test("never builds its stream URL from the request's Host", async () => {
    const herald = start();
    const answer = await rawRequest(
      herald.server.port!,
      "GET /embed/orders HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    expect(answer.status).toBe(200);
    expect(answer.body).not.toContain("evil.example");
    expect(answer.body).toContain('sse-connect="/sse?page=embed&amp;topic=orders"');
    // Who asks decides the answer (a private topic is refused): no shared cache may keep it.
    expect(answer.headers.get("cache-control")).toBe("private, no-cache");
  });

  test("uses HERALD_PUBLIC_URL when it is set", async () => {
    const herald = start({ publicUrl: new URL("https://notify.example.com/") });
    const answer = await rawRequest(
      herald.server.port!,
      "GET /embed/orders HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    expect(answer.body).toContain('sse-connect="https://notify.example.com/sse?page=embed&amp;topic=orders"');
  });

  for (const path of [
    "/embed/%",
    "/embed/%zz",
    "/embed/%E0%A4%A",
    "/embed/%C0%AF",
    "/inventory/%/watch",
    "/api/inventory/%ff",
  ]) {
    test(`${path}: a 400 that says the encoding is malformed, nothing logged as unhandled`, async () => {
      const logged: string[] = [];
      const herald = start({ publishTokens: [TOKEN] }, { log: captureLog(logged) });
      const method = path.startsWith("/embed") ? "GET" : "POST";
      const answer = await rawRequest(
        herald.server.port!,
        `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      expect([400, 401, 403]).toContain(answer.status);
      if (method === "GET") expect(answer.status).toBe(400);
      expect(logged.filter((line) => line.includes("unhandled error"))).toEqual([]);
    });
  }
});

describe("the publish API's reserved event names", () => {
  for (const event of ["close", "snapshot", "unread", "history-cut", "monitor", "product", "order-status", "market"]) {
    test(`event "${event}" is a 400 naming the reserved names, and nothing is sent`, async () => {
      const herald = start({ publishTokens: [TOKEN] });
      const res = await fetch(`${herald.url}/api/publish`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ target: "everyone", event, html: "<p>x</p>" }),
      });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: string };
      expect(body.error).toContain(`event "${event}" is reserved`);
      expect(body.error).toContain("close, join, leave, snapshot");
      expect(herald.hub.stats().published).toBe(0);
    });
  }

  test("notification and an app's own names still publish", async () => {
    const herald = start({ publishTokens: [TOKEN] });
    for (const event of ["notification", "price-alert"]) {
      const res = await fetch(`${herald.url}/api/publish`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ target: "everyone", event, message: "hello" }),
      });
      expect(res.status).toBe(200);
    }
  });
});

describe("numbers from requests are decimal digits only", () => {
  let herald: Herald;

  for (const amount of ["0x10", "0b11", "0o7", "1e3", "1.5", " 1 2", "+3", "-1", "Infinity", ""]) {
    test(`inventory amount=${JSON.stringify(amount)} is a 400 and the stock does not move`, async () => {
      herald = start();
      const alice = await signIn(herald, "alice");
      const before = herald.shop!.inventory.get("KB-101")!.quantity;
      const res = await postForm(herald, "/inventory/KB-101", { action: "restock", amount }, { session: alice });
      expect(res.status).toBe(400);
      expect(await res.text()).toContain("must be a whole number");
      expect(herald.shop!.inventory.get("KB-101")!.quantity).toBe(before);
    });
  }

  for (const value of ["0x10", "16", 1.5, "1e3", true, null]) {
    test(`the inventory API refuses quantity ${JSON.stringify(value)}`, async () => {
      herald = start({ publishTokens: [TOKEN] });
      const before = herald.shop!.inventory.get("KB-101")!.quantity;
      const res = await fetch(`${herald.url}/api/inventory/KB-101`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ quantity: value }),
      });
      expect(res.status).toBe(400);
      expect(herald.shop!.inventory.get("KB-101")!.quantity).toBe(before);
    });
  }

  test("orders take decimal quantities only", async () => {
    herald = start();
    const alice = await signIn(herald, "alice");
    for (const quantity of ["0x2", "1e1", "2.0"]) {
      expect((await postForm(herald, "/orders", { sku: "KB-101", quantity }, { session: alice })).status).toBe(400);
    }
  });
});

describe("Vary: Origin", () => {
  test("every stream, embed and preflight answer varies by Origin, allowed or not", async () => {
    const herald = start({ corsOrigins: ["https://shop.example"], privateTopics: ["audit"] });
    for (const origin of [undefined, "https://shop.example", "https://evil.example"]) {
      const headers: Record<string, string> = origin ? { origin } : {};
      for (const [method, path] of [
        ["GET", "/embed/orders"],
        ["GET", "/embed/audit"],
        ["GET", "/sse?topic=audit"],
        ["OPTIONS", "/sse"],
        ["OPTIONS", "/embed/orders"],
      ] as const) {
        const res = await fetch(`${herald.url}${path}`, { method, headers });
        expect(res.headers.get("vary"), `${method} ${path} from ${origin}`).toContain("Origin");
        await res.body?.cancel();
      }
      const stream = new AbortController();
      const res = await fetch(`${herald.url}/sse`, { headers, signal: stream.signal });
      expect(res.headers.get("vary")).toContain("Origin");
      stream.abort();
    }
  });

  test("a refusal from an allowed origin carries CORS headers, so the embedding page can read it", async () => {
    const herald = start({ corsOrigins: ["https://shop.example"], privateTopics: ["audit"] });
    const res = await fetch(`${herald.url}/embed/audit`, {
      headers: { origin: "https://shop.example", "hx-request": "true" },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://shop.example");
  });
});

describe("the signing secret", () => {
  test("a kept secret that is too short stops the start-up with one line naming the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "herald-short-secret-"));
    try {
      writeFileSync(join(dir, "secret"), "short\n");
      expect(() => loadSecret(undefined, dir)).toThrow(
        `${join(dir, "secret")} holds a secret of 5 characters; it needs at least 32`,
      );
      const proc = Bun.spawn([process.execPath, join(import.meta.dir, "..", "src", "main.ts")], {
        env: { ...process.env, PORT: "0", HOST: "127.0.0.1", HERALD_DATA_DIR: dir, HERALD_SECRET: "" },
        stdout: "pipe",
        stderr: "pipe",
      });
      expect(await proc.exited).toBe(1);
      const stderr = (await new Response(proc.stderr).text()).trim();
      expect(stderr.split("\n")).toHaveLength(1);
      expect(stderr).toContain("holds a secret of 5 characters");
      expect(await Bun.file(join(dir, "secret")).text()).toBe("short\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
