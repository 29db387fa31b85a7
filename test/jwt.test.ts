import { describe, expect, test } from "bun:test";
import { JwtError, JwtVerifier, MAX_TOKEN_LENGTH } from "../src/server/jwt.ts";
import { inAnHour, testSigner, unsignedToken, type SigningAlgorithm } from "./jwt-sign.ts";

async function verifierFor(alg: SigningAlgorithm, extra: { issuer?: string; audience?: string } = {}) {
  const signer = await testSigner(alg);
  const verifier = await JwtVerifier.create({ secret: signer.secret, publicKey: signer.publicKeyPem, ...extra });
  return { signer, verifier };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(JwtError);
    return (error as Error).message;
  }
  throw new Error("the token was accepted");
}

describe("JWT verification", () => {
  for (const alg of ["HS256", "RS256", "ES256"] as const) {
    test(`${alg}: a token signed with the key gives its claims`, async () => {
      const { signer, verifier } = await verifierFor(alg);
      const exp = inAnHour();
      const token = await signer.sign({
        sub: "alice",
        exp,
        groups: ["ops"],
        herald: { subscribe: ["topic:audit*"], publish: ["topic:orders"] },
      });
      expect(await verifier.verify(token)).toEqual({
        sub: "alice",
        exp,
        groups: ["ops"],
        grants: { subscribe: ["topic:audit*"], publish: ["topic:orders"] },
      });
    });

    test(`${alg}: a token signed with another key is refused`, async () => {
      const { verifier } = await verifierFor(alg);
      const other = await testSigner(alg, "another-secret-0123456789abcdef");
      expect(await refusal(verifier.verify(await other.sign({ sub: "alice", exp: inAnHour() })))).toBe(
        "the signature does not verify",
      );
    });
  }

  test("alg none, a missing alg and an algorithm without a key are refused", async () => {
    const { signer, verifier } = await verifierFor("RS256");
    expect(await refusal(verifier.verify(unsignedToken({ sub: "alice", exp: inAnHour() })))).toContain(
      'algorithm "none" is not accepted',
    );
    expect(
      await refusal(verifier.verify(await signer.sign({ sub: "alice", exp: inAnHour() }, { alg: undefined }))),
    ).toBe("the header names no algorithm");
    // The classic confusion: HS256 "signed" with the public key as the secret.
    const confused = await testSigner("HS256", signer.publicKeyPem);
    expect(await refusal(verifier.verify(await confused.sign({ sub: "alice", exp: inAnHour() })))).toContain(
      'algorithm "HS256" is not accepted',
    );
  });

  test("expired, not yet valid, wrong issuer and wrong audience are refused", async () => {
    const { signer, verifier } = await verifierFor("HS256", { issuer: "https://app.example", audience: "herald" });
    const good = { sub: "alice", exp: inAnHour(), iss: "https://app.example", aud: ["other", "herald"] };
    expect((await verifier.verify(await signer.sign(good))).sub).toBe("alice");
    expect(await refusal(verifier.verify(await signer.sign({ ...good, exp: Math.floor(Date.now() / 1000) - 1 })))).toBe(
      "the token has expired",
    );
    expect(await refusal(verifier.verify(await signer.sign({ ...good, nbf: inAnHour() })))).toBe(
      "the token is not valid yet (nbf)",
    );
    expect(await refusal(verifier.verify(await signer.sign({ ...good, iss: "https://evil.example" })))).toBe(
      "iss is not the configured issuer",
    );
    expect(await refusal(verifier.verify(await signer.sign({ ...good, aud: "someone-else" })))).toBe(
      "aud does not name the configured audience",
    );
    expect(await refusal(verifier.verify(await signer.sign({ sub: "alice", iss: good.iss, aud: "herald" })))).toBe(
      "exp is missing or not a number",
    );
  });

  test("claims of the wrong type or shape are refused, never taken in part", async () => {
    const { signer, verifier } = await verifierFor("HS256");
    const exp = inAnHour();
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ sub: 42, exp }, "sub must be a user id"],
      [{ sub: "Alice Smith", exp }, "sub must be a user id"],
      [{ sub: "../admin", exp }, "sub must be a user id"],
      [{ sub: "alice", exp: "tomorrow" }, "exp is missing or not a number"],
      [{ sub: "alice", exp, groups: "admins" }, "groups must be a list"],
      [{ sub: "alice", exp, groups: ["admins", 7] }, "groups must be a list"],
      [{ sub: "alice", exp, groups: ["Admins!"] }, "groups must be a list"],
      [
        { sub: "alice", exp, groups: Array.from({ length: 65 }, (_, i) => `g${i}`) },
        "groups must be a list of at most 64",
      ],
      [{ sub: "alice", exp, herald: ["topic:*"] }, "the herald claim must be an object"],
      [{ sub: "alice", exp, herald: { subscribe: "topic:*" } }, "herald.subscribe must be a list"],
      [{ sub: "alice", exp, herald: { publish: [{}] } }, "herald.publish must be a list"],
    ];
    for (const [payload, message] of bad)
      expect(await refusal(verifier.verify(await signer.sign(payload)))).toContain(message);
  });

  test("malformed, oversized and deeply nested tokens are refused with a reason", async () => {
    const { signer, verifier } = await verifierFor("HS256");
    expect(await refusal(verifier.verify("not-a-token"))).toBe("the token is not three dot-separated parts");
    expect(await refusal(verifier.verify("a.b.c.d"))).toBe("the token is not three dot-separated parts");
    expect(await refusal(verifier.verify("!!!.e30.x"))).toBe("the header is not base64url");
    expect(await refusal(verifier.verify(`${Buffer.from("{").toString("base64url")}.e30.x`))).toBe(
      "the header is not JSON",
    );
    expect(await refusal(verifier.verify(`${Buffer.from("[1]").toString("base64url")}.e30.x`))).toBe(
      "the header is not a JSON object",
    );
    const huge = await signer.sign({ sub: "alice", exp: inAnHour(), pad: "x".repeat(MAX_TOKEN_LENGTH) });
    expect(await refusal(verifier.verify(huge))).toContain("longer than 8192");
    const deep = JSON.parse(`${"[".repeat(2000)}${"]".repeat(2000)}`) as unknown;
    expect(
      await refusal(verifier.verify(await signer.sign({ sub: "alice", exp: inAnHour(), groups: deep }))),
    ).toContain("groups must be a list");
  });

  test("a key herald cannot use stops the start-up, not a request", async () => {
    await expect(JwtVerifier.create({ publicKey: "not a pem" })).rejects.toThrow(
      "HERALD_JWT_PUBLIC_KEY must be a PEM public key",
    );
    await expect(JwtVerifier.create({})).rejects.toThrow("needs HERALD_JWT_SECRET or HERALD_JWT_PUBLIC_KEY");
  });
});
