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
 */
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

const server = Bun.serve({
  port: Number(process.env.PORT ?? 0),
  hostname: "127.0.0.1",
  routes: {
    "/sse": (req, server) => {
      server.timeout(req, 0);
      const topic = new URL(req.url).searchParams.get("topic") ?? "";
      const body = new ReadableStream({
        type: "direct",
        pull(controller) {
          controller.write("retry: 3000\n\n");
          controller.flush();
          let streams = topics.get(topic);
          if (!streams) topics.set(topic, (streams = new Set()));
          streams.add(controller);
          return new Promise<void>((resolve) =>
            req.signal.addEventListener("abort", () => {
              streams.delete(controller);
              due.delete(controller);
              resolve();
            }),
          );
        },
      });
      return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
    },
    "/publish": {
      POST: async (req) => {
        const streams = topics.get(new URL(req.url).searchParams.get("topic") ?? "") ?? new Set();
        const frame = encoder.encode(`event: notification\ndata: ${await req.text()}\n\n`);
        for (const controller of streams) send(controller, frame);
        return new Response(String(streams.size));
      },
    },
    "/publish-batch": {
      POST: async (req) => {
        let sent = 0;
        for (const { topic, html } of (await req.json()) as Array<{ topic: string; html: string }>) {
          const frame = encoder.encode(`event: notification\ndata: ${html}\n\n`);
          for (const controller of topics.get(topic) ?? []) {
            send(controller, frame);
            sent++;
          }
        }
        return new Response(String(sent));
      },
    },
  },
});

// The same hook herald has: a full GC on request, so both are measured without garbage.
process.on("SIGUSR2", () => Bun.gc(true));

console.log(`floor listening on http://127.0.0.1:${server.port}`);
