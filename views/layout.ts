import { html, type Child, type Html } from "./html.ts";
import type { Viewer } from "../src/context.ts";
import { CSRF_FIELD } from "../src/csrf.ts";

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

/** The document around every page: htmx and its sse extension, the stylesheet, the top bar. */
export function layout({ title, viewer, body }: LayoutProps): Html {
  const { user, csrf } = viewer;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · herald</title>
<meta name="htmx-config" content="${HTMX_CONFIG}">
<meta name="csrf-token" content="${csrf}">
<link rel="stylesheet" href="/assets/herald.css">
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<script src="/assets/htmx.js" defer></script>
<script src="/assets/htmx-ext-sse.js" defer></script>
</head>
<body hx-headers="${JSON.stringify({ "X-CSRF-Token": csrf })}">
<header class="bar">
  <a class="brand" href="/">herald</a>
  <nav><a href="/">Notifications</a> <a href="/live">Live</a> <a href="/inventory">Inventory</a> <a href="/orders">Orders</a>${user?.groups.includes("admins") ? html` <a href="/monitor">Monitor</a>` : ""}</nav>
  ${user
    ? html`<span class="who">Signed in as <strong>${user.name}</strong></span>
  <form method="post" action="/logout">${csrfField(csrf)}<button type="submit">Sign out</button></form>`
    : html`<span class="who">Not signed in</span>`}
</header>
<main>
${body}
</main>
</body>
</html>
`;
}
