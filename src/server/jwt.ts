/**
 * JSON Web Tokens that an app signs to tell herald who its user is (as Mercure does): verified
 * with WebCrypto, no package. HS256 with a shared secret, RS256 and ES256 with a public key (PEM).
 *
 * Every part of a token is untrusted input: its size, its header, its JSON and each claim's type
 * are checked, and anything off is a `JwtError` whose message says why (for one log line); the
 * caller treats the request as anonymous (pages, streams) or answers 401 (the API).
 */
import { HeraldError } from "../core/errors.ts";
import { GROUP_NAME, USER_ID } from "../core/channel.ts";

/** The algorithms herald verifies. `none` and every other are refused. */
export type JwtAlgorithm = "HS256" | "RS256" | "ES256";

/** The longest token herald reads, in characters: larger ones are refused before any decoding. */
export const MAX_TOKEN_LENGTH = 8 * 1024;

/** Channel patterns a token grants beyond herald's defaults; `*` matches any run of characters. */
export interface JwtGrants {
  subscribe: readonly string[];
  publish: readonly string[];
}

/** What a verified token says. */
export interface JwtClaims {
  /** The user id (`sub`), in herald's user-id syntax. */
  sub: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
  /** The user's groups (`groups`); empty when absent. */
  groups: readonly string[];
  /** The `herald` claim's `subscribe` and `publish` lists; empty when absent. */
  grants: JwtGrants;
}

/** Why a token was refused; the message is safe to log (it never contains the token). */
export class JwtError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JwtError";
  }
}

export interface JwtVerifierOptions {
  /** `HERALD_JWT_SECRET`: the HS256 key. */
  secret?: string;
  /** `HERALD_JWT_PUBLIC_KEY`: a PEM public key (RSA for RS256, P-256 EC for ES256). */
  publicKey?: string;
  /** `HERALD_JWT_ISSUER`: when set, `iss` must equal it. */
  issuer?: string;
  /** `HERALD_JWT_AUDIENCE`: when set, `aud` must equal it or list it. */
  audience?: string;
}

/** One of each, made once: a fatal decoder costs more to make than a token's whole check. */
const UTF8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();
const MAX_GROUPS = 64;
const MAX_PATTERNS = 64;
const PATTERN = /^[A-Za-z0-9:._*-]{1,128}$/;

function base64urlBytes(text: string, what: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new JwtError(`the ${what} is not base64url`);
  return new Uint8Array(Buffer.from(text, "base64url"));
}

function jsonPart(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(UTF8.decode(base64urlBytes(text, what)));
  } catch (error) {
    if (error instanceof JwtError) throw error;
    throw new JwtError(`the ${what} is not JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new JwtError(`the ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

function pemBody(pem: string): Uint8Array<ArrayBuffer> {
  const match = /-----BEGIN PUBLIC KEY-----([\s\S]+?)-----END PUBLIC KEY-----/.exec(pem);
  if (!match) throw new HeraldError("HERALD_JWT_PUBLIC_KEY must be a PEM public key (-----BEGIN PUBLIC KEY-----)");
  return new Uint8Array(Buffer.from(match[1]!.replace(/\s+/g, ""), "base64"));
}

function stringList(value: unknown, max: number, check: RegExp, what: string): string[] {
  if (value === undefined) return [];
  if (
    !Array.isArray(value) ||
    value.length > max ||
    !value.every((item) => typeof item === "string" && check.test(item))
  ) {
    throw new JwtError(`${what} must be a list of at most ${max} names`);
  }
  return value as string[];
}

type VerifyingKey = { key: CryptoKey; params: string | { name: string; hash: string } };

/** Verifies tokens with the configured keys. Make one at start-up: importing a key is async. */
export class JwtVerifier {
  readonly #keys: Map<JwtAlgorithm, VerifyingKey>;
  readonly #issuer: string | undefined;
  readonly #audience: string | undefined;

  private constructor(keys: Map<JwtAlgorithm, VerifyingKey>, options: JwtVerifierOptions) {
    this.#keys = keys;
    this.#issuer = options.issuer;
    this.#audience = options.audience;
  }

  /** Imports the keys; throws for a key WebCrypto cannot use (a start-up error, not a request's). */
  static async create(options: JwtVerifierOptions): Promise<JwtVerifier> {
    const keys = new Map<JwtAlgorithm, VerifyingKey>();
    if (options.secret) {
      const key = await crypto.subtle.importKey(
        "raw",
        new TextEncoder().encode(options.secret),
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["verify"],
      );
      keys.set("HS256", { key, params: "HMAC" });
    }
    if (options.publicKey) {
      const der = pemBody(options.publicKey);
      const rsa = await crypto.subtle
        .importKey("spki", der, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["verify"])
        .catch(() => null);
      if (rsa) keys.set("RS256", { key: rsa, params: "RSASSA-PKCS1-v1_5" });
      const ec = rsa
        ? null
        : await crypto.subtle
            .importKey("spki", der, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"])
            .catch(() => null);
      if (ec) keys.set("ES256", { key: ec, params: { name: "ECDSA", hash: "SHA-256" } });
      if (!rsa && !ec) throw new HeraldError("HERALD_JWT_PUBLIC_KEY is neither an RSA nor a P-256 EC public key");
    }
    if (keys.size === 0) throw new HeraldError("a JWT verifier needs HERALD_JWT_SECRET or HERALD_JWT_PUBLIC_KEY");
    return new JwtVerifier(keys, options);
  }

  /** The algorithms this verifier accepts. */
  get algorithms(): JwtAlgorithm[] {
    return [...this.#keys.keys()];
  }

  /** The claims of a valid token; `JwtError` saying why for anything else. */
  async verify(token: string, now = Date.now()): Promise<JwtClaims> {
    if (token.length > MAX_TOKEN_LENGTH) throw new JwtError(`the token is longer than ${MAX_TOKEN_LENGTH} characters`);
    const parts = token.split(".");
    if (parts.length !== 3) throw new JwtError("the token is not three dot-separated parts");
    const [headerText, payloadText, signatureText] = parts as [string, string, string];
    const header = jsonPart(headerText, "header");
    const alg = header.alg;
    if (typeof alg !== "string") throw new JwtError("the header names no algorithm");
    const verifying = this.#keys.get(alg as JwtAlgorithm);
    if (!verifying)
      throw new JwtError(
        `algorithm ${JSON.stringify(alg.slice(0, 16))} is not accepted (accepted: ${this.algorithms.join(", ")})`,
      );
    if (header.crit !== undefined) throw new JwtError("the header has critical extensions herald does not know");
    const signature = base64urlBytes(signatureText, "signature");
    const signed = encoder.encode(`${headerText}.${payloadText}`);
    const valid = await crypto.subtle.verify(verifying.params, verifying.key, signature, signed).catch(() => false);
    if (!valid) throw new JwtError("the signature does not verify");
    return this.#claims(jsonPart(payloadText, "payload"), now);
  }

  #claims(payload: Record<string, unknown>, now: number): JwtClaims {
    const { sub, exp, nbf, iss, aud, groups, herald } = payload;
    if (typeof sub !== "string" || !USER_ID.test(sub))
      throw new JwtError("sub must be a user id (1–32 lower-case letters, digits, - or _)");
    if (typeof exp !== "number" || !Number.isFinite(exp)) throw new JwtError("exp is missing or not a number");
    const seconds = now / 1000;
    if (exp <= seconds) throw new JwtError("the token has expired");
    if (nbf !== undefined && (typeof nbf !== "number" || nbf > seconds))
      throw new JwtError("the token is not valid yet (nbf)");
    if (this.#issuer !== undefined && iss !== this.#issuer) throw new JwtError("iss is not the configured issuer");
    if (this.#audience !== undefined) {
      const audiences = typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud : [];
      if (!audiences.includes(this.#audience)) throw new JwtError("aud does not name the configured audience");
    }
    const grants: JwtGrants = { subscribe: [], publish: [] };
    if (herald !== undefined) {
      if (typeof herald !== "object" || herald === null || Array.isArray(herald))
        throw new JwtError("the herald claim must be an object");
      const claim = herald as Record<string, unknown>;
      grants.subscribe = stringList(claim.subscribe, MAX_PATTERNS, PATTERN, "herald.subscribe");
      grants.publish = stringList(claim.publish, MAX_PATTERNS, PATTERN, "herald.publish");
    }
    return { sub, exp, groups: stringList(groups, MAX_GROUPS, GROUP_NAME, "groups"), grants };
  }
}
