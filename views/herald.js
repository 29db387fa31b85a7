/*
 * herald's page script, served as `/assets/herald.js`.
 *
 * 1. One stream per stream URL for all the tabs of the browser, held by herald's SharedWorker
 *    (`/assets/herald-worker.js`). Without SharedWorker, each tab keeps its own stream, as before.
 *    - htmx 2: htmx-ext-sse opens its streams with `htmx.createEventSource(url)` and uses its own
 *      only when the page has none, so this script (loaded after htmx and before the extension)
 *      hands it an EventSource look-alike fed by the worker.
 *    - htmx 4: hx-sse opens a stream as an htmx request, whose `ctx.fetch` may be replaced. It gets
 *      a response whose body the worker feeds and which never ends while a tab is on it, so that
 *      hx-sse never reconnects by itself (its reconnects would call the global `fetch`).
 * 2. On every page, `#connection` says whether the page's stream is live.
 */
(() => {
  const htmx = window.htmx;
  const major = htmx?.version?.split(".")[0];
  const sharing = typeof SharedWorker === "function" && (major === "4" || (major === "2" && !htmx.createEventSource));

  // #connection: "Live" while the stream is open, "Reconnecting…" with the wait while it is not.
  const seconds = (ms) => (ms < 1000 ? "under a second" : `${Math.round(ms / 1000)} s`);
  const show = (state, text) => {
    const element = document.getElementById("connection");
    if (!element) return;
    element.hidden = false;
    element.dataset.state = state;
    if (element.textContent !== text) element.textContent = text;
  };
  const live = () => show("live", "Live");
  const reconnecting = (ms) =>
    show("reconnecting", ms === undefined ? "Reconnecting…" : `Reconnecting… (next try in ${seconds(ms)})`);
  const serverRetry = () => Number(document.getElementById("connection")?.dataset.retryMs ?? 3000);

  const sources = new Map();
  let serial = 0;
  let port = null;
  /** Whether the worker failed to start: from then on, each stream is the tab's own, as before. */
  let broken = false;
  /** How long a new worker may take to say `ready` before the tab gives up on it. */
  const WORKER_READY_MS = 5000;

  /** The worker's streams move to streams of the tab's own; the worker, if it lives, lets go of this tab. */
  const fail = () => {
    if (broken) return;
    broken = true;
    port?.postMessage({ type: "bye" });
    for (const receive of sources.values()) receive({ type: "broken" });
    sources.clear();
  };

  const connect = () => {
    // A SharedWorker is found by URL and name: a tab never meets a worker of another protocol if the
    // name changes with the messages (see herald-worker.js), even while tabs of an older deploy live.
    const worker = new SharedWorker("/assets/herald-worker.js", { name: "herald-2" });
    port = worker.port;
    // The worker says `ready` as it meets a tab. A browser does not always fire `error` for a worker
    // whose script failed to load (Chromium, when another page just tried the same worker), so one
    // that stays silent for WORKER_READY_MS counts as failed too.
    const silence = setTimeout(fail, WORKER_READY_MS);
    port.onmessage = (message) => {
      if (message.data.type === "ready") clearTimeout(silence);
      else sources.get(message.data.id)?.(message.data);
    };
    worker.onerror = () => {
      clearTimeout(silence);
      fail();
    };
    // The worker learns that the tab is gone when this lock is released (Web Locks need a secure
    // context; elsewhere `pagehide` says it).
    if (navigator.locks) {
      const lock = `herald-tab-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
      navigator.locks.request(lock, () => {
        port.postMessage({ type: "hello", lock });
        return new Promise(() => {});
      });
    }
    addEventListener("pagehide", () => port.postMessage({ type: "bye" }));
    // A page back from the back/forward cache has left its streams: load it afresh.
    addEventListener("pageshow", (event) => event.persisted && location.reload());
  };

  /**
   * Joins the worker's stream for `url`, handing its messages to `receive`; returns how to leave.
   * Tabs of different sign-ins (the page's CSRF token is bound to the session) or htmx versions
   * never share a stream.
   */
  const join = (url, receive, headers) => {
    const id = ++serial;
    sources.set(id, receive);
    if (!port) connect();
    const signIn = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
    port.postMessage({ type: "open", id, url: new URL(url, location.href).href, key: `${major}\n${signIn}`, headers });
    return () => {
      if (!sources.delete(id)) return;
      port.postMessage({ type: "close", id });
    };
  };

  if (sharing && major === "2") {
    /** What htmx-ext-sse needs of an EventSource: listeners, `onopen`, `onerror`, `readyState`, `close()`. */
    class SharedSource extends EventTarget {
      static CONNECTING = 0;
      static OPEN = 1;
      static CLOSED = 2;

      constructor(url) {
        super();
        this.names = new Set();
        this.native = null;
        this.forward = (event) => {
          const copy = new MessageEvent(event.type, { data: event.data, lastEventId: event.lastEventId });
          this.fire(copy, event.type === "message" ? this.onmessage : null);
        };
        this.url = new URL(url, location.href).href;
        this.withCredentials = true;
        this.readyState = 0;
        this.onopen = null;
        this.onerror = null;
        this.onmessage = null;
        this.leave = join(url, (message) => this.receive(message));
      }

      addEventListener(type, listener, options) {
        super.addEventListener(type, listener, options);
        this.names.add(type);
        this.native?.addEventListener(type, this.forward);
      }

      close() {
        this.readyState = 2;
        this.native?.close();
        this.leave();
      }

      /** The worker failed: the same listeners, on an EventSource of the tab's own. */
      useNative() {
        const native = new EventSource(this.url, { withCredentials: true });
        this.native = native;
        for (const name of this.names) native.addEventListener(name, this.forward);
        native.onopen = () => {
          this.readyState = 1;
          this.fire(new Event("open"), this.onopen);
        };
        native.onerror = () => {
          this.readyState = native.readyState;
          this.fire(new Event("error"), this.onerror);
        };
      }

      receive(message) {
        if (this.readyState === 2) return;
        if (message.type === "broken") this.useNative();
        else if (message.type === "event") {
          const event = new MessageEvent(message.event, {
            data: message.data,
            lastEventId: message.lastEventId,
            origin: location.origin,
          });
          this.fire(event, message.event === "message" ? this.onmessage : null);
        } else if (message.state === "open") {
          this.readyState = 1;
          this.fire(new Event("open"), this.onopen);
        } else {
          // Still CONNECTING, never CLOSED: the worker reconnects, so htmx-ext-sse must not.
          this.readyState = 0;
          const event = new Event("error");
          event.retryMs = message.retryMs;
          this.fire(event, this.onerror);
        }
      }

      fire(event, handler) {
        if (typeof handler === "function") handler.call(this, event);
        this.dispatchEvent(event);
      }
    }

    htmx.createEventSource = (url) =>
      broken ? new EventSource(url, { withCredentials: true }) : new SharedSource(url);
  }

  /** The elements whose htmx 4 stream is the worker's: their state comes from it, not from hx-sse. */
  const shared = new WeakSet();

  if (sharing && major === "4") {
    // A tab in the background stays on the shared stream: it costs no connection of its own.
    htmx.config.sse = { ...htmx.config.sse, pauseOnBackground: false };
    const encoder = new TextEncoder();
    /** An event as `text/event-stream` again, for hx-sse to parse. */
    const frame = ({ event, data, lastEventId, hasId }) =>
      (hasId ? `id: ${lastEventId}\n` : "") +
      (event === "message" ? "" : `event: ${event}\n`) +
      data
        .split("\n")
        .map((line) => `data: ${line}\n`)
        .join("") +
      "\n";

    const sharedResponse = (url, init, element) => {
      let leave = () => {};
      const body = new ReadableStream({
        start(controller) {
          leave = join(
            url,
            (message) => {
              if (message.type === "broken") {
                // hx-sse takes the error as a dropped stream, and reconnects with a fetch of its own.
                shared.delete(element);
                controller.error(new TypeError("herald's shared stream is unavailable"));
              } else if (message.type === "event") controller.enqueue(encoder.encode(frame(message)));
              else if (message.state === "open") live();
              else reconnecting(message.retryMs);
            },
            { ...init.headers },
          );
          init.signal?.addEventListener("abort", () => {
            leave();
            controller.error(new DOMException("The stream was closed.", "AbortError"));
          });
        },
        cancel() {
          leave();
        },
      });
      return Promise.resolve(new Response(body, { headers: { "content-type": "text/event-stream; charset=utf-8" } }));
    };

    document.addEventListener("htmx:before:request", (event) => {
      const ctx = event.detail?.ctx;
      const element = ctx?.sourceElement;
      // The stream's own request: a GET from the element that connects (its forms send their own).
      if (broken || ctx?.request?.method !== "GET" || !element?.hasAttribute?.("hx-sse:connect")) return;
      shared.add(element);
      ctx.fetch = (url, init) => sharedResponse(url, init, element);
    });
  }

  // htmx 2. A dropped stream is retried after the server's `retry:`; a refused one is given up by
  // EventSource and opened again by htmx-ext-sse, 500 ms × 2^n later. A shared stream's error
  // carries the worker's wait.
  let refusals = 0;
  document.addEventListener("htmx:sseOpen", () => {
    refusals = 0;
    live();
  });
  document.addEventListener("htmx:sseError", (event) => {
    const { error, source } = event.detail ?? {};
    if (typeof error?.retryMs === "number") return reconnecting(error.retryMs);
    if (source?.readyState !== 2) return reconnecting(serverRetry());
    refusals = Math.min(refusals * 2 || 1, 128);
    reconnecting(refusals * 500);
  });

  // htmx 4's hx-sse, for streams of its own: it waits reconnectDelay × 2^(attempt − 1) (at most
  // reconnectMaxDelay, give or take its jitter) before each new try.
  const htmx4Wait = (connection, attempt) => {
    const { reconnectDelay, reconnectMaxDelay } = connection.config;
    return Math.min(Number(reconnectDelay) * 2 ** Math.max(attempt - 1, 0), Number(reconnectMaxDelay));
  };
  document.addEventListener("htmx:sse:after:connection", (event) => {
    if (!shared.has(event.target)) live();
  });
  document.addEventListener("htmx:sse:before:connection", (event) => {
    const connection = event.detail?.connection;
    if (connection?.attempt > 0) reconnecting(htmx4Wait(connection, connection.attempt));
  });
  document.addEventListener("htmx:sse:error", (event) => {
    const connection = event.detail?.connection;
    reconnecting(connection ? htmx4Wait(connection, connection.attempt + 1) : undefined);
  });
  document.addEventListener("htmx:sse:close", (event) => {
    if (event.target?.isConnected) show("closed", "Offline");
  });
})();
