/**
 * The floor: a bare Bun fan-out, about as little as an SSE server can do. One pre-encoded frame
 * written to every open stream per publish. herald's figures are measured against this.
 *
 * GET /sse opens a stream; POST /publish sends its body as one `notification` event to all.
 */
const encoder = new TextEncoder();
const streams = new Set<ReadableStreamDirectController>();

const server = Bun.serve({
  port: Number(process.env.PORT ?? 0),
  hostname: "127.0.0.1",
  routes: {
    "/sse": (req, server) => {
      server.timeout(req, 0);
      const body = new ReadableStream({
        type: "direct",
        pull(controller) {
          controller.write("retry: 3000\n\n");
          controller.flush();
          streams.add(controller);
          return new Promise<void>((resolve) =>
            req.signal.addEventListener("abort", () => (streams.delete(controller), resolve())),
          );
        },
      });
      return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
    },
    "/publish": {
      POST: async (req) => {
        const frame = encoder.encode(`event: notification\ndata: ${await req.text()}\n\n`);
        for (const controller of streams) {
          controller.write(frame);
          controller.flush();
        }
        return new Response(String(streams.size));
      },
    },
  },
});

// The same hook herald has: a full GC on request, so both are measured without garbage.
process.on("SIGUSR2", () => Bun.gc(true));

console.log(`floor listening on http://127.0.0.1:${server.port}`);
