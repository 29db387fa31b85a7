/**
 * Test support: a real herald on port 0 with a temporary data directory, signed-in users,
 * and an SSE reader that parses frames the way a browser's EventSource does.
 */
import { afterEach } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startHerald, type Herald, type HeraldOptions } from "../src/app.ts";
import { loadConfig, type Config, type Limits } from "../src/server/config.ts";

/** Settings a test changes; `limits` may name only some limits. */
export type TestConfig = Partial<Omit<Config, "limits">> & { limits?: Partial<Limits> };

/**
 * A herald for one test; `stop()` also removes its data directory. Logs are off and the rate
 * limits generous unless a test sets them: most tests open streams and publish quickly.
 */
export function startTestHerald(overrides: TestConfig = {}, options: HeraldOptions = {}): Herald {
  const dataDir = mkdtempSync(join(tmpdir(), "herald-test-"));
  const defaults = loadConfig({});
  const config: Config = {
    ...defaults,
    port: 0,
    host: "127.0.0.1",
    heartbeatMs: 0,
    dataDir,
    logLevel: "off",
    eventLog: "memory",
    ...overrides,
    limits: { ...defaults.limits, streamsPerIpPerS: 10_000, publishesPerUserPerS: 10_000, ...overrides.limits },
  };
  const herald = startHerald(config, options);
  const stop = herald.stop;
  herald.stop = async () => {
    await stop();
    if (!overrides.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  return herald;
}

/** A browser's state: its cookies and the CSRF token its page carries. */
export interface Session {
  /** The `Cookie` header value. */
  cookie: string;
  /** The token from the page's `<meta name="csrf-token">`. */
  csrf: string;
}

function cookiePair(setCookie: string | null): string {
  return (setCookie ?? "").split(";")[0]!;
}

/** Loads the home page as `cookie` and reads the CSRF token from it. */
export async function csrfToken(herald: Herald, cookie: string): Promise<string> {
  const page = await (await fetch(`${herald.url}/`, { headers: { cookie } })).text();
  const token = /<meta name="csrf-token" content="([^"]+)">/.exec(page)?.[1];
  if (!token) throw new Error("no csrf-token meta tag on the home page");
  return token;
}

/** A first visit: the CSRF cookie the home page sets, and its token. */
export async function visit(herald: Herald): Promise<Session> {
  const res = await fetch(`${herald.url}/`);
  const cookie = cookiePair(res.headers.get("set-cookie"));
  const token = /<meta name="csrf-token" content="([^"]+)">/.exec(await res.text())?.[1];
  if (!cookie.startsWith("herald_csrf=") || !token) throw new Error("the home page set no CSRF cookie or token");
  return { cookie, csrf: token };
}

/** Signs in through the sign-in form, as a browser would, and returns the signed-in session. */
export async function signIn(herald: Herald, name: string): Promise<Session> {
  const anonymous = await visit(herald);
  const res = await postForm(herald, "/login", { name }, { session: anonymous, htmx: false });
  if (res.status !== 303) throw new Error(`sign-in as ${name} failed: ${res.status} ${await res.text()}`);
  // As a browser does: the cookies it had, each replaced by a new one of the same name.
  const jar = new Map(
    [anonymous.cookie, ...res.headers.getSetCookie().map(cookiePair)].map((pair) => [pair.split("=")[0]!, pair]),
  );
  const cookie = [...jar.values()].join("; ");
  return { cookie, csrf: await csrfToken(herald, cookie) };
}

/** One dispatched SSE event, as the browser would see it. */
export interface ReceivedEvent {
  event: string;
  data: string;
  id: string | undefined;
}

/** Events about the page rather than news: kept apart from `events` so tests can count news. */
export const PAGE_EVENTS = new Set(["snapshot", "unread", "history-cut", "monitor"]);

/** An open stream with a browser-like parser in front of it. */
export class SseReader {
  readonly response: Response;
  /** Dispatched events, except the page events (`PAGE_EVENTS`). */
  readonly events: ReceivedEvent[] = [];
  /** `snapshot`, `unread`, `history-cut` and `monitor` events, in order. */
  readonly pageEvents: ReceivedEvent[] = [];
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
        if (p.data.length) {
          const event = { event: p.event || "message", data: p.data.join("\n"), id: p.id };
          (PAGE_EVENTS.has(event.event) ? this.pageEvents : this.events).push(event);
        }
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

/**
 * Opens `GET /sse` (with `query`, as `cookie`, with extra `headers` such as `Last-Event-ID`) and waits for the first
 * bytes.
 */
export async function openStream(
  herald: Herald | string,
  query = "",
  cookie?: string,
  headers: Record<string, string> = {},
): Promise<SseReader> {
  const controller = new AbortController();
  const base = typeof herald === "string" ? herald : herald.url;
  const res = await fetch(`${base}/sse${query}`, {
    headers: { accept: "text/event-stream", ...(cookie ? { cookie } : {}), ...headers },
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

/**
 * Posts a form as a browser would: with the session's cookies and its CSRF token in `_csrf`
 * (unless `fields` sets `_csrf` itself), as htmx (`HX-Request: true`) unless `htmx` is false.
 */
export function postForm(
  herald: Herald,
  path: string,
  fields: Record<string, string>,
  { session, htmx = true, headers = {} }: { session?: Session; htmx?: boolean; headers?: Record<string, string> } = {},
): Promise<Response> {
  const body = new URLSearchParams(session && !("_csrf" in fields) ? { _csrf: session.csrf, ...fields } : fields);
  return fetch(`${herald.url}${path}`, {
    method: "POST",
    body,
    redirect: "manual",
    headers: { ...(session ? { cookie: session.cookie } : {}), ...(htmx ? { "hx-request": "true" } : {}), ...headers },
  });
}

/**
 * For a test file with one herald at a time: `stream()` opens streams on the current one, and
 * `afterEach` closes them and stops it.
 */
export function perTestHerald(): {
  readonly herald: Herald;
  start(overrides?: TestConfig, options?: HeraldOptions): Herald;
  stream(query: string, cookie?: string, headers?: Record<string, string>): Promise<SseReader>;
} {
  let current: Herald | undefined;
  const readers: SseReader[] = [];
  afterEach(async () => {
    for (const reader of readers.splice(0)) reader.close();
    await current?.stop();
  });
  const herald = () => {
    if (!current) throw new Error("perTestHerald: start() a herald first");
    return current;
  };
  return {
    get herald() {
      return herald();
    },
    start(overrides, options) {
      current = startTestHerald(overrides, options);
      return current;
    },
    async stream(query, cookie, headers = {}) {
      const reader = await openStream(herald(), query, cookie, headers);
      readers.push(reader);
      return reader;
    },
  };
}

/** The number in an event id (`<epoch>-<n>`), for comparing order. */
export function seq(id: string | undefined): number {
  return Number(id?.slice(id.lastIndexOf("-") + 1));
}

/** Makes ids of the herald's current epoch: `(await idsOf(herald))(3)` is the id of its event 3. */
export async function idsOf(herald: Herald): Promise<(n: number) => string> {
  const epoch = await herald.hub.log.epoch();
  return (n) => `${epoch}-${n}`;
}
