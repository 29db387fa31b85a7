/**
 * An example of another site embedding a herald feed: a shop page on its own origin that loads
 * htmx and its SSE support from herald and includes the live `/embed/orders` fragment.
 *
 *   HERALD_CORS_ORIGINS=http://localhost:3001 HERALD_PUBLIC_URL=http://localhost:3000 npm run dev
 *                                                             # herald on :3000, allowing this page
 *   bun examples/embed-page.ts                                # this page on :3001
 *
 * HERALD_URL (default http://localhost:3000) says where herald is; EMBED_PORT (default 3001)
 * where this page listens; EMBED_HTMX (`2` or `4`, default 2) which htmx the page uses.
 */
const herald = (process.env.HERALD_URL ?? "http://localhost:3000").replace(/\/$/, "");
const escapeText = (text: string) => Bun.escapeHTML(text);

/** The page: htmx from herald, allowed to make cross-origin requests, and the feed fragment loaded into place. */
export function embedPage(heraldUrl: string, topic = "orders", htmx: 2 | 4 = 2): string {
  const base = escapeText(heraldUrl);
  // htmx 2: allow requests to other origins. htmx 4: the same is `mode: cors`, and its scripts are
  // not deferred, so that hx-sse is registered before htmx processes the page.
  const head =
    htmx === 4
      ? `<meta name="htmx-config" content='{"mode":"cors"}'>
<script src="${base}/assets/htmx4.js"></script>
<script src="${base}/assets/htmx4-sse.js"></script>`
      : `<meta name="htmx-config" content='{"selfRequestsOnly":false}'>
<script src="${base}/assets/htmx.js"></script>
<script src="${base}/assets/htmx-ext-sse.js"></script>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Example shop · live orders from herald</title>
${head}
<style>
  body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
  .herald-feed { list-style: none; padding: 0; }
  .herald-feed li { border-left: 4px solid #3b5bdb; margin: .4rem 0; padding: .3rem .6rem; background: #f5f6f8; }
  .herald-embed .mark-read { display: none; }
</style>
</head>
<body>
<h1>Example shop</h1>
<p>Live orders, streamed from herald on another origin:</p>
<div id="feed" hx-get="${base}/embed/${escapeText(topic)}?htmx=${htmx}" hx-trigger="load" hx-swap="innerHTML">Loading the feed…</div>
</body>
</html>
`;
}

if (import.meta.main) {
  const server = Bun.serve({
    port: Number(process.env.EMBED_PORT ?? 3001),
    fetch: () =>
      new Response(embedPage(herald, "orders", process.env.EMBED_HTMX === "4" ? 4 : 2), {
        headers: { "content-type": "text/html; charset=utf-8" },
      }),
  });
  console.log(`example page listening on http://localhost:${server.port}, embedding ${herald}`);
}
