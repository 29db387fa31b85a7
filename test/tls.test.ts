import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { Herald } from "../src/app.ts";
import { HeraldError } from "../src/core/errors.ts";
import { createHerald } from "../src/server/app.ts";
import { loadConfig } from "../src/server/config.ts";
import { devCertificate } from "../src/server/tls.ts";
import { eventually, SseReader, startTestHerald } from "./helpers.ts";

const entry = join(import.meta.dir, "..", "src", "main.ts");

let dir: string;
let pair: { cert: string; key: string };
let ca: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "herald-tls-"));
  pair = await devCertificate(dir);
  ca = readFileSync(pair.cert, "utf8");
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A request over https that trusts the test's certificate, as Bun's `fetch` makes it (HTTP/1.1). */
function get(herald: Herald, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${herald.url}${path}`, { ...init, redirect: "manual", tls: { ca } });
}

/** The cookie pairs of `res`'s `Set-Cookie` headers, ready for a `Cookie` header. */
function cookiesOf(res: Response, before = ""): string {
  const jar = new Map(
    [...before.split("; ").filter(Boolean), ...res.headers.getSetCookie().map((c) => c.split(";")[0]!)].map((p) => [
      p.split("=")[0]!,
      p,
    ]),
  );
  return [...jar.values()].join("; ");
}

/** Signs in through the form over https; returns the cookies and every `Set-Cookie` seen. */
async function signIn(herald: Herald, name: string): Promise<{ cookie: string; setCookies: string[] }> {
  const first = await get(herald, "/");
  const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(await first.text())![1]!;
  const anonymous = cookiesOf(first);
  const res = await get(herald, "/login", {
    method: "POST",
    body: new URLSearchParams({ _csrf: csrf, name }),
    headers: { cookie: anonymous },
  });
  expect(res.status).toBe(303);
  return {
    cookie: cookiesOf(res, anonymous),
    setCookies: [...first.headers.getSetCookie(), ...res.headers.getSetCookie()],
  };
}

/** An HTTP/2 session to `herald`, trusting the test's certificate. */
async function h2Session(herald: Herald): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(herald.url, { ca });
  await new Promise<void>((resolve, reject) => {
    session.once("connect", () => resolve());
    session.once("error", reject);
  });
  return session;
}

/** Sends `headers` on an HTTP/2 stream; resolves with the response headers and the stream. */
async function h2Request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
): Promise<{ headers: http2.IncomingHttpHeaders; stream: http2.ClientHttp2Stream }> {
  const stream = session.request(headers);
  const response = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
    stream.once("response", resolve);
    stream.once("error", reject);
  });
  return { headers: response, stream };
}

/**
 * Opens `/sse` on an HTTP/2 stream with `cookie`; its reader's `close()` resets the stream
 * (RST_STREAM CANCEL) as a browser does, leaving the connection open.
 */
async function h2Sse(
  session: http2.ClientHttp2Session,
  cookie: string,
): Promise<{ headers: http2.IncomingHttpHeaders; stream: http2.ClientHttp2Stream; reader: SseReader }> {
  const { headers, stream } = await h2Request(session, { ":path": "/sse", accept: "text/event-stream", cookie });
  const controller = new AbortController();
  controller.signal.addEventListener("abort", () => stream.close(http2.constants.NGHTTP2_CANCEL));
  const reader = new SseReader(
    new Response(Readable.toWeb(stream) as unknown as ReadableStream<Uint8Array>),
    controller,
  );
  return { headers, stream, reader };
}

async function h2Text(stream: http2.ClientHttp2Stream): Promise<string> {
  let text = "";
  stream.setEncoding("utf8");
  for await (const chunk of stream) text += chunk;
  return text;
}

describe("https with HTTP/2 (HERALD_TLS_CERT, HERALD_TLS_KEY)", () => {
  let herald: Herald;

  beforeAll(() => {
    herald = startTestHerald({ tlsCert: pair.cert, tlsKey: pair.key });
  });

  afterAll(() => herald.stop());

  test("npm run dev:tls's certificate names localhost and 127.0.0.1, its key is private, and it is made once", async () => {
    const certificate = new X509Certificate(ca);
    expect(certificate.subjectAltName).toContain("DNS:localhost");
    expect(certificate.subjectAltName).toContain("IP Address:127.0.0.1");
    expect(statSync(pair.key).mode & 0o777).toBe(0o600);
    await devCertificate(dir);
    expect(readFileSync(pair.cert, "utf8")).toBe(ca);
  });

  test("serves pages over https, at an https URL", async () => {
    expect(herald.url).toStartWith("https://127.0.0.1:");
    const res = await get(herald, "/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(await res.text()).toContain('<meta name="csrf-token"');
    expect((await get(herald, "/assets/htmx.js")).status).toBe(200);
  });

  test("a client that offers h2 gets HTTP/2, and a page over it", async () => {
    const session = await h2Session(herald);
    try {
      expect(session.alpnProtocol).toBe("h2");
      const { headers, stream } = await h2Request(session, { ":path": "/" });
      expect(Number(headers[":status"])).toBe(200);
      expect(await h2Text(stream)).toContain('<meta name="csrf-token"');
    } finally {
      session.close();
    }
  });

  test("a signed-in stream over HTTP/2 receives a published notification", async () => {
    const { cookie } = await signIn(herald, "alice");
    const session = await h2Session(herald);
    try {
      expect(session.alpnProtocol).toBe("h2");
      const { headers, reader } = await h2Sse(session, cookie);
      expect(Number(headers[":status"])).toBe(200);
      expect(headers["content-type"]).toContain("text/event-stream");
      await reader.until(() => reader.retry !== undefined, "the retry hint");
      expect(herald.hub.isConnected("alice")).toBe(true);
      await herald.hub.publishToUser("alice", { event: "notification", data: "<li>over h2</li>" });
      expect((await reader.event()).data).toBe("<li>over h2</li>");
      reader.close();
      await reader.ended();
    } finally {
      session.close();
    }
  });

  test("a stream its client resets over HTTP/2 is let go, while the connection and its other streams go on", async () => {
    const { cookie } = await signIn(herald, "carol");
    const health = async (session: http2.ClientHttp2Session) => {
      const { stream } = await h2Request(session, { ":path": "/healthz" });
      return JSON.parse(await h2Text(stream)) as { clients: number };
    };
    const clientsComeTo = async (session: http2.ClientHttp2Session, count: number, what: string) => {
      const deadline = Date.now() + 3000;
      while ((await health(session)).clients !== count) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await Bun.sleep(20);
      }
    };
    const session = await h2Session(herald);
    try {
      const before = (await health(session)).clients;
      const open = async () => {
        const { headers, stream, reader } = await h2Sse(session, cookie);
        expect(Number(headers[":status"])).toBe(200);
        await reader.until(() => reader.retry !== undefined, "the retry hint");
        return { stream, reader };
      };
      const kept = await open();
      const reset = await open();
      expect((await health(session)).clients).toBe(before + 2);

      // The tab closes one stream: its client sends RST_STREAM and keeps the connection.
      reset.stream.close(http2.constants.NGHTTP2_CANCEL);
      await clientsComeTo(session, before + 1, "the reset stream to be let go");
      expect(session.closed || session.destroyed).toBe(false);

      const sent = await herald.hub.publishToUser("carol", { event: "notification", data: "<li>after the reset</li>" });
      expect(sent.delivered).toBe(1);
      expect((await kept.reader.event()).data).toBe("<li>after the reset</li>");
      kept.reader.close();
      await clientsComeTo(session, before, "the last stream to be let go");
    } finally {
      session.close();
    }
  });

  test("a client that offers only HTTP/1.1 gets HTTP/1.1 on the same port", async () => {
    const { version, alpn, body } = await new Promise<{ version: string; alpn: unknown; body: string }>(
      (resolve, reject) => {
        const req = https.get(`${herald.url}/healthz`, { ca, agent: false }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (body += chunk));
          res.on("end", () => {
            const socket = res.socket as import("node:tls").TLSSocket | null;
            resolve({ version: res.httpVersion, alpn: socket?.alpnProtocol, body });
          });
        });
        req.on("error", reject);
      },
    );
    expect(version).toBe("1.1");
    expect(alpn).toBeFalsy();
    expect(JSON.parse(body)).toMatchObject({ status: "ok" });
  });

  test("every cookie herald sets carries Secure", async () => {
    const { setCookies } = await signIn(herald, "bob");
    const names = setCookies.map((c) => c.split("=")[0]);
    expect(names).toContain("herald_csrf");
    expect(names).toContain("herald_session");
    for (const cookie of setCookies) expect(cookie).toMatch(/;\s*Secure/i);
  });

  test("answers carry HSTS, except to loopback names", async () => {
    const session = await h2Session(herald);
    try {
      const port = new URL(herald.url).port;
      const named = await h2Request(session, { ":path": "/", ":authority": `herald.test:${port}` });
      expect(named.headers["strict-transport-security"]).toBe("max-age=31536000");
      named.stream.close();
      const loopback = await h2Request(session, { ":path": "/" });
      expect(loopback.headers["strict-transport-security"]).toBeUndefined();
      loopback.stream.close();
    } finally {
      session.close();
    }
  });
});

describe("many streams on one HTTP/2 connection", () => {
  test("a slow one is dropped alone: the others on its connection keep streaming", async () => {
    const herald = startTestHerald({ tlsCert: pair.cert, tlsKey: pair.key, maxBuffer: 256 * 1024 });
    const session = await h2Session(herald);
    try {
      const slow = await h2Request(session, { ":path": "/sse?topic=flood" });
      const calm = await h2Request(session, { ":path": "/sse?topic=calm" });
      slow.stream.pause();
      let calmText = "";
      calm.stream.setEncoding("utf8");
      calm.stream.on("data", (chunk: string) => (calmText += chunk));
      await eventually(() => herald.hub.clientCount === 2, "both streams");
      const chunk = "x".repeat(15_000);
      for (let i = 1; herald.hub.stats().droppedSlow === 0; i++) {
        if (i > 2_000) throw new Error("no stream was dropped as slow");
        await herald.hub.publishToTopic("flood", { event: "notification", data: `${i} ${chunk}` });
        await Bun.sleep(0);
      }
      await eventually(() => slow.stream.closed, "the slow stream to close");
      await herald.hub.publishToTopic("calm", { event: "notification", data: "still here" });
      await eventually(() => calmText.includes("data: still here"), "the calm stream's event");
      expect(herald.hub.clientCount).toBe(1);
      expect(session.closed || session.destroyed).toBe(false);
    } finally {
      session.destroy();
      await herald.stop();
    }
  });
});

describe("plain http", () => {
  test("sends no HSTS and no Secure cookies", async () => {
    const herald = startTestHerald();
    try {
      const res = await fetch(`${herald.url}/`, { headers: { host: "herald.test" } });
      expect(res.headers.get("strict-transport-security")).toBeNull();
      expect(res.headers.get("set-cookie")).not.toMatch(/Secure/i);
    } finally {
      await herald.stop();
    }
  });
});

describe("bad TLS settings stop start-up with one line naming the file", () => {
  const message = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (error) {
      expect(error).toBeInstanceOf(HeraldError);
      return (error as Error).message;
    }
    throw new Error("loadConfig accepted it");
  };

  test("one without the other", () => {
    expect(message({ HERALD_TLS_CERT: pair.cert })).toBe(
      "herald: HERALD_TLS_CERT is set without HERALD_TLS_KEY: set both (https with HTTP/2) or neither",
    );
    expect(message({ HERALD_TLS_KEY: pair.key })).toBe(
      "herald: HERALD_TLS_KEY is set without HERALD_TLS_CERT: set both (https with HTTP/2) or neither",
    );
  });

  test("a file that cannot be read", () => {
    const missing = join(dir, "missing.pem");
    expect(message({ HERALD_TLS_CERT: missing, HERALD_TLS_KEY: pair.key })).toBe(
      `herald: HERALD_TLS_CERT: cannot read ${JSON.stringify(missing)} (ENOENT)`,
    );
    expect(message({ HERALD_TLS_CERT: pair.cert, HERALD_TLS_KEY: dir })).toBe(
      `herald: HERALD_TLS_KEY: cannot read ${JSON.stringify(dir)} (EISDIR)`,
    );
  });

  test("a file that holds no certificate, or no key", () => {
    const junk = join(dir, "junk.pem");
    writeFileSync(junk, "not a certificate\n");
    expect(message({ HERALD_TLS_CERT: junk, HERALD_TLS_KEY: pair.key })).toBe(
      `herald: HERALD_TLS_CERT: ${JSON.stringify(junk)} holds no PEM certificate`,
    );
    expect(message({ HERALD_TLS_CERT: pair.cert, HERALD_TLS_KEY: junk })).toBe(
      `herald: HERALD_TLS_KEY: ${JSON.stringify(junk)} holds no unencrypted PEM private key`,
    );
    expect(message({ HERALD_TLS_CERT: pair.key, HERALD_TLS_KEY: pair.key })).toContain("holds no PEM certificate");
  });

  test("a key that is not the certificate's", async () => {
    const other = await devCertificate(join(dir, "other"));
    expect(message({ HERALD_TLS_CERT: pair.cert, HERALD_TLS_KEY: other.key })).toBe(
      `herald: HERALD_TLS_KEY: ${JSON.stringify(other.key)} is not the key of the certificate in ${JSON.stringify(pair.cert)}`,
    );
  });

  test("createHerald names its options", async () => {
    await expect(createHerald({ eventLog: "memory", dataDir: dir, tlsCert: pair.cert })).rejects.toThrow(
      "herald: tlsCert is set without tlsKey: set both (https with HTTP/2) or neither",
    );
  });

  test("bun src/main.ts exits with the one line", async () => {
    const missing = join(dir, "nope.pem");
    const proc = Bun.spawn([process.execPath, entry], {
      env: { ...process.env, PORT: "0", HERALD_DATA_DIR: dir, HERALD_TLS_CERT: missing, HERALD_TLS_KEY: pair.key },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(await proc.exited).toBe(1);
    expect((await new Response(proc.stderr).text()).trim()).toBe(
      `herald: HERALD_TLS_CERT: cannot read ${JSON.stringify(missing)} (ENOENT)`,
    );
  });

  test("bun src/main.ts with a good pair listens on https", async () => {
    const proc = Bun.spawn([process.execPath, entry], {
      env: {
        ...process.env,
        PORT: "0",
        HOST: "127.0.0.1",
        HERALD_DATA_DIR: join(dir, "main"),
        HERALD_EVENT_LOG: "memory",
        HERALD_LOG: "off",
        HERALD_TLS_CERT: pair.cert,
        HERALD_TLS_KEY: pair.key,
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      let text = "";
      for await (const chunk of proc.stdout) {
        text += new TextDecoder().decode(chunk);
        if (text.includes("\n")) break;
      }
      const url = /listening on (https:\/\/\S+)/.exec(text)?.[1];
      expect(url).toBeDefined();
      expect((await fetch(`${url}/healthz`, { tls: { ca } })).status).toBe(200);
    } finally {
      proc.kill();
      await proc.exited;
    }
  });
});
