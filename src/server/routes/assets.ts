/**
 * Static files: htmx 2 and its sse extension, and htmx 4 and its hx-sse, straight from
 * `node_modules`, and herald's stylesheet, page script and SharedWorker.
 * Read once at start-up, served with an ETag so browsers revalidate cheaply: herald's own files
 * at each use, the packages' after an hour.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

interface Asset {
  body: Uint8Array;
  etag: string;
  type: string;
  /**
   * herald's own files are revalidated at each use (`no-cache`): their URLs carry no version, and
   * a page script and SharedWorker of different deploys must never meet (a worker script kept from
   * the last deploy would not answer the new page script, whose tabs would each open their own
   * stream). The packages' files may be kept for an hour.
   */
  cache: string;
}

const root = join(import.meta.dir, "..", "..", "..");

const PACKAGE = "public, max-age=3600, must-revalidate";
const OWN = "no-cache";

/** A file read now, to be served with its ETag; herald's own unless `cache` says otherwise. */
export function loadAsset(path: string, type: string, cache = OWN): Asset {
  const body = new Uint8Array(readFileSync(path));
  return { body, etag: `"${Bun.hash(body).toString(36)}"`, type, cache };
}

/** The type of every script served. */
export const JS = "text/javascript; charset=utf-8";

/** Builds the asset table: URL path → file. Throws at start-up if a package is missing. */
export function loadAssets(): Map<string, Asset> {
  const fromPackage = (specifier: string) => loadAsset(Bun.resolveSync(specifier, root), JS, PACKAGE);
  const own = (file: string, type = JS) => loadAsset(join(root, "views", file), type);
  return new Map([
    ["/assets/htmx.js", fromPackage("htmx.org/dist/htmx.min.js")],
    ["/assets/htmx-ext-sse.js", fromPackage("htmx-ext-sse/dist/sse.min.js")],
    // htmx 4 and its built-in SSE extension, installed under the alias htmx4 beside htmx 2.
    ["/assets/htmx4.js", fromPackage("htmx4/dist/htmx.min.js")],
    ["/assets/htmx4-sse.js", fromPackage("htmx4/dist/ext/hx-sse.min.js")],
    ["/assets/herald.css", own("herald.css", "text/css; charset=utf-8")],
    ["/assets/herald.js", own("herald.js")],
    ["/assets/herald-worker.js", own("herald-worker.js")],
    ["/favicon.svg", own("favicon.svg", "image/svg+xml")],
  ]);
}

/** Answers 200 with the file, or 304 when the browser's copy is current. */
export function serveAsset(asset: Asset, req: Request): Response {
  const headers = {
    etag: asset.etag,
    "cache-control": asset.cache,
    "content-type": asset.type,
  };
  if (req.headers.get("if-none-match") === asset.etag) return new Response(null, { status: 304, headers });
  return new Response(asset.body, { headers });
}
