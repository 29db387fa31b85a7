/*
 * herald's SharedWorker: one event stream per stream URL and sign-in for all the tabs of a browser, so
 * that any number of tabs fit in the browser's six HTTP/1.1 connections per host. Tabs reach it
 * through `/assets/herald.js`, which hands htmx-ext-sse an EventSource look-alike (htmx 2), or hx-sse
 * a response whose body the worker feeds (htmx 4).
 *
 * The stream is read with fetch rather than EventSource: the worker sees every event whatever its
 * name, knows the `retry:` the server asked for, and can send `Last-Event-ID` itself.
 *
 * A tab that joins a stream already open is sent what the stream has kept: its `snapshot` and every
 * event since, in order. It thus reaches the same state as the tabs that were there, with nothing
 * missed and nothing twice, since the worker is one thread and live events come after the replay.
 *
 * Messages from a tab: `{type: "hello", lock}`, `{type: "open", id, url, key, headers}`,
 * `{type: "close", id}`, `{type: "bye"}`. To a tab: `{type: "ready"}` as it connects,
 * `{type: "state", id, state: "open" | "reconnecting", retryMs}` and
 * `{type: "event", id, event, data, lastEventId, hasId}`. Changing these means changing the worker's
 * name in herald.js (`herald-2`), so that tabs of an older deploy keep their own worker.
 */

/**
 * Most events a stream keeps after its snapshot for tabs that join later. Past it, the stream starts
 * again without an id: herald answers with a fresh snapshot, which every tab applies.
 */
const MAX_KEPT = 500;
/** The wait before reconnecting until the server sends `retry:` (EventSource's usual default). */
const DEFAULT_RETRY_MS = 3000;

/** Open streams by key: the URL and the sign-in of the tabs sharing it. */
const streams = new Map();

self.onconnect = (event) => {
  const port = event.ports[0];
  port.onmessage = (message) => receive(port, message.data);
  port.postMessage({ type: "ready" });
  // Where the browser tells a port that its tab is gone.
  port.addEventListener("close", () => forget(port));
};

function receive(port, message) {
  switch (message.type) {
    case "hello":
      // The tab holds this lock while it lives: it is ours once the tab has closed or navigated away.
      if (self.navigator.locks && message.lock) self.navigator.locks.request(message.lock, () => forget(port));
      return;
    case "open":
      join(port, message);
      return;
    case "close":
      for (const stream of streams.values())
        leave(stream, (member) => member.port === port && member.id === message.id);
      return;
    case "bye":
      forget(port);
  }
}

function forget(port) {
  for (const stream of streams.values()) leave(stream, (member) => member.port === port);
}

function join(port, { id, url, key, headers }) {
  const streamKey = `${url}\n${key}`;
  let stream = streams.get(streamKey);
  const member = { port, id };
  if (stream) {
    stream.members.add(member);
    if (stream.state === "open") send(member, { type: "state", state: "open" });
    else if (stream.state === "reconnecting")
      send(member, { type: "state", state: "reconnecting", retryMs: stream.waitMs });
    for (const kept of stream.kept) send(member, kept);
    return;
  }
  stream = {
    key: streamKey,
    url,
    // The first tab's request headers (htmx 4's `HX-Request` asks herald for its framing).
    headers: Object.fromEntries(
      Object.entries(headers ?? {}).filter(([name]) => name.toLowerCase() !== "last-event-id"),
    ),
    members: new Set([member]),
    state: "connecting",
    lastId: "",
    retryMs: DEFAULT_RETRY_MS,
    waitMs: 0,
    failures: 0,
    kept: [],
    logged: 0,
    controller: null,
    wake: null,
    ended: false,
    restart: false,
  };
  streams.set(streamKey, stream);
  void run(stream);
}

function leave(stream, matches) {
  for (const member of stream.members) if (matches(member)) stream.members.delete(member);
  if (stream.members.size > 0 || stream.ended) return;
  stream.ended = true;
  streams.delete(stream.key);
  stream.controller?.abort();
  stream.wake?.();
}

function send(member, message) {
  member.port.postMessage({ ...message, id: member.id });
}

function broadcast(stream, message) {
  for (const member of stream.members) send(member, message);
}

/** Connects, reads, and reconnects the way EventSource and htmx-ext-sse would, until no tab is left. */
async function run(stream) {
  while (!stream.ended) {
    const controller = new AbortController();
    stream.controller = controller;
    let delay = stream.retryMs;
    try {
      const headers = { accept: "text/event-stream", ...stream.headers };
      if (stream.lastId) headers["last-event-id"] = stream.lastId;
      const response = await fetch(stream.url, {
        headers,
        credentials: "same-origin",
        cache: "no-store",
        signal: controller.signal,
      });
      const type = response.headers.get("content-type") ?? "";
      if (response.ok && type.startsWith("text/event-stream") && response.body) {
        stream.failures = 0;
        setState(stream, "open");
        await read(stream, response.body);
      } else {
        // A refusal: EventSource would give up, and htmx-ext-sse would try again later, doubling the
        // wait. Its body is read for an htmx 4 stream's `event: close`, which ends hx-sse's tries.
        if (response.body) await read(stream, response.body);
        stream.failures++;
        delay = Math.min(2 ** (stream.failures - 1), 128) * 500;
      }
    } catch {
      // The network failed or the stream was aborted: try again after `retry`, as EventSource does.
    }
    if (stream.ended) return;
    if (stream.restart) {
      stream.restart = false;
      continue;
    }
    stream.waitMs = delay;
    setState(stream, "reconnecting");
    await new Promise((resolve) => {
      stream.wake = resolve;
      setTimeout(resolve, delay);
    });
    stream.wake = null;
  }
}

function setState(stream, state) {
  stream.state = state;
  broadcast(stream, state === "open" ? { type: "state", state } : { type: "state", state, retryMs: stream.waitMs });
}

/** Reads a `text/event-stream` body as the WHATWG HTML standard says, handing each event on. */
async function read(stream, body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "";
  let data = [];
  let hasId = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop() ?? "";
    for (const line of lines) {
      // After a restart the rest of this body belongs to the stream given up.
      if (stream.restart || stream.ended) return;
      if (line === "") {
        if (data.length > 0) deliver(stream, { event: event || "message", data: data.join("\n"), hasId });
        event = "";
        data = [];
        hasId = false;
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? "" : line.slice(colon + 1);
      if (text.startsWith(" ")) text = text.slice(1);
      if (field === "data") data.push(text);
      else if (field === "event") event = text;
      else if (field === "id" && !text.includes("\0")) {
        stream.lastId = text;
        hasId = true;
      } else if (field === "retry" && /^\d+$/.test(text)) stream.retryMs = Number(text);
    }
  }
}

/**
 * Keeps an event for tabs that join later and sends it to the tabs there now. A `snapshot` starts
 * the kept list again. An event without an id (herald's unread counts and live figures) replaces
 * the last one of its name: each carries the whole of its region.
 */
function deliver(stream, { event, data, hasId }) {
  const message = { type: "event", event, data, lastEventId: stream.lastId, hasId };
  if (event === "snapshot") {
    stream.kept = [message];
    stream.logged = 0;
  } else {
    if (!hasId) {
      const index = stream.kept.findIndex((kept) => kept.event === event && !kept.hasId);
      if (index >= 0) stream.kept.splice(index, 1);
    } else stream.logged++;
    stream.kept.push(message);
  }
  broadcast(stream, message);
  if (stream.logged > MAX_KEPT) {
    stream.lastId = "";
    stream.kept = [];
    stream.logged = 0;
    stream.restart = true;
    stream.controller?.abort();
  }
}
