/**
 * An app of its own that mounts herald as a library: its own routes beside herald's in one
 * `Bun.serve`, publishing server-rendered fragments with herald's `html` tag.
 *
 *   bun examples/library-app.ts      # http://localhost:3002/app (APP_PORT sets the port)
 *
 * `/app` is the app's page: it loads htmx from herald's `/assets/` and follows topic `releases`
 * through herald's `/sse`. `POST /app/releases` (a form field `version`) is the app's own route:
 * it publishes the release to that topic. Everything else (`/sse`, `/`, `/healthz`, …) is herald's.
 */
import { createHerald, html, type HeraldApp } from "herald";

export interface ExampleApp {
  url: string;
  herald: HeraldApp;
  stop(): Promise<void>;
}

const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Releases · an app using herald</title>
<script src="/assets/htmx.js" defer></script>
<script src="/assets/htmx-ext-sse.js" defer></script>
</head>
<body>
<h1>Releases</h1>
<div hx-ext="sse" sse-connect="/sse?topic=releases">
  <ul id="releases" sse-swap="release" hx-swap="afterbegin"></ul>
</div>
</body>
</html>
`;

/** Starts the app on `port` (0 picks a free one), keeping herald's files in `dataDir`. */
export async function startExample({ port = 0, dataDir = "./data/example" } = {}): Promise<ExampleApp> {
  const herald = await createHerald({ dataDir, logLevel: "warn" });
  const server = Bun.serve({
    port,
    development: false,
    routes: {
      ...herald.routes,
      "/app": () => new Response(page.value, { headers: { "content-type": "text/html; charset=utf-8" } }),
      "/app/releases": {
        POST: async (req) => {
          const version = String((await req.formData()).get("version") ?? "").trim();
          if (!/^\d+\.\d+\.\d+$/.test(version))
            return Response.json({ error: "version must look like 1.2.3" }, { status: 400 });
          const fragment = html`<li class="release">Version <strong>${version}</strong> is out.</li>`;
          const { id, delivered } = await herald.hub.publishToTopic("releases", {
            event: "release",
            data: fragment.value,
          });
          return Response.json({ id, delivered });
        },
      },
    },
    fetch: herald.fetch,
  });
  return {
    url: `http://localhost:${server.port}`,
    herald,
    stop: () => herald.stop(() => server.stop(true)),
  };
}

if (import.meta.main) {
  const app = await startExample({ port: Number(process.env.APP_PORT ?? 3002) });
  console.log(`example app listening on ${app.url}/app`);
  process.on("SIGINT", () => void app.stop().then(() => process.exit(0)));
}
