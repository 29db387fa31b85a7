/*
 * herald's page script, served as `/assets/herald.js`.
 *
 * 1. With htmx 2, one stream per stream URL for all the tabs of the browser: htmx-ext-sse opens its
 *    streams with `htmx.createEventSource(url)` and uses its own only when the page has none, so
 *    this script (loaded after htmx and before the extension) hands it an EventSource look-alike
 *    fed by herald's SharedWorker (`/assets/herald-worker.js`). Without SharedWorker, each tab
 *    keeps its own EventSource, as before.
 * 2. On every page, `#connection` says whether the page's stream is live, from the open and error
 *    events of htmx 2's sse extension or htmx 4's hx-sse.
 */
(() => {
  const htmx = window.htmx;
  if (htmx?.version?.startsWith("2.") && typeof SharedWorker === "function" && !htmx.createEventSource) {
    const sources = new Map();
    let serial = 0;
    let port = null;

    const connect = () => {
      const worker = new SharedWorker("/assets/herald-worker.js", { name: "herald" });
      port = worker.port;
      port.onmessage = (message) => sources.get(message.data.id)?.receive(message.data);
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

    /** The sign-in the page was rendered for: tabs of different sign-ins never share a stream. */
    const signIn = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

    /** What htmx-ext-sse needs of an EventSource: listeners, `onopen`, `onerror`, `readyState`, `close()`. */
    class SharedSource extends EventTarget {
      static CONNECTING = 0;
      static OPEN = 1;
      static CLOSED = 2;

      constructor(url) {
        super();
        this.url = new URL(url, location.href).href;
        this.withCredentials = true;
        this.readyState = 0;
        this.onopen = null;
        this.onerror = null;
        this.onmessage = null;
        this.id = ++serial;
        sources.set(this.id, this);
        if (!port) connect();
        port.postMessage({ type: "open", id: this.id, url: this.url, key: signIn() });
      }

      close() {
        if (this.readyState === 2) return;
        this.readyState = 2;
        sources.delete(this.id);
        port.postMessage({ type: "close", id: this.id });
      }

      receive(message) {
        if (this.readyState === 2) return;
        if (message.type === "event") {
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

    htmx.createEventSource = (url) => new SharedSource(url);
  }

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

  // htmx 2. A dropped stream is retried after the server's `retry:`; a refused one is given up by
  // EventSource and opened again by htmx-ext-sse, 500 ms × 2^n later.
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

  // htmx 4's hx-sse: it waits reconnectDelay × 2^(attempt − 1) (at most reconnectMaxDelay, give or
  // take its jitter) before each new try.
  const htmx4Wait = (connection, attempt) => {
    const { reconnectDelay, reconnectMaxDelay } = connection.config;
    return Math.min(Number(reconnectDelay) * 2 ** Math.max(attempt - 1, 0), Number(reconnectMaxDelay));
  };
  document.addEventListener("htmx:sse:after:connection", live);
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
