import { html, type Child, type Html } from "./html.ts";
import type { Viewer } from "../src/server/context.ts";
import { CSRF_FIELD } from "../src/server/csrf.ts";

export interface LayoutProps {
  title: string;
  viewer: Viewer;
  body: Child;
}

/** The hidden field that carries the CSRF token in every form that posts. */
export function csrfField(token: string): Html {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${token}">`;
}

// htmx 2 does not swap 4xx/5xx answers by default; herald's errors are fragments meant to be shown.
// Indicator styles off: htmx would otherwise inject an inline <style>, which the CSP blocks.
// No eval and no <script> from swapped content: the CSP forbids both, and fragments never need them.
const HTMX_CONFIG = JSON.stringify({
  includeIndicatorStyles: false,
  allowEval: false,
  allowScriptTags: false,
  responseHandling: [
    { code: "204", swap: false },
    { code: "[2345]..", swap: true, error: false },
    { code: "...", swap: false },
  ],
});

// htmx 4 needs no config here: it swaps error answers by default, adds its indicator CSS without
// an inline <style>, and has no switches for eval or scripts (fragments never carry either).

/** htmx and its SSE support for the page's version, with its config, and the CSRF header on every htmx request. */
function htmxHead(viewer: Viewer): Html {
  if (viewer.htmx === 4) {
    // Not deferred: htmx 4 starts at once after parsing, and hx-sse must be registered by then.
    return html`<script src="/assets/htmx4.js"></script>
<script src="/assets/htmx4-sse.js"></script>
<script src="/assets/herald.js"></script>`;
  }
  // herald.js between htmx and the extension: it shares streams among tabs (see views/herald.js).
  return html`<meta name="htmx-config" content="${HTMX_CONFIG}">
<script src="/assets/htmx.js" defer></script>
<script src="/assets/herald.js" defer></script>
<script src="/assets/htmx-ext-sse.js" defer></script>`;
}

function bodyHeaders(viewer: Viewer): Html {
  const headers = JSON.stringify({ "X-CSRF-Token": viewer.csrf });
  // htmx 4 inherits attributes only where asked to.
  return viewer.htmx === 4 ? html` hx-headers:inherited="${headers}"` : html` hx-headers="${headers}"`;
}

/** A link to one of herald's pages, keeping a `?htmx=` choice. */
export function pageLink(viewer: Viewer, path: string): string {
  return viewer.htmxAsked ? `${path}${path.includes("?") ? "&" : "?"}htmx=${viewer.htmx}` : path;
}

/** The document around every page: htmx and its SSE support, the stylesheet, the top bar. */
export function layout({ title, viewer, body }: LayoutProps): Html {
  const { user, csrf } = viewer;
  const link = (path: string) => pageLink(viewer, path);
  const other = viewer.htmx === 4 ? 2 : 4;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · herald</title>
${htmxHead(viewer)}
<meta name="csrf-token" content="${csrf}">
<link rel="stylesheet" href="/assets/herald.css">
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
</head>
<body${bodyHeaders(viewer)} data-htmx="${viewer.htmx}">
<header class="bar">
  <a class="brand" href="/">herald</a>
  <nav><a href="${link("/")}">Notifications</a>${viewer.nav.map(({ href, label }) => html` <a href="${link(href)}">${label}</a>`)}${user?.groups.includes("admins") ? html` <a href="${link("/monitor")}">Monitor</a>` : ""}</nav>
  ${
    user
      ? html`<span class="who">Signed in as <strong>${user.name}</strong></span>${
          user.via === "session"
            ? html`
  <form method="post" action="${link("/logout")}">${csrfField(csrf)}<button type="submit">Sign out</button></form>`
            : ""
        }`
      : html`<span class="who">Not signed in</span>`
  }
  <p id="connection" class="connection" role="status" aria-live="polite" data-retry-ms="${viewer.retryMs}" hidden></p>
</header>${
    viewer.demoLogin
      ? html`
<p class="demo-notice" role="note"><strong>Demo sign-in:</strong> anyone can sign in as any name, no password. Connect herald to your app's users before real use.</p>`
      : ""
  }
<main>
${body}
</main>
<footer class="hint page-footer">This page runs on htmx ${viewer.htmx}. <a href="?htmx=${other}">Try it on htmx ${other}</a>.</footer>
</body>
</html>
`;
}
