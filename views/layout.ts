import { html, type Child, type Html } from "./html.ts";
import type { Principal } from "../src/session.ts";

export interface LayoutProps {
  title: string;
  user: Principal | null;
  body: Child;
}

// htmx 2 does not swap 4xx/5xx answers by default; herald's errors are fragments meant to be shown.
// Indicator styles off: htmx would otherwise inject an inline <style>, which a strict CSP blocks.
const HTMX_CONFIG = JSON.stringify({
  includeIndicatorStyles: false,
  responseHandling: [
    { code: "204", swap: false },
    { code: "[2345]..", swap: true, error: false },
    { code: "...", swap: false },
  ],
});

/** The document around every page: htmx and its sse extension, the stylesheet, the top bar. */
export function layout({ title, user, body }: LayoutProps): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · herald</title>
<meta name="htmx-config" content="${HTMX_CONFIG}">
<link rel="stylesheet" href="/assets/herald.css">
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<script src="/assets/htmx.js" defer></script>
<script src="/assets/htmx-ext-sse.js" defer></script>
</head>
<body>
<header class="bar">
  <a class="brand" href="/">herald</a>
  ${user
    ? html`<span class="who">Signed in as <strong>${user.name}</strong></span>
  <form method="post" action="/logout"><button type="submit">Sign out</button></form>`
    : html`<span class="who">Not signed in</span>`}
</header>
<main>
${body}
</main>
</body>
</html>
`;
}
