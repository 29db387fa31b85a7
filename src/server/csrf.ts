/**
 * Cross-site request forgery defence for browser forms, two checks deep:
 *
 * 1. Fetch metadata: a form post whose `Sec-Fetch-Site` is `cross-site` or `same-site`, or whose
 *    `Origin` is not herald's own, is refused before its body is read.
 * 2. A token bound to the visitor: a random `herald_csrf` cookie (set on the first page view,
 *    and anew at every sign-in) and the sign-in session, HMAC-signed with the server secret, so a
 *    token ends with the session it was issued for. Pages carry it in a hidden
 *    `_csrf` field and in `<meta name="csrf-token">`; htmx sends it as `X-CSRF-Token`
 *    (`hx-headers` on `<body>`, so no inline script is needed).
 */
import { timingSafeEqual } from "node:crypto";
import { HttpError } from "./errors.ts";

export const CSRF_COOKIE = "herald_csrf";
export const CSRF_FIELD = "_csrf";
export const CSRF_HEADER = "x-csrf-token";
/** The CSRF cookie's lifetime in seconds: it outlives sessions, and is replaced at each sign-in and sign-out. */
export const CSRF_COOKIE_MAX_AGE_S = 365 * 24 * 3600;

const NONCE = /^[A-Za-z0-9_-]{22}$/;

/** A fresh random cookie value. */
export function newNonce(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64url");
}

/** Whether a cookie value has the shape `newNonce` makes. */
export function isNonce(value: string | null | undefined): value is string {
  return typeof value === "string" && NONCE.test(value);
}

export class CsrfTokens {
  readonly #secret: string;

  constructor(secret: string) {
    this.#secret = secret;
  }

  /** The token for a visitor's cookie nonce and sign-in (`csrfSubject`; `null` when anonymous). */
  token(nonce: string, subject: string | null): string {
    return new Bun.CryptoHasher("sha256", this.#secret).update(`csrf\n${nonce}\n${subject ?? ""}`).digest("base64url");
  }

  /** Throws 403 unless `given` is the token for this nonce and sign-in. */
  verify(nonce: string | null, subject: string | null, given: string | null | undefined): void {
    if (!isNonce(nonce)) {
      throw new HttpError(
        403,
        "This form has no security cookie: reload the page (with cookies enabled) and send it again.",
      );
    }
    if (!given) throw new HttpError(403, "This form is missing its security token: reload the page and send it again.");
    const expected = Buffer.from(this.token(nonce, subject));
    const actual = Buffer.from(given);
    if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
      throw new HttpError(
        403,
        "This form's security token is wrong or out of date: reload the page and send it again.",
      );
    }
  }
}

/**
 * Refuses a form post that a browser says came from another site. `allowedOrigins` are herald's
 * own origins (the request's, and `HERALD_PUBLIC_URL`'s).
 */
export function checkSameOrigin(req: Request, allowedOrigins: readonly string[]): void {
  const site = req.headers.get("sec-fetch-site");
  if (site && site !== "same-origin" && site !== "none") {
    throw new HttpError(403, `Form posts from another site are refused (Sec-Fetch-Site: ${site}).`);
  }
  const origin = req.headers.get("origin");
  if (origin && !allowedOrigins.includes(origin)) {
    throw new HttpError(403, `Form posts from another origin are refused (Origin: ${origin}).`);
  }
}
