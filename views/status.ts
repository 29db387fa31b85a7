import { html, type Html } from "./html.ts";
import { layout } from "./layout.ts";
import type { Viewer } from "../src/server/context.ts";

/**
 * The send form's status line after a publish. The notification is stored either way: with no
 * stream open, it says so, as the notification is not lost.
 */
export function sentStatus(target: string, delivered: number): Html {
  const streams = delivered === 1 ? "1 connected stream" : `${delivered} connected streams`;
  const stored =
    delivered === 0 ? " Nobody there is connected now: it is stored, and shows up when they open herald." : "";
  return html`<span class="ok">Sent to ${streams} on <code>${target}</code>.${stored}</span>`;
}

/** An error as a fragment, for htmx to swap where the request's result would go. */
export function errorFragment(status: number, message: string, signIn = false): Html {
  return html`<span class="error" role="alert" data-status="${status}">${message}${signIn ? html` <a href="/">Sign in</a>` : ""}</span>`;
}

/** An error as a whole page, for a plain form post or a link. */
export function errorPage(status: number, message: string, viewer: Viewer): Html {
  return layout({
    title: `Error ${status}`,
    viewer,
    body: html`<section class="card">
<h1>Error ${status}</h1>
${errorFragment(status, message, status === 401)}
<p><a href="/">Back to herald</a></p>
</section>`,
  });
}

/** The `history-cut` event's data: a notice that events were missed, swapped in out of band. */
export function historyCutNotice(): Html {
  return html`<p id="stream-notice" class="notice" hx-swap-oob="true">You were away longer than herald keeps history, so some notifications may be missing; the list shows the latest.</p>`;
}
