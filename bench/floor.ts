/**
 * The floor: a bare Bun fan-out, about as little as an SSE server can do. One pre-encoded frame
 * written to every open stream of a topic per publish, the topic's streams found in a map.
 * herald's figures are measured against this.
 *
 * GET /sse?topic=<name> opens a stream (no topic: the topic ""); POST /publish?topic=<name> sends
 * its body as one `notification` event to that topic's streams and answers how many there are.
 * POST /publish-batch takes a JSON list of `{topic, html}` and sends each the same way.
 */
const encoder = new TextEncoder();
const topics = new Map<string, Set<ReadableStreamDirectController>>();

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
        for (const controller of streams) {
          controller.write(frame);
          controller.flush();
        }
        return new Response(String(streams.size));
      },
    },
    "/publish-batch": {
      POST: async (req) => {
        let sent = 0;
        for (const { topic, html } of (await req.json()) as Array<{ topic: string; html: string }>) {
          const frame = encoder.encode(`event: notification\ndata: ${html}\n\n`);
          for (const controller of topics.get(topic) ?? []) {
            controller.write(frame);
            controller.flush();
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
