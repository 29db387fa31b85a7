/**
 * Signing JWTs in tests, with WebCrypto, the way an app that uses herald would: HS256 with a
 * shared secret, RS256 and ES256 with a key pair whose public half herald is given as PEM.
 */
export type SigningAlgorithm = "HS256" | "RS256" | "ES256";

function base64url(bytes: Uint8Array | string): string {
  return Buffer.from(bytes).toString("base64url");
}

/** A key that signs tokens, and what herald needs to verify them. */
export interface TestSigner {
  alg: SigningAlgorithm;
  /** For HS256: the shared secret. */
  secret?: string;
  /** For RS256 and ES256: the public key as PEM. */
  publicKeyPem?: string;
  /** Signs `payload` with this key (and `header` fields on top of `{alg, typ}`). */
  sign(payload: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>;
}

async function signWith(
  key: CryptoKey,
  params: string | { name: string; hash: string },
  alg: string,
  payload: Record<string, unknown>,
  header: Record<string, unknown>,
): Promise<string> {
  const head = base64url(JSON.stringify({ alg, typ: "JWT", ...header }));
  const body = base64url(JSON.stringify(payload));
  const signature = await crypto.subtle.sign(params, key, new TextEncoder().encode(`${head}.${body}`));
  return `${head}.${body}.${base64url(new Uint8Array(signature))}`;
}

function pem(der: ArrayBuffer): string {
  const body = Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n");
  return `-----BEGIN PUBLIC KEY-----\n${body}\n-----END PUBLIC KEY-----\n`;
}

/** A new signer for `alg`, with a fresh key. */
export async function testSigner(
  alg: SigningAlgorithm,
  secret = "jwt-test-secret-0123456789abcdef",
): Promise<TestSigner> {
  if (alg === "HS256") {
    const key = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    return { alg, secret, sign: (payload, header = {}) => signWith(key, "HMAC", alg, payload, header) };
  }
  const pair =
    alg === "RS256"
      ? await crypto.subtle.generateKey(
          {
            name: "RSASSA-PKCS1-v1_5",
            modulusLength: 2048,
            publicExponent: new Uint8Array([1, 0, 1]),
            hash: "SHA-256",
          },
          true,
          ["sign", "verify"],
        )
      : await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const params = alg === "RS256" ? "RSASSA-PKCS1-v1_5" : { name: "ECDSA", hash: "SHA-256" };
  return {
    alg,
    publicKeyPem: pem(await crypto.subtle.exportKey("spki", pair.publicKey)),
    sign: (payload, header = {}) => signWith(pair.privateKey, params, alg, payload, header),
  };
}

/** `exp` an hour from now, in seconds. */
export function inAnHour(): number {
  return Math.floor(Date.now() / 1000) + 3600;
}

/** A token with no signature at all (`alg: none`), as an attacker would send it. */
export function unsignedToken(payload: Record<string, unknown>): string {
  return `${base64url(JSON.stringify({ alg: "none", typ: "JWT" }))}.${base64url(JSON.stringify(payload))}.`;
}
