/**
 * The floor: a bare Bun fan-out, about as little as an SSE server can do. One pre-encoded frame
 * written to every open stream of a topic per publish, the topic's streams found in a map.
 * herald's figures are measured against this.
 *
 * GET /sse?topic=<name> opens a stream (no topic: the topic ""); POST /publish?topic=<name> sends
 * its body as one `notification` event to that topic's streams and answers how many there are.
 * POST /publish-batch takes a JSON list of `{topic, html}` and sends each the same way.
 *
 * With FLOOR_COALESCE=1 it writes as herald's writer does instead: a stream's frames wait for the
 * end of the event loop's turn and go in one write, so a stream that several events reach in one
 * turn costs one system call. That is the least a server can do per event with herald's batching.
 *
 * With FLOOR_LOG=<file> it also takes POST /api/publish as herald does, at its least: the bearer
 * token (FLOOR_TOKEN) compared in constant time, a JSON body `{"target": "topic:<name>", "message":
 * "..."}`, a fragment of herald's size with the message escaped, the event stored in SQLite (WAL,
 * `synchronous=NORMAL`, the events of one turn of the event loop in one transaction) before it is
 * sent and acknowledged, and a JSON answer `{"id", "delivered"}`. No rate limit, idempotency, log
 * line, channel index or resume; SQLite's own checkpoints (every 1,000 pages of WAL, in a commit,
 * on the event loop), as a bare server gets them. The floor of the publish-rate scenario (with
 * FLOOR_COALESCE) and the durable floor of the latency scenario (without).
 *
 * With FLOOR_REDIS=<url> several floor processes serve one port (`reusePort`, on HOST) and
 * POST /publish goes through Redis pub/sub (and answers `published`): each process, subscribed to
 * one channel, writes the event to its own streams. The least a server in several processes can do: `bench:scale`'s floor.
 */
import { Database } from "bun:sqlite";

const encoder = new TextEncoder();
const topics = new Map<string, Set<ReadableStreamDirectController>>();
const coalesce = process.env.FLOOR_COALESCE === "1";
/** With FLOOR_COALESCE: each stream's frames waiting for the end of the turn. */
const due = new Map<ReadableStreamDirectController, Uint8Array[]>();

function writeDue(): void {
  for (const [controller, frames] of due) {
    controller.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
    controller.flush();
  }
  due.clear();
}

/** Writes `frame` to a stream: at once, or with FLOOR_COALESCE at the end of the turn. */
function send(controller: ReadableStreamDirectController, frame: Uint8Array): void {
  if (!coalesce) {
    controller.write(frame);
    controller.flush();
    return;
  }
  if (due.size === 0) setImmediate(writeDue);
  const frames = due.get(controller);
  if (frames) frames.push(frame);
  else due.set(controller, [frame]);
}

/** A stored event: its id, time, SSE event name, fragment and channel. */
type Row = [id: number, at: number, event: string, data: string, channels: string];

/** An append-only SQLite log whose appends resolve once their turn's transaction has committed. */
function openLog(path: string): { append(row: Row): Promise<void> } {
  const db = new Database(path, { create: true, strict: true });
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA synchronous = NORMAL");
  db.run(
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, event TEXT NOT NULL, data TEXT NOT NULL, channels TEXT NOT NULL)",
  );
  db.run("CREATE INDEX IF NOT EXISTS events_at ON events (at)");
  const insert = db.prepare<unknown, Row>("INSERT INTO events (id, at, event, data, channels) VALUES (?, ?, ?, ?, ?)");
  const insertAll = db.transaction((rows: Row[]) => {
    for (const row of rows) insert.run(...row);
  });
  let pending: Row[] = [];
  let committed: Promise<void> | null = null;
  return {
    append(row) {
      pending.push(row);
      committed ??= new Promise<void>((resolve, reject) =>
        setImmediate(() => {
          const rows = pending;
          pending = [];
          committed = null;
          try {
            insertAll(rows);
            resolve();
          } catch (error) {
            reject(error);
          }
        }),
      );
      return committed;
    },
  };
}

/** Whether two strings are equal, in a time that depends on their length only. */
function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

const token = process.env.FLOOR_TOKEN ?? "";
const log = process.env.FLOOR_LOG ? openLog(process.env.FLOOR_LOG) : null;
let lastId = 0;

/** POST /api/publish with FLOOR_LOG (see the header). */
async function apiPublish(req: Request): Promise<Response> {
  const given = /^Bearer (\S+)$/.exec(req.headers.get("authorization") ?? "")?.[1];
  if (given === undefined || !sameText(given, token))
    return Response.json({ error: "not a valid publish token" }, { status: 401 });
  let body: { target?: unknown; message?: unknown } | null;
  try {
    body = (await req.json()) as typeof body;
  } catch {
    return Response.json({ error: "the body is not JSON" }, { status: 400 });
  }
  const { target, message } = body ?? {};
  if (typeof target !== "string" || !target.startsWith("topic:") || typeof message !== "string")
    return Response.json({ error: "give a target topic:<name> and a message" }, { status: 400 });
  const id = ++lastId;
  const at = Date.now();
  const time = new Date(at).toISOString();
  const channel = Bun.escapeHTML(target);
  const html = `<li id="n-${id}" class="notification level-info unread" data-channel="${channel}"><p class="meta"><span class="level">info</span> <span class="channel">${channel}</span>  <time datetime="${time}" title="${time}">${time.slice(11, 19)} UTC</time> <button type="button" class="mark-read" hx-post="/notifications/read" hx-vals="{&quot;id&quot;:&quot;${id}&quot;}" hx-target="#unread-count" hx-swap="outerHTML" hidden>Mark read</button></p><p class="message">${Bun.escapeHTML(message)}</p></li>`;
  await log!.append([id, at, "notification", html, target]);
  const delivered = sendToTopic(target.slice("topic:".length), html, id);
  return Response.json({ id: String(id), delivered });
}

/** Writes `html` as one `notification` event (with `id`, if given) to the streams on `topic`; how many there are. */
function sendToTopic(topic: string, html: string, id?: number): number {
  const streams = topics.get(topic);
  if (!streams) return 0;
  const frame = encoder.encode(`${id === undefined ? "" : `id: ${id}\n`}event: notification\ndata: ${html}\n\n`);
  for (const controller of streams) send(controller, frame);
  return streams.size;
}

/**
 * A stream on `topic`, until its client goes: Bun then cancels the body. Made apart from the
 * request handler and without `req.signal`, so that the stream keeps neither the request nor an
 * `AbortSignal`, as herald's do not.
 */
function streamOn(topic: string): ReadableStream {
  let joined: ReadableStreamDirectController | null = null;
  let ended: (() => void) | null = null;
  return new ReadableStream({
    type: "direct",
    pull(controller) {
      controller.write("retry: 3000\n\n");
      controller.flush();
      let streams = topics.get(topic);
      if (!streams) topics.set(topic, (streams = new Set()));
      streams.add(controller);
      joined = controller;
      return new Promise<void>((resolve) => (ended = resolve));
    },
    cancel() {
      if (joined) {
        topics.get(topic)?.delete(joined);
        due.delete(joined);
      }
      ended?.();
    },
  });
}

/** With FLOOR_REDIS: the connection publishes go out on; each process also subscribes on another. */
const FLOOR_CHANNEL = "floor:events";
const redis = process.env.FLOOR_REDIS ? new Bun.RedisClient(process.env.FLOOR_REDIS) : null;
if (redis) {
  // Connected now, so that the first broadcast does not pay for it.
  await redis.connect();
  const subscriber = new Bun.RedisClient(process.env.FLOOR_REDIS);
  // A message is the topic, a newline, and the fragment.
  await subscriber.subscribe(FLOOR_CHANNEL, (message: string) => {
    const at = message.indexOf("\n");
    sendToTopic(message.slice(0, at), message.slice(at + 1));
  });
}

const server = Bun.serve({
  port: Number(process.env.PORT ?? 0),
  // Several processes on one port listen where their clients are (bench:scale: every loopback address).
  hostname: redis ? (process.env.HOST ?? "127.0.0.1") : "127.0.0.1",
  reusePort: redis !== null,
  routes: {
    "/sse": (req, server) => {
      server.timeout(req, 0);
      const topic = new URL(req.url).searchParams.get("topic") ?? "";
      return new Response(streamOn(topic), {
        headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
      });
    },
    "/publish": {
      POST: async (req) => {
        const topic = new URL(req.url).searchParams.get("topic") ?? "";
        if (!redis) return new Response(String(sendToTopic(topic, await req.text())));
        await redis.publish(FLOOR_CHANNEL, `${topic}\n${await req.text()}`);
        return new Response("published");
      },
    },
    "/publish-batch": {
      POST: async (req) => {
        let sent = 0;
        for (const { topic, html } of (await req.json()) as Array<{ topic: string; html: string }>)
          sent += sendToTopic(topic, html);
        return new Response(String(sent));
      },
    },
    "/api/publish": {
      POST: (req) => (log ? apiPublish(req) : Response.json({ error: "no FLOOR_LOG" }, { status: 404 })),
    },
  },
});

// The same hook herald has: a full GC on request, so both are measured without garbage.
process.on("SIGUSR2", () => Bun.gc(true));
// Under BENCH_CPU_PROF the bench stops it with SIGTERM: exiting, not dying, writes the profile.
process.on("SIGTERM", () => process.exit(0));

console.log(`floor listening on http://127.0.0.1:${server.port}`);
