/**
 * Test support: a real herald on port 0 with a temporary data directory, signed-in users,
 * and an SSE reader that parses frames the way a browser's EventSource does.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startHerald, type Herald } from "../src/app.ts";
import { loadConfig, type Config } from "../src/config.ts";

/** A herald for one test; `stop()` also removes its data directory. */
export function startTestHerald(overrides: Partial<Config> = {}): Herald {
  const dataDir = mkdtempSync(join(tmpdir(), "herald-test-"));
  const config: Config = {
    ...loadConfig({}),
    port: 0,
    host: "127.0.0.1",
    heartbeatMs: 0,
    dataDir,
    ...overrides,
  };
  const herald = startHerald(config);
  const stop = herald.stop;
  herald.stop = async () => {
    await stop();
    if (!overrides.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  return herald;
}

/** Signs in through `POST /login` and returns the `Cookie` header value. */
export async function signIn(herald: Herald, name: string): Promise<string> {
  const res = await fetch(`${herald.url}/login`, { method: "POST", body: new URLSearchParams({ name }), redirect: "manual" });
  if (res.status !== 303) throw new Error(`sign-in as ${name} failed: ${res.status} ${await res.text()}`);
  const setCookie = res.headers.get("set-cookie") ?? "";
  return setCookie.split(";")[0]!;
}

/** One dispatched SSE event, as the browser would see it. */
export interface ReceivedEvent {
  event: string;
  data: string;
  id: string | undefined;
}

/** An open stream with a browser-like parser in front of it. */
export class SseReader {
  readonly response: Response;
  readonly events: ReceivedEvent[] = [];
  readonly comments: string[] = [];
  retry: number | undefined;
  /** Every byte received, decoded. */
  raw = "";
  #controller: AbortController;
  #decoder = new TextDecoder();
  #buffer = "";
  #pending: { event: string; data: string[]; id: string | undefined } = { event: "", data: [], id: undefined };
  #waiters = new Set<() => void>();
  #done = false;

  constructor(response: Response, controller: AbortController) {
    this.response = response;
    this.#controller = controller;
    void this.#pump();
  }

  get done(): boolean {
    return this.#done;
  }

  async #pump(): Promise<void> {
    try {
      for await (const chunk of this.response.body!) {
        const text = this.#decoder.decode(chunk, { stream: true });
        this.raw += text;
        this.#feed(text);
        for (const wake of this.#waiters) wake();
      }
    } catch {
      // Aborted by the test, or the server closed the connection: both end the stream.
    }
    this.#done = true;
    for (const wake of this.#waiters) wake();
  }

  #feed(text: string): void {
    this.#buffer += text;
    const lines = this.#buffer.split(/\r\n|\r|\n/);
    this.#buffer = lines.pop()!;
    for (const line of lines) {
      if (line === "") {
        const p = this.#pending;
        if (p.data.length) this.events.push({ event: p.event || "message", data: p.data.join("\n"), id: p.id });
        this.#pending = { event: "", data: [], id: p.id };
        continue;
      }
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "") this.comments.push(value);
      else if (field === "event") this.#pending.event = value;
      else if (field === "data") this.#pending.data.push(value);
      else if (field === "id" && !value.includes("\0")) this.#pending.id = value;
      else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
    }
  }

  /** Waits until `check()` holds, failing after `timeoutMs`. */
  async until(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (this.#done) throw new Error(`stream ended while waiting for ${what}; got ${JSON.stringify(this.raw)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.raw)}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.#waiters.add(wake);
      });
    }
  }

  /** Waits for the `n`-th event (1-based) and returns it. */
  async event(n = this.events.length + 1, timeoutMs?: number): Promise<ReceivedEvent> {
    await this.until(() => this.events.length >= n, `event #${n}`, timeoutMs);
    return this.events[n - 1]!;
  }

  /** Waits until the server ends the stream. */
  async ended(timeoutMs?: number): Promise<void> {
    await this.until(() => this.#done, "the end of the stream", timeoutMs).catch((error: Error) => {
      if (!this.#done) throw error;
    });
  }

  close(): void {
    this.#controller.abort();
  }
}

/** Opens `GET /sse` (with `query`, as `cookie`) and waits for the first bytes. */
export async function openStream(herald: Herald, query = "", cookie?: string): Promise<SseReader> {
  const controller = new AbortController();
  const res = await fetch(`${herald.url}/sse${query}`, {
    headers: { accept: "text/event-stream", ...(cookie ? { cookie } : {}) },
    signal: controller.signal,
  });
  if (res.status !== 200) throw new Error(`stream refused: ${res.status} ${await res.text()}`);
  const reader = new SseReader(res, controller);
  await reader.until(() => reader.retry !== undefined, "the retry hint");
  return reader;
}

/** Waits until `check()` holds, polling; for state that has no event to wait on. */
export async function eventually(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

/** Posts a form, as htmx (`HX-Request: true`) unless `htmx` is false. */
export function postForm(
  herald: Herald,
  path: string,
  fields: Record<string, string>,
  { cookie, htmx = true }: { cookie?: string; htmx?: boolean } = {},
): Promise<Response> {
  return fetch(`${herald.url}${path}`, {
    method: "POST",
    body: new URLSearchParams(fields),
    redirect: "manual",
    headers: { ...(cookie ? { cookie } : {}), ...(htmx ? { "hx-request": "true" } : {}) },
  });
}
