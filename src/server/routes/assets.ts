/**
 * Static files: htmx 2 and its sse extension, and htmx 4 and its hx-sse, straight from
 * `node_modules`, and herald's stylesheet, page script and SharedWorker.
 * Read once at start-up, served with an ETag so browsers revalidate cheaply.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

interface Asset {
  body: Uint8Array;
  etag: string;
  type: string;
}

const root = join(import.meta.dir, "..", "..", "..");

function load(path: string, type: string): Asset {
  const body = new Uint8Array(readFileSync(path));
  return { body, etag: `"${Bun.hash(body).toString(36)}"`, type };
}

/** Builds the asset table: URL path → file. Throws at start-up if a package is missing. */
export function loadAssets(): Map<string, Asset> {
  const resolve = (specifier: string) => Bun.resolveSync(specifier, root);
  return new Map([
    ["/assets/htmx.js", load(resolve("htmx.org/dist/htmx.min.js"), "text/javascript; charset=utf-8")],
    ["/assets/htmx-ext-sse.js", load(resolve("htmx-ext-sse/dist/sse.min.js"), "text/javascript; charset=utf-8")],
    // htmx 4 and its built-in SSE extension, installed under the alias htmx4 beside htmx 2.
    ["/assets/htmx4.js", load(resolve("htmx4/dist/htmx.min.js"), "text/javascript; charset=utf-8")],
    ["/assets/htmx4-sse.js", load(resolve("htmx4/dist/ext/hx-sse.min.js"), "text/javascript; charset=utf-8")],
    ["/assets/herald.css", load(join(root, "views", "herald.css"), "text/css; charset=utf-8")],
    ["/assets/herald.js", load(join(root, "views", "herald.js"), "text/javascript; charset=utf-8")],
    ["/assets/herald-worker.js", load(join(root, "views", "herald-worker.js"), "text/javascript; charset=utf-8")],
    ["/favicon.svg", load(join(root, "views", "favicon.svg"), "image/svg+xml")],
  ]);
}

/** Answers 200 with the file, or 304 when the browser's copy is current. */
export function serveAsset(asset: Asset, req: Request): Response {
  const headers = {
    etag: asset.etag,
    "cache-control": "public, max-age=3600, must-revalidate",
    "content-type": asset.type,
  };
  if (req.headers.get("if-none-match") === asset.etag) return new Response(null, { status: 304, headers });
  return new Response(asset.body, { headers });
}
